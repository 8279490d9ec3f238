package chainview

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/trail"
)

// viewServer serves v as GET /discovery does, naming pod in X-Served-By.
func viewServer(t *testing.T, v discovery.View, pod string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/discovery" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(trail.ServedBy, pod)
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(s.Close)
	return s
}

func own(context.Context) discovery.View {
	return discovery.View{Service: "frontend", Warnings: []string{}}
}

func byService(a Answer) map[string]Entry {
	m := map[string]Entry{}
	for _, e := range a.Views {
		m[e.Service] = e
	}
	return m
}

func TestOffUnlessASettingAsks(t *testing.T) {
	c := &Chain{Settings: Settings{ChainPort: 9090}, Own: own}
	a := c.Look(context.Background())
	if a.Enabled || len(a.Views) != 0 {
		t.Fatalf("views shown with no setting: %+v", a)
	}
	for _, want := range []string{"DISCOVERY_CHAIN=true", "LAB_CONTROLS=true", "TASKS_DISCOVERY_URL", "NetworkPolicies"} {
		if !strings.Contains(a.Off, want) {
			t.Errorf("the page is not told %q: %s", want, a.Off)
		}
	}
}

func TestExplicitURLsShowTheirViewsAndSayWhatIsOff(t *testing.T) {
	tasks := viewServer(t, discovery.View{Service: "tasks", Warnings: []string{"AUTH_SERVICE_SERIVCE_HOST is set"}}, "tasks tasks-a 10.0.0.2 - dev")
	c := &Chain{Settings: Settings{ChainPort: 9090, TasksURL: tasks.URL + "/discovery"}, Own: own, OwnPod: "frontend fe-1 - - dev"}
	a := c.Look(context.Background())
	got := byService(a)
	if !a.Enabled || len(a.Views) != 4 {
		t.Fatalf("want the frontend, users, tasks and auth: %+v", a)
	}
	if got["frontend"].View == nil || got["frontend"].Pod != "frontend fe-1 - - dev" {
		t.Errorf("the frontend's own view: %+v", got["frontend"])
	}
	if e := got["tasks"]; e.View == nil || e.Pod != "tasks tasks-a 10.0.0.2 - dev" || e.Setting != "TASKS_DISCOVERY_URL" || e.View.Warnings[0] != "AUTH_SERVICE_SERIVCE_HOST is set" {
		t.Errorf("tasks' view: %+v", e)
	}
	if e := got["users"]; e.View != nil || !strings.Contains(e.Off, "USERS_DISCOVERY_URL") || !strings.Contains(e.Off, "DISCOVERY_CHAIN=true") {
		t.Errorf("users' view is not said to be off, with the settings that turn it on: %+v", e)
	}
	if e := got["auth"]; e.View != nil || !strings.Contains(e.Off, "AUTH_DISCOVERY_URL") {
		t.Errorf("auth's view: %+v", e)
	}
}

// port is the port of a test server's URL.
func port(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	n, _ := strconv.Atoi(p)
	if err != nil || n == 0 {
		t.Fatalf("no port in %s", rawURL)
	}
	return p, n
}

func TestTheChainFollowsEachServiceToTheNext(t *testing.T) {
	// One metrics port for all three, as in compose (users:9090, tasks:9090, auth:9090): here
	// one server answers for the three names, by the Host it is asked for.
	views := map[string]discovery.View{
		"users.test": {Service: "users", Peers: []discovery.PeerView{{Name: "auth", URL: "http://auth.test:80"}}},
		"tasks.test": {Service: "tasks", Peers: []discovery.PeerView{{Name: "auth", URL: "http://auth.test:80"}}},
		"auth.test":  {Service: "auth"},
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		w.Header().Set(trail.ServedBy, strings.TrimSuffix(host, ".test")+" pod-of-"+host)
		json.NewEncoder(w).Encode(views[host])
	}))
	defer s.Close()
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, s.Listener.Addr().String()) // every name is this server
	}}}
	p, metricsPort := port(t, s.URL)
	c := &Chain{
		Settings:    Settings{ChainPort: metricsPort},
		LabControls: true,
		Users:       discovery.Found{URL: "http://users.test:8080", Source: "USERS_ADDRESS"},
		Tasks:       discovery.Found{URL: "http://tasks.test:8000", Source: "TASKS_ADDRESS"},
		Own:         own,
		Client:      client,
	}
	got := byService(c.Look(context.Background()))
	for _, svc := range []string{"users", "tasks", "auth"} {
		e := got[svc]
		if e.View == nil || e.View.Service != svc || e.Pod != svc+" pod-of-"+svc+".test" {
			t.Errorf("%s: %+v", svc, e)
		}
		if want := "http://" + svc + ".test:" + p + "/discovery"; e.From != want {
			t.Errorf("%s's view from %s, want %s", svc, e.From, want)
		}
		if !strings.HasPrefix(e.Setting, "LAB_CONTROLS") {
			t.Errorf("%s's view is not said to come from LAB_CONTROLS: %q", svc, e.Setting)
		}
	}
	if !strings.Contains(got["auth"].Setting, "tasks found auth") {
		t.Errorf("auth's host is not said to be where tasks found it: %q", got["auth"].Setting)
	}
}

func TestWhatCannotBeFetchedIsSaidInWords(t *testing.T) {
	// On one machine every service has the same host: the chain's guess of auth's metrics
	// port finds tasks' view there instead.
	tasks := viewServer(t, discovery.View{Service: "tasks", Peers: []discovery.PeerView{{Name: "auth", URL: "http://127.0.0.1:80"}}}, "")
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers: a dropped packet's look-alike
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_, metricsPort := port(t, tasks.URL)
	c := &Chain{
		Settings: Settings{Chain: true, ChainPort: metricsPort, UsersURL: refused.URL + "/discovery"},
		Tasks:    discovery.Found{URL: tasks.URL},
		Own:      own,
		Client:   &http.Client{Timeout: 200 * time.Millisecond},
	}
	got := byService(c.Look(context.Background()))
	if e := got["users"]; !strings.Contains(e.Error, "could not fetch "+refused.URL) || !strings.Contains(e.Error, "connection refused") {
		t.Errorf("users, refused: %q", e.Error)
	}
	if e := got["auth"]; !strings.Contains(e.Error, "tasks's view, not auth's") || !strings.Contains(e.Error, "AUTH_DISCOVERY_URL") {
		t.Errorf("auth, found tasks' view: %q", e.Error)
	}

	c.Settings.UsersURL = "http://" + silent.Addr().String() + "/discovery"
	if e := byService(c.Look(context.Background()))["users"]; !strings.Contains(e.Error, "no answer in time") || !strings.Contains(e.Error, "NetworkPolicy") {
		t.Errorf("users, silent: %q", e.Error)
	}
}

func TestSettingsRefuseWhatIsNotAURL(t *testing.T) {
	for _, s := range []Settings{
		{ChainPort: 9090, TasksURL: "tasks:9090/discovery"},
		{ChainPort: 9090, AuthURL: "ftp://auth/discovery"},
		{ChainPort: 0},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := (Settings{ChainPort: 9090, UsersURL: "http://users:9090/discovery"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestHandlerServesTheAnswerAsJSON(t *testing.T) {
	c := &Chain{Settings: Settings{ChainPort: 9090}, Own: own}
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/network/discovery", nil))
	var a Answer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Code != 200 || a.Off != Off || a.Views == nil {
		t.Errorf("%d %s (%v)", rec.Code, rec.Body, err)
	}
	if rec.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("headers %v", rec.Header())
	}
}
