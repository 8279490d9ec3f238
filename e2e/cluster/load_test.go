//go:build cluster

package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// getTasks is GET /tasks with the token; anything but 200 is an error.
func getTasks(tasksURL, token string) error {
	return expect(http.MethodGet, tasksURL+"/tasks", token, nil, http.StatusOK)
}

// demoLogin is the course's first request: POST /login as the demo user; anything but
// 200 is an error.
func demoLogin(usersURL string) error {
	body := map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword}
	return expect(http.MethodPost, usersURL+"/login", "", body, http.StatusOK)
}

func expect(method, url, token string, body any, want int) error {
	return harness.Expect(method, url, token, body, want)
}

// load is a set of client loops that run until stopped, or until their time or request
// budget is spent, counting what they sent and what failed.
type load struct {
	stopped   chan struct{}
	wg        sync.WaitGroup
	began     time.Time
	mu        sync.Mutex
	sent      int
	failed    int
	failures  []string // the first few, with when and which loop
	exhausted bool     // a budget ran out before stop
}

// startLoad starts one goroutine per request function; together they send at most
// maxRequests requests within maxTime.
func startLoad(maxTime time.Duration, maxRequests int, requests map[string]func() error) *load {
	l := &load{stopped: make(chan struct{}), began: time.Now()}
	deadline := l.began.Add(maxTime)
	for name, do := range requests {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopped:
					return
				default:
				}
				if !l.take(maxRequests, deadline) {
					return
				}
				if err := do(); err != nil {
					l.fail(name, err)
				}
			}
		}()
	}
	return l
}

// take counts one request, or reports false when a budget is spent.
func (l *load) take(maxRequests int, deadline time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent >= maxRequests || time.Now().After(deadline) {
		l.exhausted = true
		return false
	}
	l.sent++
	return true
}

func (l *load) fail(name string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.failures) < 10 {
		l.failures = append(l.failures, fmt.Sprintf("+%.2fs %s: %v", time.Since(l.began).Seconds(), name, err))
	}
}

// counts returns what was sent and failed so far.
func (l *load) counts() (sent, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed
}

func (l *load) sentNow() int {
	sent, _ := l.counts()
	return sent
}

// waitSent waits up to timeout until n requests have been sent, and reports whether
// they have.
func (l *load) waitSent(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for l.sentNow() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	return true
}

// stop ends the loops and waits for their last requests.
func (l *load) stop() {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	l.wg.Wait()
}

// gapMeter sends one request after another through a port-forward to a Service with a
// single pod while that pod is replaced, and measures the longest time between two
// successful answers: how long a client could not be served. kubectl port-forward ends
// when its pod goes away; the meter starts it again, on a new pod once there is one.
// Its fields are read only after done is closed.
type gapMeter struct {
	fwd      *forward
	do       func(url string) error
	stopping chan struct{} // closed: stop at the next successful answer
	firstOK  chan struct{} // closed at the first successful answer
	done     chan struct{}

	gap         time.Duration
	sent        int
	failed      int
	restarts    int  // port-forwards started again
	answered    bool // the last request succeeded
	lastFailure string
}

// startGapMeter starts the loop; it gives up after maxTime or maxRequests.
func startGapMeter(fwd *forward, maxTime time.Duration, maxRequests int, do func(url string) error) *gapMeter {
	m := &gapMeter{fwd: fwd, do: do,
		stopping: make(chan struct{}), firstOK: make(chan struct{}), done: make(chan struct{})}
	go m.run(time.Now().Add(maxTime), maxRequests)
	return m
}

func (m *gapMeter) run(deadline time.Time, maxRequests int) {
	defer close(m.done)
	var lastOK time.Time
	for time.Now().Before(deadline) && m.sent < maxRequests {
		if !m.fwd.alive() {
			m.restarts++
			if err := m.fwd.start(10 * time.Second); err != nil {
				m.lastFailure = err.Error()
				time.Sleep(100 * time.Millisecond) // pacing: no pod to forward to yet
				continue
			}
		}
		m.sent++
		if err := m.do(m.fwd.URL); err != nil {
			m.failed++
			m.answered = false
			m.lastFailure = err.Error()
			time.Sleep(20 * time.Millisecond) // pacing while nothing answers
			continue
		}
		now := time.Now()
		if lastOK.IsZero() {
			close(m.firstOK)
		} else {
			m.gap = max(m.gap, now.Sub(lastOK))
		}
		lastOK, m.answered = now, true
		select {
		case <-m.stopping:
			return // answered after the replacement: measured
		default:
		}
	}
}

// waitFirstOK waits up to timeout for the first successful answer.
func (m *gapMeter) waitFirstOK(timeout time.Duration) bool {
	select {
	case <-m.firstOK:
		return true
	case <-m.done:
		return false
	case <-time.After(timeout):
		return false
	}
}

// finish asks the loop to stop at its next successful answer, waits for it (the loop
// ends by itself at its deadline), and reports whether the service answered again.
func (m *gapMeter) finish() bool {
	close(m.stopping)
	<-m.done
	return m.answered
}

// endpointGap watches a Service's EndpointSlices while its single pod is replaced and
// measures the longest time with no serving endpoint: how long kube-proxy had nowhere to
// send a connection to the Service (a LoadBalancer's or a ClusterIP's, not a
// port-forward's, which goes to one pod). It polls the API server every 250ms.
type endpointGap struct {
	service  string
	stopping chan struct{}
	done     chan struct{}

	gap          time.Duration
	polls        int
	errors       int
	neverServing bool
}

func startEndpointGap(service string, maxTime time.Duration) *endpointGap {
	g := &endpointGap{service: service, stopping: make(chan struct{}), done: make(chan struct{})}
	go g.run(time.Now().Add(maxTime))
	return g
}

func (g *endpointGap) run(deadline time.Time) {
	defer close(g.done)
	var lastServing time.Time
	for time.Now().Before(deadline) {
		out, err := kubectl(5*time.Second, "get", "endpointslices", "-l", "kubernetes.io/service-name="+g.service,
			"-o", `jsonpath={range .items[*].endpoints[*]}{.conditions.serving}{" "}{end}`)
		g.polls++
		now := time.Now()
		switch {
		case err != nil:
			g.errors++
		case strings.Contains(out, "true"):
			if !lastServing.IsZero() {
				g.gap = max(g.gap, now.Sub(lastServing))
			}
			lastServing = now
			select {
			case <-g.stopping:
				return
			default:
			}
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	// The deadline came with no serving endpoint since the last one seen: that is a gap too.
	if !lastServing.IsZero() {
		g.gap = max(g.gap, time.Since(lastServing))
	}
	g.neverServing = lastServing.IsZero()
}

// finish stops at the next poll that finds a serving endpoint (or the deadline). It fails
// when no poll could read the endpoints or none ever found one serving.
func (g *endpointGap) finish() (time.Duration, error) {
	close(g.stopping)
	<-g.done
	switch {
	case g.polls == 0 || g.errors == g.polls:
		return g.gap, fmt.Errorf("%s: kubectl could not read the endpoints in %d polls", g.service, g.polls)
	case g.neverServing:
		return g.gap, fmt.Errorf("%s: no serving endpoint in %d polls", g.service, g.polls)
	}
	return g.gap, nil
}
