// Command attacker floods users' POST /login for e2e/hardening's login-flood tests, from a
// process of its own (see buildAttacker there). It reads flags; it stops when its stdin
// closes or after -max, and prints what it got as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func client(local string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 4}}
}

func main() {
	url := flag.String("url", "", "users base URL")
	workers := flag.Int("workers", 32, "flooding clients")
	mode := flag.String("mode", "one", "one: every client on 127.0.0.1, three tries in four at -demo; many: a new 127.1.x.y address every 15 failures, a new email every try; right: -demo with -password, the clients on two addresses; slowbody: each client sends POST -path's headers and one byte of a 100-byte body, then waits (see slowBodies)")
	path := flag.String("path", "/login", "slowbody: the path POSTed")
	from := flag.String("from", "127.0.0.1", "slowbody: the loopback addresses the clients connect from, comma-separated")
	demo := flag.String("demo", "", "the demo user's email")
	password := flag.String("password", "not-the-password", "the password sent")
	longest := flag.Duration("max", 30*time.Second, "stop after this long even if stdin stays open")
	flag.Parse()

	var mu sync.Mutex
	answers := map[string]int{}
	var shed []time.Duration
	retryAfterMissing := 0
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }() // the test closes stdin to stop the flood
	go func() { time.Sleep(*longest); os.Exit(3) }()
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			raw, _ := json.Marshal(answers)
			mu.Unlock()
			fmt.Printf("progress %s\n", raw)
		}
	}()
	if *mode == "slowbody" {
		slowBodies(stop, strings.TrimPrefix(*url, "http://"), *path, strings.Split(*from, ","), *workers, func(result string) {
			mu.Lock()
			answers[result]++
			mu.Unlock()
		})
		mu.Lock()
		raw, _ := json.Marshal(map[string]any{"answers": answers})
		mu.Unlock()
		fmt.Printf("result %s\n", raw)
		return
	}
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *http.Client
			addr, failures := "", 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				next, email := "127.0.0.1", fmt.Sprintf("nobody-%d-%d-%d@example.com", w, i, rand.Int64())
				switch {
				case *mode == "many":
					next = fmt.Sprintf("127.1.%d.%d", w+1, failures/15+1)
				case *mode == "right":
					next, email = fmt.Sprintf("127.1.0.%d", w%2+1), *demo
				case i%4 != 3:
					email = *demo
				}
				if next != addr {
					if c != nil {
						c.CloseIdleConnections()
					}
					addr, c = next, client(next)
				}
				body := fmt.Sprintf("{\"email\":%q,\"password\":%q}", email, *password)
				start := time.Now()
				resp, err := c.Post(*url+"/login", "application/json", strings.NewReader(body))
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					answers["error"]++
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers[fmt.Sprint(resp.StatusCode)]++
				switch resp.StatusCode {
				case 401:
					failures++
				case 429:
					if resp.Header.Get("Retry-After") == "" {
						retryAfterMissing++
					}
				case 503:
					shed = append(shed, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(shed)
	at := func(p float64) float64 {
		if len(shed) == 0 {
			return 0
		}
		i := min(max(int(float64(len(shed))*p/100+0.5)-1, 0), len(shed)-1)
		return float64(shed[i].Microseconds()) / 1000
	}
	raw, _ := json.Marshal(map[string]any{"answers": answers, "shed": len(shed), "shedP50": at(50), "shedP99": at(99), "shedMax": at(100), "retryAfterMissing": retryAfterMissing})
	fmt.Printf("result %s\n", raw)
}

// slowBodies holds n connections to addr, spread over the loopback addresses locals, each
// sending a POST's headers with Content-Length 100, then one byte of the body, then nothing;
// one the server closes is opened again after 50 ms. It returns when stop closes, having
// told tally how each connection ended ("503": answered, "closed": closed without one).
func slowBodies(stop <-chan struct{}, addr, path string, locals []string, n int, tally func(string)) {
	request := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	var wg sync.WaitGroup
	for i := range n {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(locals[i%len(locals)])}, Timeout: 5 * time.Second}
		wg.Go(func() {
			for {
				if conn, err := dialer.Dial("tcp", addr); err != nil {
					tally("dial error")
				} else {
					io.WriteString(conn, request)
					ended := make(chan string, 1)
					go func() {
						buf := make([]byte, 512)
						if n, _ := conn.Read(buf); n >= 12 {
							ended <- string(buf[9:12])
						} else {
							ended <- "closed"
						}
					}()
					select {
					case <-stop:
						conn.Close()
						return
					case result := <-ended:
						tally(result)
						conn.Close()
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
}
