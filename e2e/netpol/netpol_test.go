package netpol

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTryClassifiesWhatHappened: an answer, a refused connection and a name that does not
// resolve each read as what they are.
func TestTryClassifiesWhatHappened(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	defer server.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for url, want := range map[string]string{
		server.URL + "/healthz":              "HTTP 401",
		"http://" + closed + "/healthz":      Refused,
		"http://no-such-service.invalid:80/": DNSFailure,
	} {
		if got := Try(context.Background(), url, 2*time.Second); got.Outcome != want {
			t.Errorf("Try(%s) = %+v, want %s", url, got, want)
		}
	}
}

// report answers every edge as connected or not by connect.
func report(connect func(Edge) bool) Report {
	r := Report{Edges: Edges(), Results: map[string]Result{}}
	for _, e := range r.Edges {
		outcome := TimedOut
		if connect(e) {
			outcome = "HTTP 200"
		}
		r.Results[e.Name()] = Result{Edge: e.Name(), Outcome: outcome}
	}
	return r
}

func TestVerdicts(t *testing.T) {
	enforced := report(func(e Edge) bool { return e.Allowed })
	if v, p := enforced.Verdict(), enforced.Problems(true); v != Enforced || len(p) != 0 {
		t.Errorf("policies as written: %s, %v", v, p)
	}
	open := report(func(Edge) bool { return true })
	if v := open.Verdict(); v != NotEnforced {
		t.Errorf("everything connects: %s, want %s", v, NotEnforced)
	}
	if p := open.Problems(false); len(p) != 0 {
		t.Errorf("not expecting enforcement, an open cluster is no failure: %v", p)
	}
	if p := open.Problems(true); len(p) != 8 {
		t.Errorf("expecting enforcement, an open cluster fails on every denied edge: %d problems, want 8: %v", len(p), p)
	}
	closed := report(func(Edge) bool { return false })
	if v := closed.Verdict(); v != Broken || len(closed.Problems(false)) == 0 {
		t.Errorf("nothing connects: %s, %v", v, closed.Problems(false))
	}
	var out strings.Builder
	open.Write(&out)
	for _, want := range []string{"outsider  auth-service:80", "LEAK: not blocked", "NOT ENFORCED", "kind v0.24", "--cni=calico"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report of an open cluster lacks %q:\n%s", want, out.String())
		}
	}
}

// TestEdgesFollowThePolicies: what the matrix expects of the edges a learner asks about.
func TestEdgesFollowThePolicies(t *testing.T) {
	allowed := map[string]bool{}
	for _, e := range Edges() {
		allowed[e.Name()] = e.Allowed
	}
	for name, want := range map[string]bool{
		"outsider -> auth-service:80":          false,
		"users -> auth-service:80":             true,
		"tasks -> auth-service:80":             true,
		"outsider -> tasks-service:8000":       true,
		"users -> tasks-service:8000":          false,
		"outsider -> auth pod :9090 (metrics)": false,
	} {
		if got, ok := allowed[name]; !ok || got != want {
			t.Errorf("%s: allowed %v (known %v), want %v", name, got, ok, want)
		}
	}
}
