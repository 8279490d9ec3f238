package hardening

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// TestStoreOverItsLimitIsRefusedAtStart: a tasks.txt of 27.6 MB of valid tasks, with
// GOMEMLIMIT=64MiB (a store limit of 24 MiB), loaded silently before at 74 MB resident, which
// a 64 Mi pod OOM-kills at every start: tasks must refuse to start, at once, saying why and
// what to do, and leave the file as it was.
func TestStoreOverItsLimitIsRefusedAtStart(t *testing.T) {
	bin := harness.Build(t)
	folder := t.TempDir()
	path := filepath.Join(folder, "tasks.txt")
	record := fmt.Sprintf(`{"title":"%s","text":"%s"}TASK_SPLIT`, strings.Repeat("T", 500), strings.Repeat("x", 15_000))
	content := []byte(strings.Repeat(record, 27_600_000/len(record)+1))
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	refusesToStart(t, bin.Tasks, append(tasksEnv(folder), "GOMEMLIMIT=64MiB"), path, "holds more than the limit of 25165824 bytes", "GOMEMLIMIT: raise it", "PostgreSQL")
	if after := fileBytes(t, path); !bytes.Equal(after, content) {
		t.Errorf("tasks.txt changed: %d bytes before, %d after", len(content), len(after))
	}
}

// TestSkippedUsersLineDoesNotCountAgainstTheLimit: users.jsonl with a 2 MB line that is no
// user between two users, and USERS_MAX_BYTES of 1 MiB: the line is skipped, and it does not
// count against the limit (every signup was 507 before): a signup succeeds.
func TestSkippedUsersLineDoesNotCountAgainstTheLimit(t *testing.T) {
	s, lines := usersLines(t, "first@example.com", "second@example.com")
	path := filepath.Join(s.usersFolder, "users.jsonl")
	junk := append(append([]byte(`{"junk":"`), bytes.Repeat([]byte("j"), 2<<20)...), "\"}\n"...)
	if err := os.WriteFile(path, bytes.Join([][]byte{lines[0], junk, lines[1]}, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	users := harness.Start(t, harness.Build(t).Users, []string{"AUTH_ADDRESS=127.0.0.1:" + fmt.Sprint(s.auth.Port), "USERS_FOLDER=" + s.usersFolder, "DEMO_USER=", "USERS_MAX_BYTES=1048576"})
	waitReady(t, users, 10*time.Second)
	a := harness.Call(t, "POST", users.URL+"/signup", "", map[string]string{"email": "third@example.com", "password": "pw"})
	figure(t, "users-junk-limit", "users.jsonl of %s (a 2 MB line that is no user), USERS_MAX_BYTES=1 MiB: a signup got %d %s", mib(int64(len(junk))), a.Status, a.Message())
	if a.Status != http.StatusCreated {
		t.Errorf("a signup with a skipped 2 MB line in the file: %d %s, want 201", a.Status, a.Raw)
	}
}
