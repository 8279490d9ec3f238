package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

const (
	requestIDHeader = "X-Request-ID"
	// The services take a client's X-Request-ID when it is up to 128 characters of
	// letters, digits and -_.: ; the prefix leaves room for "-<step>".
	maxPrefixLen = 100
	// A long-lived deployment can list many tasks; the cap only guards against a URL
	// that streams something endless.
	maxBody = 64 << 20
)

type config struct {
	users, tasks    string // base URLs without a trailing slash
	email, password string
	timeout         time.Duration
	requestID       string // prefix; empty: send none
}

// run is the whole command: it parses args, runs the steps, prints to stdout and returns
// the exit status. Flag errors go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "smoke: %v\n", err)
		fmt.Fprintln(stderr, "run `go run ./cmd/smoke -h` for the flags")
		return exitUsage
	}
	s := &smoke{
		cfg:         cfg,
		out:         stdout,
		client:      &http.Client{},
		unreachable: map[string]string{},
	}
	return s.run(ctx)
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.users, "users", "", "base URL of the users service, e.g. http://localhost:8080 (required)")
	fs.StringVar(&cfg.tasks, "tasks", "", "base URL of the tasks service, e.g. http://localhost:8000 (required)")
	fs.StringVar(&cfg.email, "email", "test@gmail.com", "email to log in with (the demo user by default)")
	fs.StringVar(&cfg.password, "password", "testers", "password to log in with")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "longest wait for each request")
	fs.StringVar(&cfg.requestID, "request-id", "", "send X-Request-ID: `PREFIX`-<step> on each step, to find the requests in the services' logs")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `smoke runs the course's flow against a running kub-demo and prints PASS or FAIL per step.

  go run ./cmd/smoke --users http://localhost:8080 --tasks http://localhost:8000

  make run / docker compose:  --users http://localhost:8080 --tasks http://localhost:8000
  minikube:                   --users "$(minikube service users-service --url)" --tasks "$(minikube service tasks-service --url)"

Exit status: 0 all steps passed, 1 a step failed, 2 bad flags.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	var err error
	if cfg.users, err = baseURL("users", cfg.users); err != nil {
		return cfg, err
	}
	if cfg.tasks, err = baseURL("tasks", cfg.tasks); err != nil {
		return cfg, err
	}
	if cfg.timeout <= 0 {
		return cfg, fmt.Errorf("--timeout must be above zero, got %s", cfg.timeout)
	}
	if cfg.email == "" || cfg.password == "" {
		return cfg, errors.New("--email and --password must not be empty")
	}
	if cfg.requestID != "" && !validPrefix(cfg.requestID) {
		return cfg, fmt.Errorf("--request-id %q: use up to %d letters, digits and - _ . : (the services replace other ids with one of their own)", cfg.requestID, maxPrefixLen)
	}
	return cfg, nil
}

// baseURL checks a --users or --tasks value and returns it without a trailing slash. A
// value without a scheme gets http://, so "localhost:8080" works too.
func baseURL(name, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("--%s is required, e.g. --%s http://localhost:%s", name, name, map[string]string{"users": "8080", "tasks": "8000"}[name])
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--%s: %v", name, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--%s %q: the URL must start with http:// or https://", name, raw)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--%s %q: want a base URL such as http://localhost:8080, with no query or user", name, raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func validPrefix(p string) bool {
	if len(p) > maxPrefixLen {
		return false
	}
	for _, c := range []byte(p) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// smoke holds one run: what the steps pass on to each other, and the results.
type smoke struct {
	cfg    config
	out    io.Writer
	client *http.Client

	token string
	task  map[string]string
	// trail is the pods the step's last answer named (trailOf), shown on its line.
	trail string

	// unreachable maps a service to the step that could not reach it; later steps
	// against it are skipped, so a wrong URL fails fast instead of timing out per step.
	unreachable map[string]string
	passed      int
	failed      []string
	skipped     int
}

// step is one check of the flow.
type step struct {
	name    string // short, in the output and in the request id
	service string // "users" or "tasks"
	// needsToken: skipped when login did not give one.
	needsToken bool
	check      func(s *smoke, ctx context.Context, id string) (detail, gotID string, err error)
}

var steps = []step{
	{name: "login", service: "users", check: (*smoke).login},
	{name: "create-task", service: "tasks", needsToken: true, check: (*smoke).createTask},
	{name: "find-task", service: "tasks", needsToken: true, check: (*smoke).findTask},
	{name: "no-token", service: "tasks", check: (*smoke).noToken},
}

func (s *smoke) run(ctx context.Context) int {
	fmt.Fprintf(s.out, "smoke: users %s, tasks %s, timeout %s per request\n", s.cfg.users, s.cfg.tasks, s.cfg.timeout)
	start := time.Now()
	for _, st := range steps {
		s.runStep(ctx, st)
	}
	total := time.Since(start)
	if len(s.failed) == 0 && s.skipped == 0 {
		fmt.Fprintf(s.out, "smoke: PASS, %d of %d steps passed in %s\n", s.passed, len(steps), ms(total))
		return exitPass
	}
	fmt.Fprintf(s.out, "smoke: FAIL, %d passed, %d failed (%s), %d skipped, in %s\n",
		s.passed, len(s.failed), strings.Join(s.failed, ", "), s.skipped, ms(total))
	return exitFail
}

func (s *smoke) runStep(ctx context.Context, st step) {
	skip := func(why string) {
		s.skipped++
		fmt.Fprintf(s.out, "SKIP  %-11s %8s  %s\n", st.name, "", why)
	}
	if by, ok := s.unreachable[st.service]; ok {
		skip(fmt.Sprintf("%s is unreachable (see %s)", st.service, by))
		return
	}
	if st.needsToken && s.token == "" {
		skip("needs the token that login did not give")
		return
	}
	if st.name == "find-task" && s.task == nil {
		skip("needs the task that create-task did not store")
		return
	}
	id := ""
	if s.cfg.requestID != "" {
		id = s.cfg.requestID + "-" + st.name
	}
	s.trail = ""
	start := time.Now()
	detail, gotID, err := st.check(s, ctx, id)
	took := time.Since(start)
	if err != nil {
		var ne *networkError
		if errors.As(err, &ne) {
			s.unreachable[st.service] = st.name
		}
		s.failed = append(s.failed, st.name)
		fmt.Fprintf(s.out, "FAIL  %-11s %8s  %v%s%s\n", st.name, ms(took), err, viaNote(s.trail), idNote(id, gotID))
		return
	}
	s.passed++
	fmt.Fprintf(s.out, "PASS  %-11s %8s  %s%s%s\n", st.name, ms(took), detail, viaNote(s.trail), idNote(id, gotID))
}

// viaNote shows which pods answered, when the answer said (X-Served-By; SERVED_BY=false
// leaves it out).
func viaNote(trail string) string {
	if trail == "" {
		return ""
	}
	return "  via " + trail
}

// trailOf is the pods an answer's headers name, in the order the request went: the one that
// served it (X-Served-By: "service pod ip node version"), then the auth pod that verified its
// token (X-Auth-Verified-By), e.g. "tasks tasks-5d2 → auth auth-8f1 (cached 3s ago)"; "" when
// they name none.
func trailOf(h http.Header) string {
	var hops []string
	for _, v := range h.Values("X-Served-By") {
		if f := strings.Fields(v); len(f) >= 2 {
			hops = append(hops, f[0]+" "+f[1])
		}
	}
	if by, cached, _ := strings.Cut(h.Get("X-Auth-Verified-By"), ";"); by != "" {
		if f := strings.Fields(by); len(f) >= 2 {
			hop := f[0] + " " + f[1]
			if cached = strings.TrimSpace(cached); cached != "" {
				hop += " (" + cached + ")"
			}
			hops = append(hops, hop)
		}
	}
	return strings.Join(hops, " → ")
}

// idNote shows the request id to grep the logs for: the one the service answered with
// (it echoes the one sent, or makes one up), else the one sent.
func idNote(sent, got string) string {
	switch {
	case got == "" && sent == "":
		return ""
	case got == "":
		return "  request-id=" + sent
	case sent != "" && got != sent:
		return "  request-id=" + got + " (sent " + sent + ")"
	default:
		return "  request-id=" + got
	}
}

func (s *smoke) login(ctx context.Context, id string) (string, string, error) {
	creds := map[string]string{"email": s.cfg.email, "password": s.cfg.password}
	a, err := s.call(ctx, "users", http.MethodPost, s.cfg.users+"/login", "", id, creds)
	if err != nil {
		return "", "", err
	}
	token, _ := a.body["token"].(string)
	if a.status != http.StatusOK || token == "" {
		hint := ""
		if a.status == http.StatusUnauthorized && s.cfg.email == "test@gmail.com" {
			hint = " (is the demo user switched off with DEMO_USER=\"\"? then pass --email and --password of a user that exists)"
		}
		return "", a.id, fmt.Errorf("POST /login as %s: got %s, want 200 with a token%s", s.cfg.email, a, hint)
	}
	s.token = token
	return fmt.Sprintf("POST /login as %s: 200, token received", s.cfg.email), a.id, nil
}

func (s *smoke) createTask(ctx context.Context, id string) (string, string, error) {
	task := map[string]string{
		"title": "smoke " + time.Now().UTC().Format("2006-01-02T15:04:05Z") + " " + randomHex(4),
		"text":  "stored by cmd/smoke",
	}
	a, err := s.call(ctx, "tasks", http.MethodPost, s.cfg.tasks+"/tasks", s.token, id, task)
	if err != nil {
		return "", "", err
	}
	created, _ := a.body["createdTask"].(map[string]any)
	if a.status != http.StatusCreated || a.message() != "Task stored." {
		return "", a.id, fmt.Errorf("POST /tasks: got %s, want 201 \"Task stored.\"", a)
	}
	if created["title"] != task["title"] || created["text"] != task["text"] {
		return "", a.id, fmt.Errorf("POST /tasks: createdTask is %v, want title %q and text %q", a.body["createdTask"], task["title"], task["text"])
	}
	s.task = task
	return fmt.Sprintf("POST /tasks: 201, stored %q", task["title"]), a.id, nil
}

func (s *smoke) findTask(ctx context.Context, id string) (string, string, error) {
	a, err := s.call(ctx, "tasks", http.MethodGet, s.cfg.tasks+"/tasks", s.token, id, nil)
	if err != nil {
		return "", "", err
	}
	if a.status != http.StatusOK || a.message() != "Tasks loaded." {
		return "", a.id, fmt.Errorf("GET /tasks: got %s, want 200 \"Tasks loaded.\"", a)
	}
	list, ok := a.body["tasks"].([]any)
	if !ok {
		return "", a.id, fmt.Errorf("GET /tasks: no \"tasks\" list in %s", a)
	}
	for _, item := range list {
		if t, _ := item.(map[string]any); t["title"] == s.task["title"] && t["text"] == s.task["text"] {
			return fmt.Sprintf("GET /tasks: 200, found ours among %d", len(list)), a.id, nil
		}
	}
	return "", a.id, fmt.Errorf("GET /tasks: 200 with %d tasks, but not %q, stored a moment ago (several tasks replicas with separate volumes?)", len(list), s.task["title"])
}

func (s *smoke) noToken(ctx context.Context, id string) (string, string, error) {
	a, err := s.call(ctx, "tasks", http.MethodGet, s.cfg.tasks+"/tasks", "", id, nil)
	if err != nil {
		return "", "", err
	}
	if a.status != http.StatusUnauthorized || a.message() != "No token provided." {
		return "", a.id, fmt.Errorf("GET /tasks without a token: got %s, want 401 \"No token provided.\"", a)
	}
	return "GET /tasks without a token: 401 \"No token provided.\"", a.id, nil
}

// answer is a response with its body decoded as a JSON object.
type answer struct {
	status int
	body   map[string]any
	raw    []byte
	id     string // the response's X-Request-ID
}

func (a answer) message() string { m, _ := a.body["message"].(string); return m }

// String shows the status and the start of the body, for failure messages.
func (a answer) String() string {
	raw := strings.TrimSpace(string(a.raw))
	if len(raw) > 200 {
		raw = raw[:200] + "…"
	}
	if raw == "" {
		raw = "(empty body)"
	}
	return fmt.Sprintf("%d %s", a.status, raw)
}

// networkError is a request that got no HTTP answer at all.
type networkError struct{ msg string }

func (e *networkError) Error() string { return e.msg }

// call sends one request and decodes the JSON answer. service names the service in
// messages; token, when set, goes in Authorization: Bearer; id, when set, in X-Request-ID.
func (s *smoke) call(ctx context.Context, service, method, target, token, id string, in any) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return answer{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if id != "" {
		req.Header.Set(requestIDHeader, id)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return answer{}, &networkError{unreachableMessage(service, target, s.cfg.timeout, err)}
	}
	defer res.Body.Close()
	s.trail = trailOf(res.Header)
	a := answer{status: res.StatusCode, id: res.Header.Get(requestIDHeader)}
	a.raw, err = io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return a, &networkError{fmt.Sprintf("%s %s: %d, then reading the body failed: %v", method, target, res.StatusCode, err)}
	}
	if err := json.Unmarshal(a.raw, &a.body); err != nil || a.body == nil {
		return a, fmt.Errorf("%s %s: got %s, which is not a JSON object: is this URL the %s service?", method, target, a, service)
	}
	return a, nil
}

// unreachableMessage says why a request got no answer and what to check.
func unreachableMessage(service, target string, timeout time.Duration, err error) string {
	u, _ := url.Parse(target)
	host, port := u.Host, u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("%s: interrupted", target)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("no answer from %s at %s within %s: check the host and port; with minikube's Docker driver "+
			"keep `minikube service %s-service --url` running in its own terminal and use the URL it prints; "+
			"a slow but working deployment needs a longer --timeout", service, host, timeout, service)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %q (the host of --%s): check the URL for typos", u.Hostname(), service)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach %s at %s: connection refused, nothing listens there. Is it running "+
			"(make run, make up, kubectl get pods), and is %s the right port (USERS_HOST_PORT/TASKS_HOST_PORT with compose, "+
			"`minikube service %s-service --url` with minikube)?", service, host, port, service)
	default:
		return fmt.Sprintf("cannot reach %s at %s: %v: check the URL and that the service is running", service, host, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ms formats a duration for the step lines: 0.4ms, 64ms, 1.2s.
func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
