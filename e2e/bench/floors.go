package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kub-demo/kub-demo/authapi"
)

// The floors: what the machine can do at best for each path, measured in the same run.
//
//	(0)   a bare net/http server writing a precomputed body: the most this machine's Go HTTP
//	      stack can answer GET /tasks with, no routing, middleware, token check or store;
//	(i)   the same, after one call to a bare upstream that answers as auth's /verify-token
//	      does, made with the services' own auth client (authapi.Client, no cache): what
//	      GET /tasks costs when every request asks auth, as the course's services do;
//	(ii)  bcrypt comparisons per second at the configured cost on every core: login does one;
//	(iii) append + fsync per second by one writer on the folder tasks.txt lives in.

// serveFloor runs one of the floors' servers in this process (the harness starts itself with
// -floor-serve): "bare" (0), or (i)'s "upstream" and "front", on 127.0.0.1:$PORT (0: any free
// port, which it logs as the services do), until killed.
func serveFloor(role, upstream string, bodyBytes int) error {
	ready := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", ready)
	body := bytes.Repeat([]byte("x"), bodyBytes)
	writeBody := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
	switch role {
	case "bare":
		mux.HandleFunc("GET /tasks", func(w http.ResponseWriter, r *http.Request) { writeBody(w) })
	case "upstream":
		// Answers like auth's /verify-token, with nothing else to do.
		answer := []byte(`{"message":"Valid token.","uid":"UIDUIDUIDUIDUIDUIDUIDUIDUI"}`)
		mux.HandleFunc("POST "+authapi.PathVerifyToken, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
			w.Write(answer)
		})
	case "front":
		auth := authapi.NewClient(authapi.Config{URL: upstream, Timeout: 3 * time.Second})
		token := string(bytes.Repeat([]byte("t"), 200))
		mux.HandleFunc("GET /tasks", func(w http.ResponseWriter, r *http.Request) {
			if _, err := auth.VerifyToken(r.Context(), token); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			writeBody(w)
		})
	default:
		return fmt.Errorf("-floor-serve=%q: want bare, upstream or front", role)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return err
	}
	// The line the harness reads the address from, as the services log it.
	fmt.Printf("{\"msg\":\"listening\",\"addr\":%q}\n", l.Addr().String())
	return http.Serve(l, mux)
}

// bcryptFloor counts bcrypt comparisons of a right password at cost, on GOMAXPROCS
// goroutines (as many as auth would run at once), for dur.
func bcryptFloor(hash, password []byte, dur time.Duration) loadResult {
	var count atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	deadline := began.Add(dur)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if bcrypt.CompareHashAndPassword(hash, password) == nil {
					count.Add(1)
				}
			}
		})
	}
	wg.Wait()
	n := int(count.Load())
	return loadResult{Requests: n, OK: n, elapsed: time.Since(began)}.summed()
}

// fsyncFloor appends record and fsyncs, one after the other, to path (created if missing)
// for dur, and counts the appends.
func fsyncFloor(path string, record []byte, dur time.Duration) (loadResult, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return loadResult{}, err
	}
	defer f.Close()
	n := 0
	began := time.Now()
	for deadline := began.Add(dur); time.Now().Before(deadline); n++ {
		if _, err := f.Write(record); err != nil {
			return loadResult{}, err
		}
		if err := f.Sync(); err != nil {
			return loadResult{}, err
		}
	}
	if n == 0 {
		return loadResult{}, errors.New("no append finished")
	}
	return loadResult{Requests: n, OK: n, elapsed: time.Since(began)}.summed(), nil
}
