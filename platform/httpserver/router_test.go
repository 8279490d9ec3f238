package httpserver

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/requestid"
)

func newRouter(t *testing.T) (http.Handler, *metrics.Registry, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(requestid.LogHandler(slog.NewJSONHandler(logs, nil)))
	m := metrics.New()
	r := Router(log, NewProbes(log), m)
	r.Get("/tasks", ok)
	r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("a bug") })
	return r, m, logs
}

// TestPanicIsA500EverywhereItShouldShow: a handler that panics answers a JSON 500, which the
// metrics count and the access log records; the error line has the request id and the stack.
func TestPanicIsA500EverywhereItShouldShow(t *testing.T) {
	r, m, logs := newRouter(t)
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set("X-Request-ID", "the-panicking-request")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"message":"Internal server error."`) {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	scrape := httptest.NewRecorder()
	m.Handler().ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(scrape.Body.String(), `http_requests_total{code="500",method="GET",route="/boom"} 1`) {
		t.Errorf("metrics do not count the 500:\n%s", grep(scrape.Body.String(), "http_requests_total"))
	}
	var panicLine, accessLine string
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, `"msg":"handler panicked"`):
			panicLine = line
		case strings.Contains(line, `"msg":"request"`):
			accessLine = line
		}
	}
	if !strings.Contains(accessLine, `"status":500`) || !strings.Contains(accessLine, "the-panicking-request") {
		t.Errorf("access line: %s", accessLine)
	}
	if !strings.Contains(panicLine, `"requestId":"the-panicking-request"`) || !strings.Contains(panicLine, "router_test.go") {
		t.Errorf("the panic's line lacks the request id or the stack: %.300s", panicLine)
	}
}

// TestExpressRouting: as the original's Express routes matched, case and a trailing slash do
// not matter, and HEAD is answered by the GET route with no body.
func TestExpressRouting(t *testing.T) {
	r, _, _ := newRouter(t)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/tasks", 200}, {"GET", "/Tasks", 200}, {"GET", "/TASKS/", 200}, {"GET", "/tasks/", 200},
		{"HEAD", "/tasks", 200}, {"HEAD", "/Healthz/", 200}, {"GET", "/tasks//", 404}, {"GET", "/task", 404},
		{"POST", "/Tasks", 405},
	} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
	// net/http drops a HEAD answer's body on the wire; the handler's headers stay.
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Head(srv.URL + "/Tasks/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HEAD /Tasks/: %d, %d bytes, %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
	}
}

func grep(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestUnknownPathsAreLoggedByTheirFirstSegment: a path that matches no route (a client of the
// original's auth API sends /token/<hash>/<password>) is logged by its first segment only; a
// route's path is logged whole.
func TestUnknownPathsAreLoggedByTheirFirstSegment(t *testing.T) {
	r, _, logs := newRouter(t)
	for _, path := range []string{"/token/the-hash/the-password", "/tasks/"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if strings.Contains(logs.String(), "the-password") || !strings.Contains(logs.String(), `"path":"/token/…"`) {
		t.Fatalf("an unknown path's log: %s", logs)
	}
	if !strings.Contains(logs.String(), `"path":"/tasks/"`) {
		t.Fatalf("a route's path is not logged whole: %s", logs)
	}
}
