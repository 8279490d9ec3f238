package httpserver

import (
	"bytes"
	"container/list"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// connLimiter caps the connections a server holds open at once, so that no number of
// clients can make it hold more memory than max connections' worth (each costs its buffers,
// up to MaxHeaderBytes while a request's headers are read, and a goroutine).
//
// A keep-alive connection waiting for its next request is the cheapest to give up: when the
// cap is reached, the connection idle the longest is closed to make room (an HTTP client
// retries a request on a kept-alive connection that was closed, so nobody notices). Only when
// every connection is busy is the new one refused, with a JSON 503 and "Connection: close".
type connLimiter struct {
	net.Listener
	max int

	mu     sync.Mutex
	open   int
	idle   *list.List // of *limitedConn, the longest idle first
	closed atomic.Int64

	refusing chan struct{} // bounds the goroutines writing refusals
}

func newConnLimiter(l net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: l, max: max, idle: list.New(), refusing: make(chan struct{}, 32)}
}

// refusal is the whole answer to a connection over the cap.
var refusal = func() []byte {
	body := `{"message":"Too many connections. Try again in a moment."}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json; charset=utf-8\r\n" +
		"Retry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (c *connLimiter) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := c.admit(conn); lc != nil {
			return lc, nil
		}
		c.refuse(conn)
	}
}

// admit counts conn in, closing the longest-idle connection to make room if needed. It
// returns nil when every open connection is busy.
func (c *connLimiter) admit(conn net.Conn) *limitedConn {
	c.mu.Lock()
	var evict *limitedConn
	if c.open >= c.max {
		front := c.idle.Front()
		if front == nil {
			c.mu.Unlock()
			return nil
		}
		evict = c.idle.Remove(front).(*limitedConn)
		evict.idleAt = nil
	}
	c.open++
	c.mu.Unlock()
	if evict != nil {
		evict.Close() // counts itself out
	}
	return &limitedConn{Conn: conn, limiter: c}
}

// refuse answers conn with a 503 in the background (bounded by a write deadline and by the
// number of refusals in flight: past that, the connection is just closed).
func (c *connLimiter) refuse(conn net.Conn) {
	select {
	case c.refusing <- struct{}{}:
	default:
		conn.Close()
		return
	}
	go func() {
		defer func() { <-c.refusing }()
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write(refusal)
		conn.Close()
	}()
}

// connState follows the server's view of each connection: idle ones may be evicted.
func (c *connLimiter) connState(conn net.Conn, state http.ConnState) {
	lc, ok := conn.(*limitedConn)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateIdle:
		if lc.idleAt == nil && !lc.gone {
			lc.idleAt = c.idle.PushBack(lc)
		}
	default:
		if lc.idleAt != nil {
			c.idle.Remove(lc.idleAt)
			lc.idleAt = nil
		}
	}
}

// Open is how many connections are counted in now.
func (c *connLimiter) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

type limitedConn struct {
	net.Conn
	limiter *connLimiter
	once    sync.Once
	// Guarded by limiter.mu.
	idleAt *list.Element
	gone   bool
}

func (lc *limitedConn) Close() error {
	err := lc.Conn.Close()
	lc.once.Do(func() {
		c := lc.limiter
		c.mu.Lock()
		lc.gone = true
		if lc.idleAt != nil {
			c.idle.Remove(lc.idleAt)
			lc.idleAt = nil
		}
		c.open--
		c.mu.Unlock()
		c.closed.Add(1)
	})
	return err
}

// plainErrorHeaders are the headers net/http writes, straight to the connection, with its
// answer to a request it could not read: 431 for headers over MaxHeaderBytes, 400 for a
// malformed request, 501 for an unknown transfer encoding. The body is text/plain.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// Write passes p on, except net/http's plain-text answer to an unreadable request, which it
// writes as the same status with a JSON body: every error a client sees is JSON.
func (lc *limitedConn) Write(p []byte) (int, error) {
	if body, ok := jsonPlainError(p); ok {
		if _, err := lc.Conn.Write(body); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return lc.Conn.Write(p)
}

// jsonPlainError rewrites one of net/http's plain-text error answers as JSON.
func jsonPlainError(p []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok || len(p) > 1024 {
		return nil, false
	}
	statusLine, text, ok := bytes.Cut(rest, []byte(plainErrorHeaders))
	if !ok || bytes.ContainsAny(statusLine, "\r\n") || len(statusLine) < 3 {
		return nil, false
	}
	message := string(text)
	if code := string(statusLine[:3]); code == "431" {
		message = "The request's headers are too large: the limit is " + strconv.Itoa(MaxHeaderBytes>>10) + " KiB."
	} else {
		message = strings.TrimPrefix(message, code+" ")
	}
	body, _ := json.Marshal(web.MessageBody{Message: message})
	return fmt.Appendf(nil, "HTTP/1.1 %s\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		statusLine, len(body), body), true
}
