package hardening

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/scrape"
)

// memoryTarget bounds a service's resident memory under any of these floods (an idle service
// takes about 12 MB).
const memoryTarget = 64 << 20

// legitimateClient GETs /tasks with token every interval on a new connection each time (so
// that every request must be admitted anew), until stop closes. It returns how many answers
// were 200 and a description of each that was not.
func legitimateClient(tasksURL, token string, interval time.Duration, stop <-chan struct{}) (ok func() (int, []string)) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	served, failures := 0, []string(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			start := time.Now()
			status, _, _, err := do(client, "GET", tasksURL+"/tasks", token, "")
			mu.Lock()
			if err == nil && status == http.StatusOK {
				served++
			} else {
				failures = append(failures, fmt.Sprintf("%d %v after %s", status, err, time.Since(start).Round(time.Millisecond)))
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return func() (int, []string) {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return served, failures
	}
}

// answerOf reads the one answer a flooding connection gets, in the background: its status
// code and whether its body was a JSON object with a message, or "closed" when the server
// closed the connection without one.
func answerOf(conn net.Conn) <-chan string {
	answer := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answer <- "closed"
			return
		}
		defer resp.Body.Close()
		var body struct{ Message string }
		raw, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(raw, &body) != nil || body.Message == "" {
			answer <- fmt.Sprintf("%d not JSON", resp.StatusCode)
			return
		}
		answer <- fmt.Sprintf("%d JSON", resp.StatusCode)
	}()
	return answer
}

// TestHeaderFloodKeepsMemoryBounded: 100 clients each trickle an endless header towards 1 MB
// and 20 send a whole 1 MB Authorization header, over and over for a few seconds. tasks must
// answer the huge ones 431 with JSON, cut the trickling ones off, keep its memory bounded (a
// server reading headers up to net/http's default 1 MB reached 192 MB here), and go on
// serving a legitimate client during the flood and after it.
func TestHeaderFloodKeepsMemoryBounded(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	addr := hostPort(s.tasks.URL)
	before := memoryOf(t, s.tasks)

	const (
		tricklers, hugeSenders = 100, 20
		floodFor               = 4 * time.Second
		headerTarget           = 1 << 20
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var trickled, huge counter
	var trickledBytes atomic.Int64
	stopMemory := sampleMemory(t, s.tasks)
	legit := legitimateClient(s.tasks.URL, token, 100*time.Millisecond, stop)

	// Trickling: a request line, then header bytes 4 KiB at a time every 100 ms, never the
	// blank line that ends the headers; when cut off, again on a new connection.
	chunk := []byte(strings.Repeat("a", 4<<10))
	for range tricklers {
		wg.Go(func() {
			onNewConnections(stop, addr, 15*time.Second, &trickled, func(conn net.Conn) (string, bool) {
				answer := answerOf(conn)
				io.WriteString(conn, "GET /tasks HTTP/1.1\r\nHost: tasks\r\nX-Padding: ")
				for sent := 0; sent < headerTarget; sent += len(chunk) {
					select {
					case <-stop:
						return "", false
					case result := <-answer:
						return result, true
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := conn.Write(chunk); err != nil {
						break
					}
					trickledBytes.Add(int64(len(chunk)))
				}
				select {
				case result := <-answer:
					return result, true
				case <-time.After(10 * time.Second):
					return "no answer within 10s", true
				}
			})
		})
	}

	// Huge: a whole request with a 1 MB Authorization header, again and again.
	hugeRequest := "GET /tasks HTTP/1.1\r\nHost: tasks\r\nAuthorization: Bearer " + strings.Repeat("A", headerTarget) + "\r\n\r\n"
	for range hugeSenders {
		wg.Go(func() {
			onNewConnections(stop, addr, 10*time.Second, &huge, func(conn net.Conn) (string, bool) {
				answer := answerOf(conn)
				go io.WriteString(conn, hugeRequest)
				return <-answer, true
			})
		})
	}

	time.Sleep(floodFor)
	close(stop)
	wg.Wait()
	served, failures := legit()
	peak := stopMemory()
	after := memoryOf(t, s.tasks)

	figure(t, "header-flood", "tasks RSS %s before, highest %s during (VmHWM %s), %s after; limit %s; before the fix: 192 MB",
		mib(before.rss), mib(peak.rss), mib(peak.peak), mib(after.rss), mib(memoryTarget))
	figure(t, "header-flood-answers", "1 MB Authorization: %s; trickled headers (%s sent in all): %s; legitimate GETs during the flood: %d served, %d not",
		&huge, mib(trickledBytes.Load()), &trickled, served, len(failures))
	if peak.rss >= memoryTarget || peak.peak >= memoryTarget {
		t.Errorf("tasks took %s under the header flood, want under %s", peak, mib(memoryTarget))
	}
	if huge.get("431 JSON") == 0 {
		t.Errorf("no 1 MB header was answered 431 with JSON: %s", &huge)
	}
	for outcome, n := range huge.n {
		if outcome != "431 JSON" {
			t.Errorf("%d requests with a 1 MB header got %q, want 431 with a JSON body", n, outcome)
		}
	}
	for outcome, n := range trickled.n {
		// Cut off past the header limit (431), or after ReadHeaderTimeout (closed).
		if outcome != "431 JSON" && outcome != "closed" {
			t.Errorf("%d trickling clients got %q, want 431 with a JSON body or the connection closed", n, outcome)
		}
	}
	// Every legitimate request answered 200: how many fit in floodFor depends on how busy the
	// machine is, so only "at least one, and none failed" is asked.
	if len(failures) > 0 || served == 0 {
		t.Errorf("a legitimate client during the flood: %d served, failures %q", served, failures)
	}
	if status, _, _, err := do(harness.Client, "GET", s.tasks.URL+"/tasks", token, ""); err != nil || status != http.StatusOK {
		t.Errorf("a legitimate client after the flood: %d %v", status, err)
	}
	if lines := errorLines(s.tasks); len(lines) > 0 {
		t.Errorf("tasks logged %d ERROR lines under the flood, e.g. %.300s", len(lines), lines[0])
	}
}

// raiseOpenFiles lifts this process's open-file limit to at least n (CI's default soft limit
// can be 1024), failing the test when the hard limit does not allow it.
func raiseOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		lim.Max = n // root may raise the hard limit too
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising the open-file limit to %d: %v", n, err)
	}
}

// TestKeepAliveFloodEvictsIdleConnections: 4,000 clients each make one request and keep their
// connection open, idle. tasks holds at most MAX_CONNECTIONS (256) of them, closing the
// longest-idle to admit each new one, so its memory stays bounded (92 MB before the cap) and
// a legitimate new client is still answered 200 during the flood.
func TestKeepAliveFloodEvictsIdleConnections(t *testing.T) {
	const connections, dialers = 4000, 40
	raiseOpenFiles(t, connections+1024)
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	addr := hostPort(s.tasks.URL)
	before := memoryOf(t, s.tasks)
	stopMemory := sampleMemory(t, s.tasks)
	stop := make(chan struct{})
	legit := legitimateClient(s.tasks.URL, token, 50*time.Millisecond, stop)

	var mu sync.Mutex
	var held []net.Conn
	var opened atomic.Int64
	var outcomes counter
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	start := time.Now()
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < connections && time.Now().Before(deadline); i += dialers {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					outcomes.add("dial error")
					continue
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: tasks\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					outcomes.add("no answer")
					conn.Close()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				outcomes.add(resp.Status[:3])
				opened.Add(1)
				mu.Lock()
				held = append(held, conn) // kept open and idle: the server decides when it goes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the legitimate client's last rounds with every idle connection in place
	close(stop)
	served, failures := legit()
	peak := stopMemory()

	stillOpen := countOpen(held)
	figure(t, "keepalive-flood", "%d idle keep-alive connections opened in %s (%s); tasks RSS %s before, highest %s during (VmHWM %s); limit %s; before the cap: 92 MB",
		opened.Load(), took.Round(time.Millisecond), &outcomes, mib(before.rss), mib(peak.rss), mib(peak.peak), mib(memoryTarget))
	figure(t, "keepalive-flood-served", "legitimate new connections during the flood: %d served 200, %d not; flood connections still open at the end: %d (MAX_CONNECTIONS 256)",
		served, len(failures), stillOpen)
	if took > 30*time.Second || opened.Load() < connections {
		t.Errorf("only %d of %d connections were opened and answered in %s: %s", opened.Load(), connections, took, &outcomes)
	}
	if peak.rss >= memoryTarget || peak.peak >= memoryTarget {
		t.Errorf("tasks took %s under the keep-alive flood, want under %s", peak, mib(memoryTarget))
	}
	if len(failures) > 0 || served < 5 {
		t.Errorf("a legitimate new client during the flood: %d served, failures %q", served, failures)
	}
	if stillOpen > 256 {
		t.Errorf("tasks still holds %d of the flood's connections, over MAX_CONNECTIONS (256)", stillOpen)
	}
}

// countOpen closes conns and returns how many of them the server still held open: a read
// on one the server closed ends at once, one on an open one waits out its deadline. Each is
// read at the same time with a deadline long enough for a busy machine (Go reports a
// deadline already passed without looking at the socket, so a short one counts a closed
// connection as open whenever the reader is not scheduled in time).
func countOpen(conns []net.Conn) int {
	var open atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(500 * time.Millisecond)
	for _, conn := range conns {
		wg.Go(func() {
			defer conn.Close()
			conn.SetReadDeadline(deadline)
			if _, err := conn.Read(make([]byte, 1)); err != nil && isTimeout(err) {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	return int(open.Load())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSilentConnectionsAreRefusedFastThenCut: 256 connections that never send a byte are not
// idle keep-alives (the connection cap cannot evict them), so while they fill MAX_CONNECTIONS
// (256) a new client must be refused at once with a JSON 503 it can read (not a reset, not an
// answer before its request), never left hanging; and they must be cut after
// ReadHeaderTimeout (5 s), after which new clients are served again.
func TestSilentConnectionsAreRefusedFastThenCut(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	const silent = 256 // MAX_CONNECTIONS: only the legitimate client is ever refused
	for range silent {
		conn, err := net.DialTimeout("tcp", hostPort(s.tasks.URL), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() // open, and silent, until the test ends
	}
	opened := time.Now()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var served, refused, early, reset int
	var slowest time.Duration
	recovered := time.Duration(0)
	for time.Since(opened) < 9*time.Second {
		start := time.Now()
		status, _, _, err := do(client, "GET", s.tasks.URL+"/tasks", token, "")
		took := time.Since(start)
		slowest = max(slowest, took)
		switch {
		case err == nil && status == http.StatusOK:
			served++
			if refused == 0 {
				t.Errorf("no new client was refused with %d silent connections open: the cap of %d never filled", silent, silent)
			}
			if recovered == 0 && refused > 0 {
				recovered = time.Since(opened)
			}
		case err == nil && status == http.StatusServiceUnavailable:
			refused++
		case err != nil && strings.Contains(err.Error(), "readLoopPeekFailLocked"):
			// The 503 came before the client wrote its request: Go's client reports an
			// "unsolicited response" and an error instead of the answer.
			refused++
			early++
		case err != nil && strings.Contains(err.Error(), "connection reset by peer"):
			// The server closed with the request unread: the reset lost the 503.
			refused++
			reset++
		default:
			t.Errorf("a new client with %d silent connections open: %d %v after %s", silent, status, err, took)
		}
		if took > time.Second {
			t.Errorf("a new client waited %s for an answer", took)
		}
		if recovered > 0 && served >= 5 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	figure(t, "silent-connections", "%d connections that send nothing: new clients refused %d times (%d of them seen as an error: %d answered before the request was written, %d reset), slowest answer %s; served again %s after they opened (ReadHeaderTimeout 5s)",
		silent, refused, early+reset, early, reset, ms(slowest), recovered.Round(100*time.Millisecond))
	if early+reset > 0 {
		t.Errorf("%d of %d refusals reached the client as an error, not as the JSON 503 (%d answered before the request was written, %d reset with the request unread)",
			early+reset, refused, early, reset)
	}
	if recovered == 0 && refused > 0 {
		t.Errorf("tasks did not serve new clients again within 9s of %d silent connections", silent)
	}
	if recovered > 7*time.Second {
		t.Errorf("silent connections were cut only after %s, want about ReadHeaderTimeout (5s)", recovered)
	}
}

// TestMadeUpMethodsDoNotGrowMetricsOrLogs: 2,000 requests with methods nobody uses, each
// different and some 30 KB long, spread over the three services. Each is answered with a
// JSON 4xx; every service's /metrics (on METRICS_PORT) stays small, with no made-up method
// as a label value; no log line carries a 30 KB method; and /metrics on a public port is a
// JSON 404.
func TestMadeUpMethodsDoNotGrowMetricsOrLogs(t *testing.T) {
	s := startSystem(t)
	services := s.processes()
	metricsSize := func(p *harness.Process) (int, string) {
		resp, err := harness.Client.Get(p.MetricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET %s/metrics: %d", p.Name, p.MetricsURL, resp.StatusCode)
		}
		return len(raw), string(raw)
	}
	sizeBefore := map[string]int{}
	for _, p := range services {
		sizeBefore[p.Name], _ = metricsSize(p)
	}

	const requests, longEvery, longMethod = 2000, 50, 30_000
	paths := []string{"/tasks", "/login", "/", "/token", "/healthz", "/no/such/path"}
	var outcomes counter
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", hostPort(p.URL), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { conn.Close() }()
			reader := bufio.NewReader(conn)
			for n := i; n < requests; n += len(services) {
				method := fmt.Sprintf("MADEUP%dX", n)
				if n%longEvery == 0 {
					method += strings.Repeat("Q", longMethod)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", method, paths[n%len(paths)])
				resp, err := http.ReadResponse(reader, nil)
				if err != nil {
					outcomes.add(p.Name + " no answer")
					// The server may close after an error answer: go on on a new connection.
					conn.Close()
					if conn, err = net.DialTimeout("tcp", hostPort(p.URL), 5*time.Second); err != nil {
						t.Error(err)
						return
					}
					reader = bufio.NewReader(conn)
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var body struct{ Message string }
				if json.Unmarshal(raw, &body) != nil || body.Message == "" || resp.StatusCode < 400 || resp.StatusCode >= 500 {
					outcomes.add(fmt.Sprintf("%s %d not a JSON 4xx", p.Name, resp.StatusCode))
					continue
				}
				outcomes.add(fmt.Sprintf("%s %d", p.Name, resp.StatusCode))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)

	for _, p := range services {
		size, text := metricsSize(p)
		figure(t, "made-up-methods-metrics", "%s /metrics %d bytes before, %d bytes after %d made-up methods (limit 200 KB)",
			p.Name, sizeBefore[p.Name], size, requests)
		if size > 200_000 {
			t.Errorf("%s's /metrics is %d bytes after the made-up methods", p.Name, size)
		}
		if strings.Contains(text, "MADEUP") {
			t.Errorf("%s's /metrics carries a made-up method", p.Name)
		}
		metrics := scrape.Scrape(t, p.MetricsURL)
		for _, name := range []string{"http_requests_total", "http_request_duration_seconds"} {
			for _, m := range metrics[name].GetMetric() {
				for _, label := range m.GetLabel() {
					if label.GetName() == "method" && !standardMethodLabel[label.GetValue()] {
						t.Errorf("%s: %s has method label %.40q", p.Name, name, label.GetValue())
					}
				}
			}
		}
		if other, _ := metrics.Value("http_requests_total", map[string]string{"method": "OTHER"}); other < float64(requests/len(services)-1) {
			t.Errorf("%s counted %v requests as method OTHER, want about %d", p.Name, other, requests/len(services))
		}
		longest := longestLogLine(p)
		figure(t, "made-up-methods-logs", "%s: longest log line %d bytes", p.Name, longest)
		if longest > 4096 {
			t.Errorf("%s logged a %d-byte line: a made-up method is not clipped", p.Name, longest)
		}
		status, answer, _, err := do(harness.Client, "GET", p.URL+"/metrics", "", "")
		if err != nil || status != http.StatusNotFound {
			t.Errorf("%s: GET /metrics on the public port: %d %v %v, want a JSON 404", p.Name, status, answer, err)
		}
	}
	figure(t, "made-up-methods-answers", "%d requests in %s: %s", requests, took.Round(time.Millisecond), &outcomes)
	for outcome, n := range outcomes.n {
		if strings.Contains(outcome, "not") || strings.Contains(outcome, "no answer") {
			t.Errorf("%d made-up method requests: %s", n, outcome)
		}
	}
}

var standardMethodLabel = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
	"OPTIONS": true, "CONNECT": true, "TRACE": true, "OTHER": true,
}

// TestHugeBearerTokensAreRefusedCleanly: a Bearer header of 180,000 '<' is over the header
// limit (431 with JSON); one of 30,000 '<' is under it, and is refused as "Could not verify
// token." without a call to auth. Neither is a 500 or an ERROR log line.
func TestHugeBearerTokensAreRefusedCleanly(t *testing.T) {
	s := startSystem(t)
	addr := hostPort(s.tasks.URL)
	authCalls := func() float64 {
		n, _ := scrape.Scrape(t, s.tasks.MetricsURL).Value("auth_client_requests_total", map[string]string{"call": "/verify-token"})
		return n
	}
	callsBefore := authCalls()
	for _, method := range []string{"GET", "POST"} {
		body := ""
		if method == "POST" {
			body = `{"title":"t","text":"x"}`
		}
		request := func(token string) string {
			return fmt.Sprintf("%s /tasks HTTP/1.1\r\nHost: tasks\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				method, token, len(body), body)
		}
		status, raw := rawExchange(t, addr, request(strings.Repeat("<", 180_000)))
		var answer struct{ Message string }
		if !strings.HasPrefix(status, "431") || json.Unmarshal(raw, &answer) != nil || answer.Message == "" {
			t.Errorf("%s with a 180,000-byte Bearer token: %s %q, want 431 with a JSON message", method, status, raw)
		}
		figure(t, "huge-bearer", "%s with 180,000 '<': %s %s", method, status, strings.TrimSpace(string(raw)))
		status, raw = rawExchange(t, addr, request(strings.Repeat("<", 30_000)))
		answer.Message = ""
		if !strings.HasPrefix(status, "401") || json.Unmarshal(raw, &answer) != nil || answer.Message != "Could not verify token." {
			t.Errorf("%s with a 30,000-byte Bearer token: %s %q, want 401 \"Could not verify token.\"", method, status, raw)
		}
		figure(t, "huge-bearer", "%s with 30,000 '<': %s %s", method, status, strings.TrimSpace(string(raw)))
	}
	if after := authCalls(); after != callsBefore {
		t.Errorf("tasks asked auth about tokens that are not shaped like one: %v calls before, %v after", callsBefore, after)
	}
	for _, p := range s.processes() {
		if lines := errorLines(p); len(lines) > 0 {
			t.Errorf("%s logged ERROR lines: %.300s", p.Name, lines[0])
		}
	}
}

// onNewConnections runs attack on one new connection to addr after another, each with
// deadline, until stop, counting in tally what each got (or its dial error, then pausing).
// attack returns false when it saw stop.
func onNewConnections(stop <-chan struct{}, addr string, deadline time.Duration, tally *counter, attack func(net.Conn) (result string, ok bool)) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			tally.add("dial error")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		conn.SetDeadline(time.Now().Add(deadline))
		result, ok := attack(conn)
		conn.Close()
		if !ok {
			return
		}
		tally.add(result)
	}
}
