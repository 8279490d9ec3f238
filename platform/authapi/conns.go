package authapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// conns keeps the connections to auth open between calls. Each call takes one, writes its
// request (see writePost) and reads auth's answer with net/http's own reader
// (http.ReadResponse) on the caller's own goroutine, and puts it back.
//
// net/http's Transport does the same wire work with two goroutines of its own per
// connection, and hands every call to one and the answer back from the other: four goroutine
// wake-ups per call where this needs one. On the course's hot path (every GET /tasks calls
// auth once) that hand-off was the largest single cost the two services could drop (see
// BENCHMARKS.md). What the Transport gave that auth's calls use is here too: kept-alive
// connections, a call sent again when a kept-alive connection turns out closed, and one
// deadline for the whole call.
type conns struct {
	address string // host:port, resolved at each dial (a Service's name, in Kubernetes)
	dialer  net.Dialer
	maxAge  time.Duration // recycleEvery

	mu   sync.Mutex
	idle []*conn // the most recently used last
}

// maxIdleConns bounds the connections kept open while idle.
const maxIdleConns = 100

// conn is one connection to auth with its buffers.
type conn struct {
	net.Conn
	r      *bufio.Reader // reads through budget
	w      *bufio.Writer
	budget budgetReader
	opened time.Time
}

// maxAnswerHeaderBytes bounds what is read of an answer before its body: something at
// auth's address that is not auth cannot make a caller hold more (net/http's Transport
// bounds it at 1 MB too).
const maxAnswerHeaderBytes = 1 << 20

// budgetReader reads from r until n bytes have been read, then fails.
type budgetReader struct {
	r io.Reader
	n int64
}

var errAnswerTooLarge = errors.New("the answer is larger than any of auth's")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errAnswerTooLarge
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

func newConns(address string) *conns {
	return &conns{address: address, dialer: net.Dialer{KeepAlive: 30 * time.Second}, maxAge: recycleEvery}
}

// get returns an idle connection (reused true) or a new one, dialled by deadline. Idle
// connections older than maxAge are closed, not used (see put).
func (p *conns) get(deadline time.Time) (c *conn, reused bool, err error) {
	now := time.Now()
	for {
		p.mu.Lock()
		c = nil
		if n := len(p.idle); n > 0 {
			c = p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		if now.Sub(c.opened) < p.maxAge {
			return c, true, nil
		}
		c.Close()
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	nc, err := p.dialer.DialContext(ctx, "tcp", p.address)
	if err != nil {
		return nil, false, err
	}
	c = &conn{Conn: nc, w: bufio.NewWriterSize(nc, 4<<10), budget: budgetReader{r: nc}, opened: time.Now()}
	c.r = bufio.NewReaderSize(&c.budget, 4<<10)
	return c, false, nil
}

// put keeps c for the next call, unless it is older than maxAge (closing it makes the
// next call open a new connection, which a Kubernetes Service may send to another auth pod)
// or enough are kept already.
func (p *conns) put(c *conn, now time.Time) {
	if now.Sub(c.opened) < p.maxAge {
		p.mu.Lock()
		if len(p.idle) < maxIdleConns {
			p.idle = append(p.idle, c)
			c = nil
		}
		p.mu.Unlock()
	}
	if c != nil {
		c.Close()
	}
}

// errNoAnswer marks a call that a kept-alive connection lost before any byte of an answer
// came: auth closed it (an auth pod stopping, or its idle timeout) as the call was sent.
var errNoAnswer = errors.New("connection closed before an answer")

// call sends a POST of payload with header to target and returns auth's answer and its body
// (up to maxAnswerBytes), all by deadline. A call that a kept-alive connection lost before
// any answer is sent once more on a new connection: safe for all three calls, as hashing
// again gives another hash, issuing another token, verifying the same answer.
func (p *conns) call(target *url.URL, header http.Header, payload []byte, deadline time.Time) (*http.Response, []byte, error) {
	for {
		c, reused, err := p.get(deadline)
		if err != nil {
			return nil, nil, timeoutAsDeadline(err)
		}
		resp, body, err := c.exchange(target, header, payload, deadline)
		switch {
		case err == nil && !resp.Close:
			p.put(c, time.Now())
			return resp, body, nil
		case err == nil:
			c.Close()
			return resp, body, nil
		}
		c.Close()
		if !reused || !errors.Is(err, errNoAnswer) {
			return nil, nil, timeoutAsDeadline(err)
		}
		// Only a reused connection is retried, and the new one is not: at most two tries.
	}
}

// exchange writes one call on c and reads its answer whole. The answer's body must have a
// Content-Length (auth's always do) for c to be reused: resp.Close is set otherwise.
func (c *conn) exchange(target *url.URL, header http.Header, payload []byte, deadline time.Time) (*http.Response, []byte, error) {
	c.budget.n = maxAnswerHeaderBytes + maxAnswerBytes
	if err := c.SetDeadline(deadline); err != nil {
		return nil, nil, err
	}
	if !writePost(c.w, target, header, payload) {
		req := &http.Request{
			Method: http.MethodPost, URL: target, Host: target.Host, Header: header,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Body: io.NopCloser(bytes.NewReader(payload)), ContentLength: int64(len(payload)),
		}
		if err := req.Write(c.w); err != nil {
			return nil, nil, lostIfNotTimeout(err)
		}
	}
	if err := c.w.Flush(); err != nil {
		return nil, nil, lostIfNotTimeout(err)
	}
	if _, err := c.r.Peek(1); err != nil {
		return nil, nil, lostIfNotTimeout(err)
	}
	resp, err := http.ReadResponse(c.r, nil) // nil: not an answer to HEAD
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(resp)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.ContentLength < 0 || resp.StatusCode < 200 {
		// The body's end, or a 1xx's final answer, is not known to be where the next answer
		// starts.
		resp.Close = true
	}
	return resp, body, nil
}

// writePost writes a POST of payload to target with header into w, as Request.Write does,
// and reports true, unless a header value is one Request.Write would refuse (a line break or
// a control character): then it writes nothing and reports false. Request.Write makes a
// transfer writer, sorts the header names and checks each on every call; here the names are
// this package's own.
func writePost(w *bufio.Writer, target *url.URL, header http.Header, payload []byte) bool {
	for _, values := range header {
		for _, v := range values {
			for i := range len(v) {
				if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
					return false
				}
			}
		}
	}
	w.WriteString("POST ")
	w.WriteString(target.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(target.Host)
	w.WriteString("\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(payload)), 10))
	w.WriteString("\r\n")
	for name, values := range header {
		for _, v := range values {
			w.WriteString(name)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	w.Write(payload)
	return true
}

// lostIfNotTimeout marks err as errNoAnswer unless the deadline passed: a call that timed out
// is not sent again, which would double the wait.
func lostIfNotTimeout(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errNoAnswer, err)
}

// timeoutAsDeadline makes a call that ran out of time also a context.DeadlineExceeded, as
// callers that tell a slow auth from a refused connection expect.
func timeoutAsDeadline(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	}
	return err
}
