package httpserver

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// connLimiter caps the connections a server holds open at once, so that no number of
// clients can make it hold more memory than max connections' worth (each costs its buffers,
// up to MaxHeaderBytes while a request's headers are read, and a goroutine), and the
// connections of one client address at perClient, so that one address cannot take every
// place.
//
// When a cap is reached (the address's own, or the whole server's), a connection that does
// not use its place is closed to make room, of that address when its own cap is the one
// reached: first one whose request's body is late (nothing of it for silentGrace, or less
// than minBodyRate since its headers: a client sends its body right after them, and a flood
// that sends headers and then a byte now and then would otherwise hold every place for
// ReadTimeout), then one that has sent no whole request for longer than silentGrace
// (connected and silent, or trickling its headers, which would hold a place for
// ReadHeaderTimeout), then the one idle the longest between keep-alive requests (an HTTP
// client retries a request on a kept-alive connection that was closed, so nobody notices).
// An address whose connection was closed for being late or silent may, for a while
// (penaltyFor), take a place only from its own idle connections when the server is full:
// its late and silent connections then stay until a client that sends whole requests
// needs their places. When none of these is there, an address that holds at least two
// places more than the newcomer's gives up one not yet busy with a request it sent whole
// (largestShareLocked). Only when every connection is busy with a request, or the places
// are shared out evenly, is the new one refused, with a JSON 503.
type connLimiter struct {
	net.Listener
	max       int
	perClient int

	mu      sync.Mutex
	open    int
	byAddr  map[string]int // open connections per client address
	idle    *list.List     // of *limitedConn, the longest idle first
	waiting *list.List     // of *limitedConn with no request read yet, the oldest first
	bodies  *list.List     // of *limitedConn whose request body is being read (trackBodies)
	// penalized are the addresses a connection of which was closed while silent or late, and
	// when (see penaltyFor).
	penalized map[string]time.Time

	refusing chan struct{} // bounds the goroutines writing refusals
}

// silentGrace is how long a new connection may go without a whole request, or a request
// without a byte of its body, before it can be closed to make room: a client sends its
// request as soon as it connects, and its body with its headers.
const silentGrace = time.Second

// minBodyRate is the slowest a body may arrive, after silentGrace, and keep its place when
// the server is full: a 64 KiB body in 9 s.
const minBodyRate = 8 << 10 // bytes per second

// newConnLimiter caps l at max connections, and perClient of one client address (0: no cap
// of its own).
func newConnLimiter(l net.Listener, max, perClient int) *connLimiter {
	if perClient <= 0 || perClient > max {
		perClient = max
	}
	return &connLimiter{Listener: l, max: max, perClient: perClient, byAddr: make(map[string]int), penalized: make(map[string]time.Time),
		idle: list.New(), waiting: list.New(), bodies: list.New(), refusing: make(chan struct{}, 32)}
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
	addr := ClientKey(conn.RemoteAddr().String())
	c.mu.Lock()
	var evict *limitedConn
	byShare := false // evict did nothing wrong: its address held more than its share
	over, full := c.byAddr[addr] >= c.perClient, c.open >= c.max
	switch {
	case (over || full) && c.penalizedLocked(now, addr):
		evict = c.idleOfLocked(addr)
	case over:
		evict = c.victimLocked(now, addr)
	case full:
		if evict = c.victimLocked(now, ""); evict == nil {
			evict, byShare = c.largestShareLocked(addr), true
		}
	}
	if evict == nil && (over || full) {
		c.mu.Unlock()
		return nil
	}
	if evict != nil {
		if evict.list != c.idle && !byShare {
			c.penalizeLocked(now, evict.addr)
		}
		c.untrackLocked(evict)
	}
	c.open++
	c.byAddr[addr]++
	lc := &limitedConn{Conn: conn, limiter: c, addr: addr, accepted: now}
	lc.listed = c.waiting.PushBack(lc)
	lc.list = c.waiting
	c.mu.Unlock()
	if evict != nil {
		evict.Close() // counts itself out
	}
	return lc
}

// victimLocked returns the connection to close to make room, of addr only unless addr is "",
// or nil when there is none: one whose body is late, then one silent past the grace, then the
// longest idle. A late or silent one whose client's bytes wait unread (hasUnread) is not
// chosen: the server was slow to read them, not the client to send them, and closing it
// would penalize a client that did nothing wrong. Callers hold c.mu.
func (c *connLimiter) victimLocked(now time.Time, addr string) *limitedConn {
	mine := func(lc *limitedConn) bool { return addr == "" || lc.addr == addr }
	for e := c.bodies.Front(); e != nil; e = e.Next() {
		if lc := e.Value.(*limitedConn); mine(lc) && lc.bodyLate(now) && !hasUnread(lc.Conn) {
			return lc
		}
	}
	for e := c.waiting.Front(); e != nil; e = e.Next() {
		lc := e.Value.(*limitedConn)
		if now.Sub(lc.accepted) <= silentGrace {
			break // the list is in order of arrival: the rest are newer still
		}
		if mine(lc) && !hasUnread(lc.Conn) {
			return lc
		}
	}
	for e := c.idle.Front(); e != nil; e = e.Next() {
		if lc := e.Value.(*limitedConn); mine(lc) {
			return lc
		}
	}
	return nil
}

// largestShareLocked returns, when the server is full and no connection can be closed for
// what it does (victimLocked), a connection of the address that holds the most places, if it
// holds at least two more than addr: one with no request read yet, else one whose body is
// still coming, however young. Within the grace every client looks alike, and a flood from
// few addresses that keeps its connections young (closing each before it is late, opening
// it again) would otherwise hold every place; this way places are shared out between
// addresses evenly. Bytes waiting unread (hasUnread) do not spare a connection here: on a
// busy machine a flood's connections wait unread too, and the share is the address's, not
// the connection's fault. A connection busy with a request the server has read is never
// closed. Callers hold c.mu.
func (c *connLimiter) largestShareLocked(addr string) *limitedConn {
	var largest *limitedConn
	most := c.byAddr[addr] + 1 // what an address must hold more than
	for _, l := range []*list.List{c.waiting, c.bodies} {
		for e := l.Front(); e != nil; e = e.Next() {
			lc := e.Value.(*limitedConn)
			if c.byAddr[lc.addr] > most {
				largest, most = lc, c.byAddr[lc.addr]
			}
		}
	}
	return largest
}

// idleOfLocked returns addr's longest-idle connection, or nil. Callers hold c.mu.
func (c *connLimiter) idleOfLocked(addr string) *limitedConn {
	for e := c.idle.Front(); e != nil; e = e.Next() {
		if lc := e.Value.(*limitedConn); lc.addr == addr {
			return lc
		}
	}
	return nil
}

// penaltyFor is how long an address one of whose connections was closed to make room while
// it was silent or its body late may take places only from its own idle connections:
// otherwise a flood, each reopening what was closed, would take every place that comes free
// before a client that sends its requests whole could have it.
const penaltyFor = 10 * time.Second

func (c *connLimiter) penalizeLocked(now time.Time, addr string) {
	if len(c.penalized) >= 4*c.max {
		for a, at := range c.penalized {
			if now.Sub(at) > penaltyFor {
				delete(c.penalized, a)
			}
		}
		if len(c.penalized) >= 4*c.max {
			return // bounded: addresses past this many are not held back
		}
	}
	c.penalized[addr] = now
}

func (c *connLimiter) penalizedLocked(now time.Time, addr string) bool {
	at, ok := c.penalized[addr]
	return ok && now.Sub(at) <= penaltyFor
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

// bodyStarted puts lc on the list of connections whose request body is being read, from now:
// length bytes of it.
func (c *connLimiter) bodyStarted(lc *limitedConn, length int64) {
	now := time.Now()
	lc.lastRead.Store(now.UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc.gone {
		return
	}
	c.untrackLocked(lc)
	lc.bodySince, lc.bodyLength = now, length
	lc.bodyGot.Store(0)
	lc.listed = c.bodies.PushBack(lc)
	lc.list = c.bodies
}

// bodyDone takes lc off the list of connections whose body is being read.
func (c *connLimiter) bodyDone(lc *limitedConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc.list == c.bodies {
		c.untrackLocked(lc)
	}
}

// closeLate closes the connections whose request body is late (see bodyLate): at shutdown,
// so that a stalled upload does not hold the drain until its deadline.
func (c *connLimiter) closeLate(now time.Time) {
	c.mu.Lock()
	var late []*limitedConn
	for e := c.bodies.Front(); e != nil; e = e.Next() {
		if lc := e.Value.(*limitedConn); lc.bodyLate(now) && !hasUnread(lc.Conn) {
			late = append(late, lc)
		}
	}
	c.mu.Unlock()
	for _, lc := range late {
		lc.Close()
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
	addr     string // ClientKey of the peer
	accepted time.Time
	once     sync.Once
	// While a body is read (trackBodies): how much of it came, and when it last grew.
	bodyGot  atomic.Int64
	lastRead atomic.Int64 // UnixNano
	// Guarded by limiter.mu.
	listed     *list.Element // on list, when it may be closed to make room
	list       *list.List
	gone       bool
	bodySince  time.Time // when its reading began
	bodyLength int64     // how much of it is read
}

// bodyLate reports whether the body being read is late: nothing of it for silentGrace, or
// less of it than minBodyRate since silentGrace after its headers. Callers hold
// limiter.mu.
func (lc *limitedConn) bodyLate(now time.Time) bool {
	if now.Sub(time.Unix(0, lc.lastRead.Load())) > silentGrace {
		return true
	}
	elapsed := now.Sub(lc.bodySince) - silentGrace
	got := lc.bodyGot.Load()
	return elapsed > 0 && float64(got) < elapsed.Seconds()*minBodyRate && got < lc.bodyLength
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
		if c.byAddr[lc.addr]--; c.byAddr[lc.addr] <= 0 {
			delete(c.byAddr, lc.addr)
		}
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

// connKey is the context key of the *limitedConn a request came on.
type connKey struct{}

// withConn is the server's ConnContext: it gives each request its connection, for
// trackBodies.
func withConn(ctx context.Context, conn net.Conn) context.Context {
	if lc, ok := conn.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// trackBodies reads each request's body (up to web.MaxBodyBytes and one byte, which is as
// far as any handler reads) before the handler runs, telling the connection limiter while it
// waits for it, so that a connection whose body comes too slowly can be closed to make room
// (connLimiter). The handler reads the same bytes, and anything past them, as it would have.
func trackBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, ok := r.Context().Value(connKey{}).(*limitedConn)
		if !ok || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		limit := int64(web.MaxBodyBytes + 1)
		if r.ContentLength > 0 && r.ContentLength < limit {
			limit = r.ContentLength
		}
		lc.limiter.bodyStarted(lc, limit)
		body, err := readBody(r.Body, limit, lc)
		lc.limiter.bodyDone(lc)
		var rest io.Reader = r.Body
		if err != nil && err != io.EOF {
			rest = errorReader{err}
		}
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), r.Body}
		next.ServeHTTP(w, r)
	})
}

// readBody reads up to limit bytes of body, counting them on lc as they come.
func readBody(body io.Reader, limit int64, lc *limitedConn) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 4<<10))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(limit, int64(2*cap(buf))))-len(buf))
		}
		n, err := body.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			lc.bodyGot.Store(int64(len(buf)))
			lc.lastRead.Store(time.Now().UnixNano())
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// ClientKey is the key of the client that connected from remoteAddr (a net.Conn's
// RemoteAddr, or an http.Request's): its IPv4 address, or the /64 network of its IPv6
// address (one machine often has a whole /64 to pick addresses from).
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String()
	}
	return addr.String()
}
