package hardening

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// TestSlowAuthCostsAtMostTheTimeout: an auth that hangs makes users and tasks answer 503
// within AUTH_TIMEOUT, not hang with it.
func TestSlowAuthCostsAtMostTheTimeout(t *testing.T) {
	bin := harness.Build(t)
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second): // well past AUTH_TIMEOUT
		}
	}))
	defer hanging.Close()
	env := []string{"AUTH_ADDRESS=" + strings.TrimPrefix(hanging.URL, "http://"), "AUTH_TIMEOUT=1s",
		"TASKS_FOLDER=" + t.TempDir(), "USERS_FOLDER=" + t.TempDir(), "DEMO_USER="}
	tasks := harness.Start(t, bin.Tasks, env)
	users := harness.Start(t, bin.Users, env)
	for _, c := range []struct{ method, url, token string }{
		{"GET", tasks.URL + "/tasks", "some-token"},
		{"POST", tasks.URL + "/tasks", "some-token"},
		{"POST", users.URL + "/login", ""},
		{"POST", users.URL + "/signup", ""},
	} {
		start := time.Now()
		a := harness.Call(t, c.method, c.url, c.token, map[string]string{"title": "t", "email": "a@b.c", "password": "pw"})
		took := time.Since(start)
		if a.Status != http.StatusServiceUnavailable || a.Message() == "" {
			t.Errorf("%s %s with auth hanging: %d %s, want 503 with a message", c.method, c.url, a.Status, a.Raw)
		}
		if took > 2500*time.Millisecond {
			t.Errorf("%s %s took %s with AUTH_TIMEOUT=1s", c.method, c.url, took)
		}
		t.Logf("%s %s: %d in %s", c.method, c.url, a.Status, took.Round(time.Millisecond))
	}
}

// startTasksOnTmpfs runs tasks in a mount namespace of its own, with TASKS_FOLDER a 1 MiB
// tmpfs, so the test can fill it or make it read-only without touching the machine. It
// returns the process and the folder as the test sees it, through /proc/<pid>/root.
func startTasksOnTmpfs(t *testing.T, s system) (*harness.Process, string) {
	t.Helper()
	if os.Getuid() != 0 {
		harness.Skip(t, "needs root to mount a small tmpfs in a private mount namespace")
	}
	folder := filepath.Join(t.TempDir(), "tmpfs-tasks")
	os.MkdirAll(folder, 0o755)
	tasks := harness.StartCommand(t, "tasks (on a 1 MiB tmpfs)", "unshare",
		[]string{"--mount", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs -o size=1m kub-demo-test "$TASKS_FOLDER" && exec "$0"`, harness.Build(t).Tasks},
		[]string{"PATH=" + os.Getenv("PATH"), "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port), "TASKS_FOLDER=" + folder})
	return tasks, filepath.Join("/proc", strconv.Itoa(tasks.PID()), "root", folder)
}

func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling the tmpfs: %v", err)
				}
				break
			}
		}
	}
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestFullDiskAndReadOnlyFolderGive5xxAndNoPartialRecord fills the tasks folder's disk, then
// makes it read-only: each POST then fails with a JSON 5xx, tasks.txt is byte for byte what
// it was (a write cut short by ENOSPC is cut back), and once space or write access is back,
// POSTs succeed again without a restart.
func TestFullDiskAndReadOnlyFolderGive5xxAndNoPartialRecord(t *testing.T) {
	s := startSystem(t)
	tasks, folder := startTasksOnTmpfs(t, s)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	path := filepath.Join(folder, "tasks.txt")
	post := func(title, text string) harness.Answer {
		return harness.Call(t, "POST", tasks.URL+"/tasks", token, map[string]string{"title": title, "text": text})
	}
	if a := post("before", "the disk fills"); a.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", a.Status, a.Raw)
	}
	before := fileBytes(t, path)

	fill(t, filepath.Join(folder, "filler"))
	// 9,000 bytes: the first few thousand fit in the file's last page, the rest do not, so
	// the write is cut short half way through the record.
	a := post("on a full disk", strings.Repeat("x", 9000))
	if a.Status < 500 || a.Message() == "" {
		t.Fatalf("POST on a full disk: %d %s, want a 5xx with a message", a.Status, a.Raw)
	}
	if after := fileBytes(t, path); !bytes.Equal(after, before) {
		t.Fatalf("tasks.txt changed on a failed write: %d bytes before, %d after", len(before), len(after))
	}
	if a := harness.Call(t, "GET", tasks.URL+"/tasks", token, nil); a.Status != http.StatusOK {
		t.Fatalf("GET on a full disk: %d %s", a.Status, a.Raw)
	}
	os.Remove(filepath.Join(folder, "filler"))
	if a := post("space again", strings.Repeat("y", 9000)); a.Status != http.StatusCreated {
		t.Fatalf("POST once space is back: %d %s", a.Status, a.Raw)
	}

	remount := func(mode string) {
		mountpoint := strings.TrimPrefix(folder, filepath.Join("/proc", strconv.Itoa(tasks.PID()), "root"))
		out, err := exec.Command("nsenter", "--target", strconv.Itoa(tasks.PID()), "--mount", "--",
			"mount", "-o", "remount,"+mode, mountpoint).CombinedOutput()
		if err != nil {
			t.Fatalf("remount %s: %v %s", mode, err, out)
		}
	}
	before = fileBytes(t, path)
	remount("ro")
	if a := post("on a read-only folder", "x"); a.Status < 500 || a.Message() == "" {
		t.Fatalf("POST on a read-only folder: %d %s, want a 5xx with a message", a.Status, a.Raw)
	}
	if after := fileBytes(t, path); !bytes.Equal(after, before) {
		t.Fatalf("tasks.txt changed on a read-only folder")
	}
	remount("rw")
	if a := post("writable again", "x"); a.Status != http.StatusCreated {
		t.Fatalf("POST once writable again: %d %s", a.Status, a.Raw)
	}
	titles, tail := originalReader(t, path)
	if want := []string{"before", "space again", "writable again"}; strings.Join(titles, ",") != strings.Join(want, ",") || len(tail) != 0 {
		t.Fatalf("tasks.txt holds %q (tail %q), want %q", titles, tail, want)
	}
	if logs := tasks.SettledLogs(); !strings.Contains(logs, "no space left on device") || !strings.Contains(logs, "read-only file system") {
		t.Errorf("the logs do not say why the writes failed:\n%s", tasks.Logs())
	}
}
