package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/tasks/internal/filestore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

// FuzzTaskCreate: any body POSTed with a valid token is either stored and echoed back (201),
// or refused with a 4xx JSON message and nothing stored; never a 500.
func FuzzTaskCreate(f *testing.F) {
	for _, seed := range []string{
		`{"title":"Buy milk","text":"2 litres"}`, `{"title":"TASK_SPLIT"}`, `{"title":""}`, `{"title":1}`,
		`{"title":"a"} x`, `[]`, `null`, `{"title":"a","text":null}`, "{\"title\":\"\xff\"}", `{"title":"\ud800"}`, `{"title":"a\u0000"}`, ``,
	} {
		f.Add(seed)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body string) {
		store, err := filestore.Open(t.TempDir(), log, tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		handler := Routes(Deps{Log: log, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Tasks: store, Auth: acceptsGood})
		req := httptest.NewRequest("POST", "/tasks", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer good")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		var answer struct {
			Message     string      `json:"message"`
			CreatedTask *tasks.Task `json:"createdTask"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.Message == "" {
			t.Fatalf("%d %q is not a JSON message", rec.Code, rec.Body)
		}
		stored, _ := store.List("user-1")
		switch rec.Code {
		case http.StatusCreated:
			if len(stored) != 1 || answer.CreatedTask == nil || stored[0] != *answer.CreatedTask {
				t.Fatalf("201 with createdTask %v, stored %v", answer.CreatedTask, stored)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			if len(stored) != 0 {
				t.Fatalf("%d but stored %v", rec.Code, stored)
			}
		default:
			t.Fatalf("unexpected %d %s for body %q", rec.Code, rec.Body, body)
		}
	})
}
