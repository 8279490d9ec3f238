package httpserver

import (
	"bytes"
	"container/list"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// connLimiter caps the connections a server holds open at once, so that no number of
// clients can make it hold more memory than max connections' worth (each costs its buffers,
// up to MaxHeaderBytes while a request's headers are read, and a goroutine).
//
// When the cap is reached, a connection that costs nobody anything is closed to make room:
// first the one idle the longest between keep-alive requests (an HTTP client retries a
// request on a kept-alive connection that was closed, so nobody notices), then one that has
// sent no whole request for longer than silentGrace (connected and silent, or trickling its
// headers: a flood of those would otherwise hold every place for ReadHeaderTimeout). Only
// when every connection is busy with a request is the new one refused, with a JSON 503.
type connLimiter struct {
	net.Listener
	max int

	mu      sync.Mutex
	open    int
	idle    *list.List // of *limitedConn, the longest idle first
	waiting *list.List // of *limitedConn with no request read yet, the oldest first

	refusing chan struct{} // bounds the goroutines writing refusals
}

// silentGrace is how long a new connection may go without a whole request before it can be
// closed to make room: a client sends its request as soon as it connects.
const silentGrace = time.Second

func newConnLimiter(l net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: l, max: max, idle: list.New(), waiting: list.New(), refusing: make(chan struct{}, 32)}
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

// admit counts conn in, closing a connection that costs nobody anything to make room if
// needed. It returns nil when every open connection is busy.
func (c *connLimiter) admit(conn net.Conn) *limitedConn {
	now := time.Now()
	c.mu.Lock()
	var evict *limitedConn
	if c.open >= c.max {
		if front := c.idle.Front(); front != nil {
			evict = front.Value.(*limitedConn)
		} else if front := c.waiting.Front(); front != nil && now.Sub(front.Value.(*limitedConn).accepted) > silentGrace {
			evict = front.Value.(*limitedConn)
		} else {
			c.mu.Unlock()
			return nil
		}
		c.untrackLocked(evict)
	}
	c.open++
	lc := &limitedConn{Conn: conn, limiter: c, accepted: now}
	lc.listed = c.waiting.PushBack(lc)
	lc.list = c.waiting
	c.mu.Unlock()
	if evict != nil {
		evict.Close() // counts itself out
	}
	return lc
}

// refuse answers conn with a 503 in the background: it reads the request's headers first
// (a client that is still writing when the connection closes may never read the answer),
// then writes the refusal and closes, all bounded in time and in the number of refusals in
// flight (past that, the connection is just closed).
func (c *connLimiter) refuse(conn net.Conn) {
	select {
	case c.refusing <- struct{}{}:
	default:
		conn.Close()
		return
	}
	go func() {
		defer func() { <-c.refusing }()
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		readHeaders(conn)
		if _, err := conn.Write(refusal); err != nil {
			return
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(conn, 64<<10)) // until the client closes
	}()
}

// readHeaders reads from conn until the end of a request's headers, MaxHeaderBytes, or an
// error (the deadline).
func readHeaders(conn net.Conn) {
	buf := make([]byte, 4096)
	var seen []byte
	for len(seen) < MaxHeaderBytes {
		n, err := conn.Read(buf)
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, []byte("\r\n\r\n")) || err != nil {
			return
		}
		seen = seen[max(0, len(seen)-3):] // only the end can still hold the blank line
	}
}

// connState follows the server's view of each connection: idle ones, and new ones that have
// sent no request yet, may be closed to make room.
func (c *connLimiter) connState(conn net.Conn, state http.ConnState) {
	lc, ok := conn.(*limitedConn)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc.gone || state == http.StateNew {
		return // already on the waiting list, since it was accepted
	}
	c.untrackLocked(lc)
	if state == http.StateIdle {
		lc.listed = c.idle.PushBack(lc)
		lc.list = c.idle
	}
}

// untrackLocked takes lc off the list it is on. Callers hold c.mu.
func (c *connLimiter) untrackLocked(lc *limitedConn) {
	if lc.listed != nil {
		lc.list.Remove(lc.listed)
		lc.listed, lc.list = nil, nil
	}
}

type limitedConn struct {
	net.Conn
	limiter  *connLimiter
	accepted time.Time
	once     sync.Once
	// Guarded by limiter.mu.
	listed *list.Element // on list, when it may be closed to make room
	list   *list.List
	gone   bool
}

// release counts the connection out of the cap, once: when it is closed, or as soon as its
// last answer is written.
func (lc *limitedConn) release() {
	lc.once.Do(func() {
		c := lc.limiter
		c.mu.Lock()
		lc.gone = true
		c.untrackLocked(lc)
		c.open--
		c.mu.Unlock()
	})
}

func (lc *limitedConn) Close() error {
	err := lc.Conn.Close()
	lc.release()
	return err
}

// CloseWrite lets net/http send its FIN after an error answer, as it does on a plain TCP
// connection.
func (lc *limitedConn) CloseWrite() error {
	if cw, ok := lc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// plainErrorHeaders are the headers net/http writes, straight to the connection, with its
// answer to a request it could not read: 431 for headers over MaxHeaderBytes, 400 for a
// malformed request, 501 for an unknown transfer encoding. The body is text/plain.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// Write passes p on, except net/http's plain-text answer to an unreadable request, which it
// writes as the same status with a JSON body: every error a client sees is JSON.
func (lc *limitedConn) Write(p []byte) (int, error) {
	if body, ok := jsonPlainError(p); ok {
		// The connection's last answer: net/http lingers up to 500 ms before closing it,
		// and that time must not hold a place under the cap.
		defer lc.release()
		if _, err := lc.Conn.Write(body); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return lc.Conn.Write(p)
}

// jsonPlainError rewrites one of net/http's plain-text error answers as JSON.
func jsonPlainError(p []byte) ([]byte, bool) {
	// Every answer's first write starts "HTTP/1.1 ": look further only at a short 4xx or 5xx.
	if len(p) > 1024 || len(p) < 12 || (p[9] != '4' && p[9] != '5') {
		return nil, false
	}
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok {
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
