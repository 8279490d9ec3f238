// Command loadclient is the client that make cluster-test (e2e/cluster) runs inside the
// cluster: several clients that each log in, then store a task and list the tasks (which
// must hold it) a few times with the token, over and over, sent to users-service and
// tasks-service by their cluster DNS names. Each new connection goes through kube-proxy to a
// pod that the Service's endpoints hold at that moment, as for any client of the Services; a
// kubectl port-forward goes to one pod and ends with it, so it cannot carry a load through a
// rollout.
//
// The test runs it as a pod (an image FROM scratch holding this binary only) and drives it
// through a port-forward to that pod, on -listen:
//
//	GET  /healthz  200: the pod's readiness
//	POST /start    the clients start (signing up their accounts the first time)
//	GET  /status   the report so far, as JSON
//	POST /stop     the clients stop; every task acknowledged (201) since /start is looked for
//	               in its owner's GET /tasks; the report, as JSON
//
// The clients are ordinary Go HTTP clients that keep connections alive, as most programs
// do, and do not retry: a request that fails is a failure of the report. They stop by
// themselves -max-run after /start, so a test that died leaves no load behind.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kub-demo/kub-demo/e2e/cluster/loadreport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type config struct {
	listen, usersURL, tasksURL string
	clients                    int
	period                     time.Duration
	rounds                     int
	maxLogins                  int
	maxRun                     time.Duration
	tasksPerAccount            int
}

func run(ctx context.Context, args []string) error {
	var cfg config
	flags := flag.NewFlagSet("loadclient", flag.ContinueOnError)
	flags.StringVar(&cfg.listen, "listen", ":8080", "address of the control API")
	flags.StringVar(&cfg.usersURL, "users", "http://users-service:8080", "users' base URL")
	flags.StringVar(&cfg.tasksURL, "tasks", "http://tasks-service:8000", "tasks' base URL")
	flags.IntVar(&cfg.clients, "clients", 6, "clients, each with an account of its own")
	flags.DurationVar(&cfg.period, "period", time.Second, "each client starts an iteration every period: a login, then -rounds POST /tasks + GET /tasks with its token")
	flags.IntVar(&cfg.rounds, "rounds", 10, "POST /tasks + GET /tasks per login")
	// auth runs one bcrypt per CPU and queues two more, then sheds with 503 (its limits,
	// README): 3 logins at once fit one auth pod of one CPU, so the load stays within what
	// auth accepts, and below users' 4 logins in flight per client address.
	flags.IntVar(&cfg.maxLogins, "max-logins", 3, "logins in flight at once, over all clients")
	flags.DurationVar(&cfg.maxRun, "max-run", 5*time.Minute, "the clients stop by themselves this long after /start")
	flags.IntVar(&cfg.tasksPerAccount, "tasks-per-account", 900, "a client signs up a new account after storing this many tasks (tasks' quota is 1,000)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if cfg.clients < 1 || cfg.period <= 0 || cfg.rounds < 1 || cfg.maxLogins < 1 || cfg.maxRun <= 0 || cfg.tasksPerAccount < 1 {
		return errors.New("-clients, -period, -rounds, -max-logins, -max-run and -tasks-per-account must be positive")
	}

	l := newLoad(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, _ *http.Request) {
		if err := l.start(); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		writeJSON(w, l.report())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, l.report()) })
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, l.stop()) })
	srv := &http.Server{Addr: cfg.listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	log.Printf("control API on %s; users %s, tasks %s, %d clients every %s, %d rounds", cfg.listen, cfg.usersURL, cfg.tasksURL, cfg.clients, cfg.period, cfg.rounds)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	l.stop()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

const maxListed = 20 // failures and missing tasks kept in a report

type account struct {
	email, password string
	stored          int      // tasks stored over the pod's life
	acknowledged    []string // titles stored with a 201 since /start
}

type load struct {
	cfg    config
	client *http.Client
	logins chan struct{} // a slot per login in flight

	mu       sync.Mutex
	running  bool
	stopping chan struct{}
	clients  *sync.WaitGroup // this run's
	began    time.Time
	ended    time.Time
	rep      loadreport.Report
	accounts []*account // every account used since /start, for the final check
	owned    []*account // each client's current account
	serial   int        // numbers titles and accounts uniquely over the pod's life
}

func newLoad(cfg config) *load {
	return &load{
		cfg: cfg,
		// A program's usual client: connections kept alive and reused, no retry of a POST.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.clients, IdleConnTimeout: 90 * time.Second,
		}},
		logins: make(chan struct{}, cfg.maxLogins),
		owned:  make([]*account, cfg.clients),
	}
}

func (l *load) start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return errors.New("already running")
	}
	// A run starts on new connections, spread over the Services' pods as they are now: kept
	// alive from the last run, they would all go to the pods that were there then.
	l.client.CloseIdleConnections()
	l.running, l.stopping, l.clients, l.began = true, make(chan struct{}), &sync.WaitGroup{}, time.Now()
	l.rep, l.accounts = loadreport.Report{Running: true}, nil
	for _, a := range l.owned {
		if a != nil {
			a.acknowledged = nil
			l.accounts = append(l.accounts, a)
		}
	}
	deadline := time.After(l.cfg.maxRun)
	stopping := l.stopping
	go func() {
		select {
		case <-deadline:
			log.Printf("-max-run %s reached: stopping the clients", l.cfg.maxRun)
			l.halt()
		case <-stopping:
		}
	}()
	for i := range l.cfg.clients {
		l.clients.Add(1)
		go l.runClient(i, stopping, l.clients)
	}
	log.Printf("started %d clients", l.cfg.clients)
	return nil
}

// halt stops the clients and waits for their last requests.
func (l *load) halt() {
	l.mu.Lock()
	if l.running {
		l.running, l.ended = false, time.Now()
		close(l.stopping)
	}
	clients := l.clients
	l.mu.Unlock()
	if clients != nil {
		clients.Wait()
	}
}

// stop halts the clients, checks that every acknowledged task is listed, and returns the
// report of the run.
func (l *load) stop() loadreport.Report {
	l.halt()
	l.mu.Lock()
	accounts := slices.Clone(l.accounts)
	l.mu.Unlock()

	var missing []string
	var checkErrors []string
	acknowledged, listed := 0, 0
	for _, a := range accounts {
		acknowledged += len(a.acknowledged)
		if len(a.acknowledged) == 0 {
			continue
		}
		titles, err := l.listTitles(a)
		if err != nil {
			checkErrors = append(checkErrors, fmt.Sprintf("%s: %v", a.email, err))
			continue
		}
		for _, title := range a.acknowledged {
			if titles[title] {
				listed++
			} else {
				missing = append(missing, title)
			}
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rep
	r.Running = false
	r.Seconds = l.ended.Sub(l.began).Seconds()
	r.Failures = slices.Clone(r.Failures)
	r.Pods = maps.Clone(r.Pods)
	r.Acknowledged, r.Listed, r.MissingCount = acknowledged, listed, len(missing)
	r.Missing = missing[:min(len(missing), maxListed)]
	r.CheckErrors = checkErrors
	log.Printf("stopped: %+v", r)
	return r
}

// report is the report so far (without the final check).
func (l *load) report() loadreport.Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rep
	r.Failures = slices.Clone(r.Failures)
	r.Pods = maps.Clone(r.Pods)
	if r.Running {
		r.Seconds = time.Since(l.began).Seconds()
	}
	return r
}

// runClient logs in, stores a task and lists the tasks once every period until stopping.
func (l *load) runClient(i int, stopping chan struct{}, clients *sync.WaitGroup) {
	defer clients.Done()
	// Spread the clients over the period instead of all at once.
	select {
	case <-time.After(l.cfg.period * time.Duration(i) / time.Duration(l.cfg.clients)):
	case <-stopping:
		return
	}
	tick := time.NewTicker(l.cfg.period)
	defer tick.Stop()
	for {
		l.iteration(i)
		select {
		case <-tick.C:
		case <-stopping:
			return
		}
	}
}

// iteration logs client i in, then stores a task and lists the tasks -rounds times, each
// list required to hold the task just stored.
func (l *load) iteration(i int) {
	a, err := l.account(i)
	if err != nil {
		return // counted as a signup
	}
	// Each request's X-Request-ID, in the services' log lines and in the failures, says
	// which request of which client it was.
	id := func(step string) string {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.serial++
		return fmt.Sprintf("load-c%d-%d-%s", i, l.serial, step)
	}
	token, err := l.login(a, id("login"))
	l.count(i, &l.rep.Login, err)
	if err != nil {
		return
	}
	for range l.cfg.rounds {
		createID := id("create")
		title := fmt.Sprintf("load %d %s", l.began.UnixNano(), createID)
		status, body, err := l.send(http.MethodPost, l.cfg.tasksURL+"/tasks", token, map[string]string{"title": title, "text": "from e2e/cluster's load"}, createID)
		if err == nil && status != http.StatusCreated {
			err = fmt.Errorf("POST /tasks (X-Request-ID %s): %d %s", createID, status, body)
		}
		if err == nil {
			l.mu.Lock()
			a.stored++
			a.acknowledged = append(a.acknowledged, title)
			l.mu.Unlock()
		}
		l.count(i, &l.rep.Create, err)
		if err != nil {
			return
		}
		listID := id("list")
		titles, err := l.list(token, listID)
		if err == nil && !titles[title] {
			err = fmt.Errorf("GET /tasks (X-Request-ID %s) does not list %q, acknowledged by its POST just before", listID, title)
		}
		l.count(i, &l.rep.List, err)
		if err != nil {
			return
		}
	}
}

// account is client i's account, signed up the first time and again when it has stored
// tasksPerAccount tasks.
func (l *load) account(i int) (*account, error) {
	l.mu.Lock()
	a := l.owned[i]
	if a != nil && a.stored < l.cfg.tasksPerAccount {
		l.mu.Unlock()
		return a, nil
	}
	l.serial++
	a = &account{email: fmt.Sprintf("load-%d-%d@example.com", time.Now().UnixNano(), l.serial), password: "load-client-password"}
	l.mu.Unlock()
	status, body, err := l.send(http.MethodPost, l.cfg.usersURL+"/signup", "", map[string]string{"email": a.email, "password": a.password}, fmt.Sprintf("load-c%d-signup", i))
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("POST /signup: %d %s", status, body)
	}
	l.count(i, &l.rep.Signup, err)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.owned[i] = a
	l.accounts = append(l.accounts, a)
	l.mu.Unlock()
	return a, nil
}

func (l *load) login(a *account, requestID string) (string, error) {
	l.logins <- struct{}{}
	defer func() { <-l.logins }()
	status, body, err := l.send(http.MethodPost, l.cfg.usersURL+"/login", "", map[string]string{"email": a.email, "password": a.password}, requestID)
	if err != nil {
		return "", err
	}
	var answer struct{ Token string }
	if status != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Token == "" {
		return "", fmt.Errorf("POST /login (X-Request-ID %s): %d %s", requestID, status, body)
	}
	return answer.Token, nil
}

// list is GET /tasks: the titles listed.
func (l *load) list(token, requestID string) (map[string]bool, error) {
	status, body, err := l.send(http.MethodGet, l.cfg.tasksURL+"/tasks", token, nil, requestID)
	if err != nil {
		return nil, err
	}
	var answer struct{ Tasks []struct{ Title string } }
	if status != http.StatusOK || json.Unmarshal(body, &answer) != nil {
		return nil, fmt.Errorf("GET /tasks (X-Request-ID %s): %d %.200s", requestID, status, body)
	}
	titles := make(map[string]bool, len(answer.Tasks))
	for _, t := range answer.Tasks {
		titles[t.Title] = true
	}
	return titles, nil
}

// listTitles logs in as a and lists its tasks: the final check.
func (l *load) listTitles(a *account) (map[string]bool, error) {
	token, err := l.login(a, "load-check-login")
	if err != nil {
		return nil, err
	}
	return l.list(token, "load-check-list")
}

func (l *load) send(method, url, token string, body any, requestID string) (int, []byte, error) {
	var payload io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		payload = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, payload)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", requestID)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w (X-Request-ID %s)", err, requestID)
	}
	defer resp.Body.Close()
	l.tallyPods(resp.Header)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s (X-Request-ID %s): reading the answer: %w", method, req.URL.Path, requestID, err)
	}
	return resp.StatusCode, bytes.TrimSpace(raw), nil
}

// tallyPods counts the pods an answer's trail names: the one that served it (X-Served-By:
// "service pod ip node version") and, for tasks, the auth pod that verified the token
// (X-Auth-Verified-By, the same, then "; cached …" when tasks' cache answered).
func (l *load) tallyPods(h http.Header) {
	var pods []string
	for _, v := range append(h.Values("X-Served-By"), h.Values("X-Auth-Verified-By")...) {
		v, _, _ = strings.Cut(v, ";")
		if f := strings.Fields(v); len(f) >= 2 {
			pods = append(pods, f[0]+" "+f[1])
		}
	}
	if len(pods) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rep.Pods == nil {
		l.rep.Pods = map[string]int{}
	}
	for _, p := range pods {
		l.rep.Pods[p]++
	}
}

// count counts one request of a kind, failed when err is not nil.
func (l *load) count(i int, c *loadreport.Counts, err error) {
	l.mu.Lock()
	c.Sent++
	l.mu.Unlock()
	if err != nil {
		l.fail(i, c, err)
	}
}

func (l *load) fail(i int, c *loadreport.Counts, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Failed++
	if len(l.rep.Failures) < maxListed {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		l.rep.Failures = append(l.rep.Failures, fmt.Sprintf("+%.2fs client %d: %s", time.Since(l.began).Seconds(), i, msg))
	}
	log.Printf("client %d: %v", i, err)
}
