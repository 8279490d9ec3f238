package lab

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestEachControlDoesWhatItSays drives the controls as a learner would, through the admin
// handler, and watches the public answers and readiness change, then reset.
func TestEachControlDoesWhatItSays(t *testing.T) {
	c := New("tasks", slog.New(slog.NewTextHandler(io.Discard, nil)))
	public := httptest.NewServer(c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })))
	defer public.Close()
	admin := httptest.NewServer(c.Handler())
	defer admin.Close()
	set := func(query string, want int) {
		t.Helper()
		resp, err := http.Post(admin.URL+"/lab?"+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST /lab?%s: %d, want %d", query, resp.StatusCode, want)
		}
	}
	get := func() (int, string, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := http.Get(public.URL + "/tasks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), time.Since(start)
	}

	set("fail=503", http.StatusOK)
	if status, body, _ := get(); status != 503 || !strings.Contains(body, `"message":"Lab control: this pod of tasks was told to fail every request with 503`) {
		t.Errorf("with fail=503: %d %s", status, body)
	}
	set("reset=true&slow=300ms", http.StatusOK)
	if status, _, took := get(); status != 200 || took < 300*time.Millisecond {
		t.Errorf("with slow=300ms: %d in %s", status, took)
	}
	set("reset=true&unready=true", http.StatusOK)
	if err := c.Ready(context.Background()); err == nil {
		t.Error("unready=true, and the readiness check passes")
	}
	if status, _, _ := get(); status != 200 {
		t.Errorf("unready only takes the pod out of its Service: a request that reaches it is served, got %d", status)
	}
	set("reset=true", http.StatusOK)
	if err := c.Ready(context.Background()); err != nil {
		t.Errorf("after reset: %v", err)
	}
	for _, bad := range []string{"fail=200", "fail=x", "slow=1h", "slow=-1s", "unready=maybe"} {
		set(bad, http.StatusBadRequest)
	}
}
