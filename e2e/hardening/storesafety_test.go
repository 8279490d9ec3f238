package hardening

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// describe says what a file holds, for the log: its size, a digest and how it starts.
func describe(raw []byte) string {
	sum := sha256.Sum256(raw)
	head := raw[:min(len(raw), 48)]
	return fmt.Sprintf("%d bytes, sha256 %x…, starting %q", len(raw), sum[:6], head)
}

// notes is a 75 KB Markdown file of the kind an operator keeps next to the data.
func notes() []byte {
	var b bytes.Buffer
	b.WriteString("# Operations notes\n\n")
	for i := 0; b.Len() < 75_000; i++ {
		fmt.Fprintf(&b, "- %d: restarted tasks after the node drain; checked tasks.txt, all good. {\"ticket\": %d}\n", i, 1000+i)
	}
	return b.Bytes()
}

// refusesToStart runs binary with env and expects it to exit at once, with an error that
// names path and says what is wrong (every one of want).
func refusesToStart(t *testing.T, binary string, env []string, path string, want ...string) {
	t.Helper()
	out, took, err := runToExit(t, binary, env, 10*time.Second)
	errorLine := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "error:") {
			errorLine = line
		}
	}
	figure(t, "refused-at-start", "%s exited in %s (%v): %s", filepath.Base(binary), took.Round(time.Millisecond), err, errorLine)
	if err == nil {
		t.Fatalf("%s started (and exited 0) on %s\n%s", filepath.Base(binary), path, out)
	}
	if took > 3*time.Second {
		t.Errorf("%s took %s to refuse to start", filepath.Base(binary), took)
	}
	for _, w := range append([]string{path}, want...) {
		if !strings.Contains(errorLine, w) {
			t.Errorf("the error does not say %q:\n%s", w, out)
		}
	}
}

// tasksEnv is what tasks needs to start on folder (auth is not called before it serves).
func tasksEnv(folder string) []string {
	return []string{"AUTH_ADDRESS=127.0.0.1:9", "TASKS_FOLDER=" + folder}
}

// TestTasksFileSymlinkedToNotesIsRefused: tasks.txt is a symbolic link to an operator's 75 KB
// notes file. tasks must refuse to start, saying why, and leave the notes byte for byte as
// they were (a store that "repaired" what it could not read would have cut them).
func TestTasksFileSymlinkedToNotesIsRefused(t *testing.T) {
	folder, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "notes.md")
	if err := os.WriteFile(target, notes(), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(folder, "tasks.txt")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	before := fileBytes(t, target)
	refusesToStart(t, harness.Build(t).Tasks, tasksEnv(folder), path, "not a record file")
	after := fileBytes(t, target)
	figure(t, "symlinked-notes", "the notes before: %s; after: %s", describe(before), describe(after))
	if !bytes.Equal(before, after) {
		t.Errorf("the notes file behind the symlink changed")
	}
	if info, err := os.Lstat(path); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("tasks.txt is no longer the symlink: %v %v", info, err)
	}
}

// startsOrRefuses runs binary with env until it either is up (it started: it is stopped
// again) or exits (it refused: its error line is returned).
func startsOrRefuses(t *testing.T, binary string, env []string) (started bool, refusal string) {
	t.Helper()
	p, err := harness.Launch(harness.Spec{Binary: binary, Env: env})
	if err == nil {
		p.Stop()
		return true, ""
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(line, "error:") {
			refusal = line
		}
	}
	if refusal == "" {
		t.Fatalf("%s neither started nor refused with an error line: %v", filepath.Base(binary), err)
	}
	return false, refusal
}

// TestSmallJSONFileIsNeverCut: the store's file is (or links to) a small JSON file that is not
// a store: one object, no delimiter after it (a config file, say). That is what a record torn
// by a crash looks like too, but a torn record of ours is one of our records, and this object
// is not. Whether the service refuses to start on it or starts, the file must never change:
// the first write must not cut it as a torn record.
func TestSmallJSONFileIsNeverCut(t *testing.T) {
	s := startSystem(t)
	authAddress := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	bin := harness.Build(t)
	for _, c := range []struct {
		name, file, setting, binary, url, body string
		token                                  bool
		content                                string
	}{
		{"tasks.txt linked to a config file", "tasks.txt", "TASKS_FOLDER", bin.Tasks, "/tasks", `{"title":"written"}`, true,
			`{"replicas":3,"owner":"ops","note":"keep this file"}`},
		{"users.jsonl linked to a config file", "users.jsonl", "USERS_FOLDER", bin.Users, "/signup", `{"email":"new@example.com","password":"pw"}`, false,
			`{"replicas":3,"note":"keep this file"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			folder, elsewhere := t.TempDir(), t.TempDir()
			target := filepath.Join(elsewhere, "config.json")
			if err := os.WriteFile(target, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(folder, c.file)); err != nil {
				t.Fatal(err)
			}
			env := []string{authAddress, c.setting + "=" + folder, "DEMO_USER="}
			outcome := ""
			if started, refusal := startsOrRefuses(t, c.binary, env); !started {
				outcome = "refused to start: " + refusal
			} else {
				p := harness.Start(t, c.binary, env)
				bearer := ""
				if c.token {
					bearer = token
				}
				status, answer, _, err := do(harness.Client, "POST", p.URL+c.url, bearer, c.body)
				outcome = fmt.Sprintf("started; POST %s: %d %v %v", c.url, status, answer["message"], err)
			}
			after := fileBytes(t, target)
			figure(t, "small-json-file", "%s (%q): %s; the file after: %q", c.name, c.content, outcome, after)
			if string(after) != c.content {
				t.Errorf("%s was cut as a torn record: %q before, %q after", c.name, c.content, after)
			}
		})
	}
}

// TestTasksFileHoldingAJSONArrayIsRefused: tasks.txt holds the 2,000 tasks as one JSON array
// (an export, or another program's format). tasks must refuse to start with an error naming
// the file, and leave it as it was.
func TestTasksFileHoldingAJSONArrayIsRefused(t *testing.T) {
	folder := t.TempDir()
	tasks := make([]map[string]string, 2000)
	for i := range tasks {
		tasks[i] = map[string]string{"title": fmt.Sprintf("exported %d", i), "text": "from another tool"}
	}
	array, _ := json.MarshalIndent(tasks, "", "  ")
	path := filepath.Join(folder, "tasks.txt")
	if err := os.WriteFile(path, array, 0o644); err != nil {
		t.Fatal(err)
	}
	refusesToStart(t, harness.Build(t).Tasks, tasksEnv(folder), path, "not a record file")
	after := fileBytes(t, path)
	figure(t, "json-array", "tasks.txt before: %s; after: %s", describe(array), describe(after))
	if !bytes.Equal(array, after) {
		t.Errorf("tasks.txt changed")
	}
}

// TestStoreFileThatIsAFIFOIsRefusedAtOnce: a FIFO (or a folder) where the store's file should
// be. Opening a FIFO for reading blocks until a writer comes: the service must not hang, but
// exit at once with an error naming the path and what it is.
func TestStoreFileThatIsAFIFOIsRefusedAtOnce(t *testing.T) {
	bin := harness.Build(t)
	for _, c := range []struct {
		name, binary, file, setting string
		make                        func(path string) error
		want                        string
	}{
		{"tasks.txt a FIFO", bin.Tasks, "tasks.txt", "TASKS_FOLDER", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "named pipe (FIFO)"},
		{"users.jsonl a FIFO", bin.Users, "users.jsonl", "USERS_FOLDER", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "named pipe (FIFO)"},
		{"tasks.txt a folder", bin.Tasks, "tasks.txt", "TASKS_FOLDER", func(p string) error { return os.Mkdir(p, 0o755) }, "folder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			folder := t.TempDir()
			path := filepath.Join(folder, c.file)
			if err := c.make(path); err != nil {
				t.Fatal(err)
			}
			refusesToStart(t, c.binary, []string{"AUTH_ADDRESS=127.0.0.1:9", c.setting + "=" + folder}, path, c.want)
		})
	}
}

// usersLines signs up emails (with DEMO_USER off) and returns their lines of users.jsonl,
// each with its newline, and the system with users stopped.
func usersLines(t *testing.T, emails ...string) (system, [][]byte) {
	t.Helper()
	s := startSystemWith(t, nil, []string{"DEMO_USER="}, nil)
	for _, email := range emails {
		if a := harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": email, "password": "pw-" + email}); a.Status != http.StatusCreated {
			t.Fatalf("signup %s: %d %s", email, a.Status, a.Raw)
		}
	}
	if err := s.users.Stop(); err != nil {
		t.Fatal(err)
	}
	raw := fileBytes(t, filepath.Join(s.usersFolder, "users.jsonl"))
	lines := bytes.SplitAfter(raw, []byte("\n"))
	if len(lines) != len(emails)+1 || len(lines[len(emails)]) != 0 {
		t.Fatalf("users.jsonl holds %q, want one line per user", raw)
	}
	return s, lines[:len(emails)]
}

// TestUsersFileWithAHugeOrGluedLineKeepsItsUsers: users.jsonl with a 17 MB line between two
// users starts, both log in, and the log names the offset of the line it skipped; and a line
// that lost its newline (two users glued together) costs neither of them. Neither file is
// changed by starting and logging in.
func TestUsersFileWithAHugeOrGluedLineKeepsItsUsers(t *testing.T) {
	s, lines := usersLines(t, "first@example.com", "second@example.com")
	path := filepath.Join(s.usersFolder, "users.jsonl")
	logsIn := func(email string) bool {
		status, err := harness.Send("POST", s.users.URL+"/login", "", map[string]string{"email": email, "password": "pw-" + email})
		return err == nil && status == http.StatusOK
	}

	huge := append([]byte(`{"id":"huge","email":"huge@example.com","passwordHash":"`), bytes.Repeat([]byte("x"), 17<<20)...)
	huge = append(huge, "\"}\n"...)
	withHuge := bytes.Join([][]byte{lines[0], huge, lines[1]}, nil)
	if err := os.WriteFile(path, withHuge, 0o644); err != nil {
		t.Fatal(err)
	}
	s.users.Restart(t)
	waitReady(t, s.users, 10*time.Second)
	first, second := logsIn("first@example.com"), logsIn("second@example.com")
	offset := strconv.Itoa(len(lines[0]))
	warning := ""
	for _, line := range strings.Split(s.users.SettledLogs(), "\n") {
		if strings.Contains(line, "skipping a record longer than the limit") {
			warning = line
		}
	}
	after := fileBytes(t, path)
	figure(t, "users-huge-line", "users.jsonl of %s with a 17 MB line at offset %s: first logs in %v, second %v; warning %s; file after: %s",
		mib(int64(len(withHuge))), offset, first, second, warning, describe(after))
	if !first || !second {
		t.Errorf("with a 17 MB line between them: first logs in %v, second %v", first, second)
	}
	if !strings.Contains(warning, `"offset":`+offset) || !strings.Contains(warning, `"level":"WARN"`) {
		t.Errorf("no warning naming offset %s: %q", offset, warning)
	}
	if !bytes.Equal(after, withHuge) {
		t.Errorf("users.jsonl changed: %d bytes before, %d after", len(withHuge), len(after))
	}

	if err := s.users.Stop(); err != nil {
		t.Fatal(err)
	}
	glued := append(bytes.TrimSuffix(lines[0], []byte("\n")), lines[1]...)
	if err := os.WriteFile(path, glued, 0o644); err != nil {
		t.Fatal(err)
	}
	s.users.Restart(t)
	waitReady(t, s.users, 10*time.Second)
	first, second = logsIn("first@example.com"), logsIn("second@example.com")
	after = fileBytes(t, path)
	figure(t, "users-glued-line", "users.jsonl with two users on one line (%s): first logs in %v, second %v; after: %s", describe(glued), first, second, describe(after))
	if !first || !second {
		t.Errorf("two users glued on one line: first logs in %v, second %v", first, second)
	}
	if !bytes.Equal(after, glued) {
		t.Errorf("users.jsonl changed")
	}
}

// waitStatus polls url until it answers want, and returns how long that took, failing the
// test after timeout.
func waitStatus(t *testing.T, url string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		status, _, _, err := do(harness.Client, "GET", url, "", "")
		if err == nil && status == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("GET %s: %d %v after %s, want %d", url, status, err, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replace puts content at path the way an operator's tools do: written aside, then renamed
// over it (a new file in its place).
func replace(t *testing.T, path string, content []byte) {
	t.Helper()
	aside := path + ".new"
	if err := os.WriteFile(aside, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, path); err != nil {
		t.Fatal(err)
	}
}

// overwrite rewrites path in place (same file, new content), as an editor that truncates does.
func overwrite(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
}

// unavailable checks that a request answers 503 with a JSON message, not a 500.
func unavailable(t *testing.T, what, method, url, token, body string) {
	t.Helper()
	status, answer, _, err := do(harness.Client, method, url, token, body)
	figure(t, "store-unusable", "%s: %d %v", what, status, answer["message"])
	if err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("%s while the file is not a record file: %d %v %v, want 503 with a JSON message", what, status, answer, err)
	}
}

// TestTasksFileReplacedUnderTheServiceIsNoticed: while tasks runs, tasks.txt is replaced by a
// file that is not a tasks file, then by the good one again, then shrunk, then overwritten in
// place with garbage and fixed again. Each time the service notices without a restart:
// /readyz and every request answer 503 (JSON, not 500) while the file cannot be used, and the
// file is never written; once it can, the service serves what the file holds now.
func TestTasksFileReplacedUnderTheServiceIsNoticed(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	path := filepath.Join(s.tasksFolder, "tasks.txt")
	for _, title := range []string{"one", "two", "three"} {
		if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": title, "text": "x"}); a.Status != http.StatusCreated {
			t.Fatalf("POST: %d %s", a.Status, a.Raw)
		}
	}
	good := fileBytes(t, path)
	ready := s.tasks.URL + "/readyz"
	titles := func() []string {
		a := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil)
		if a.Status != http.StatusOK {
			t.Fatalf("GET /tasks: %d %s", a.Status, a.Raw)
		}
		var list []string
		for _, task := range a.Body["tasks"].([]any) {
			list = append(list, task.(map[string]any)["title"].(string))
		}
		return list
	}
	unusable := func(how string, content []byte, put func(*testing.T, string, []byte)) {
		t.Helper()
		put(t, path, content)
		took := waitStatus(t, ready, http.StatusServiceUnavailable, 3*time.Second)
		figure(t, "store-unusable", "tasks.txt %s (%s): /readyz 503 after %s", how, describe(content), took.Round(time.Millisecond))
		unavailable(t, "GET /tasks", "GET", s.tasks.URL+"/tasks", token, "")
		unavailable(t, "POST /tasks", "POST", s.tasks.URL+"/tasks", token, `{"title":"must not be written"}`)
		if after := fileBytes(t, path); !bytes.Equal(after, content) {
			t.Errorf("tasks.txt %s was written: %s", how, describe(after))
		}
	}
	usable := func(how string, want []string) {
		t.Helper()
		took := waitStatus(t, ready, http.StatusOK, 3*time.Second)
		got := titles()
		figure(t, "store-recovered", "tasks.txt %s: /readyz 200 after %s, GET lists %q", how, took.Round(time.Millisecond), got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("tasks.txt %s: GET lists %q, want %q", how, got, want)
		}
	}

	unusable("replaced by notes", notes(), replace)
	replace(t, path, good)
	usable("replaced by the good file again", []string{"one", "two", "three"})
	if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": "four"}); a.Status != http.StatusCreated {
		t.Errorf("POST once the good file is back: %d %s", a.Status, a.Raw)
	}

	// Shrunk to its first record and a half: what is left is a record file with a torn tail.
	first := bytes.Index(good, delimiter) + len(delimiter)
	if err := os.Truncate(path, int64(first+10)); err != nil {
		t.Fatal(err)
	}
	// Requests look at the file again at most once a second.
	harness.Eventually(t, 5*time.Second, 100*time.Millisecond, func() error {
		if got := titles(); strings.Join(got, ",") != "one" {
			return fmt.Errorf("tasks.txt shrunk to its first record: GET lists %q, want [one]", got)
		}
		return nil
	})
	if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": "after the shrink"}); a.Status != http.StatusCreated {
		t.Errorf("POST after the shrink: %d %s", a.Status, a.Raw)
	}
	if got, _ := originalReader(t, path); strings.Join(got, ",") != "one,after the shrink" {
		t.Errorf("tasks.txt after the shrink and a POST holds %q, want [one after the shrink]", got)
	}

	fixed := fileBytes(t, path)
	unusable("overwritten in place with text", []byte("this is not a tasks file\n"), overwrite)
	overwrite(t, path, fixed)
	usable("overwritten in place with the good content again", []string{"one", "after the shrink"})
	// The operator is told, once per unusable file, what is wrong with it.
	if told := strings.Count(s.tasks.SettledLogs(), "the file cannot be used; answering 503 until it can"); told != 2 {
		t.Errorf("tasks said %d times that tasks.txt cannot be used, want once for each of the 2 unusable files", told)
	}
}

// TestUsersFileReplacedUnderTheServiceIsNoticed is the same for users.jsonl: logins and
// signups answer 503 with JSON (not 500) while it cannot be used, and work again once the
// good file is back, without a restart.
func TestUsersFileReplacedUnderTheServiceIsNoticed(t *testing.T) {
	s := startSystem(t)
	path := filepath.Join(s.usersFolder, "users.jsonl")
	harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	good := fileBytes(t, path)
	ready := s.users.URL + "/readyz"
	credentials := mustJSON(map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword})

	bad := notes()
	replace(t, path, bad)
	took := waitStatus(t, ready, http.StatusServiceUnavailable, 3*time.Second)
	figure(t, "store-unusable", "users.jsonl replaced by notes (%s): /readyz 503 after %s", describe(bad), took.Round(time.Millisecond))
	unavailable(t, "POST /login", "POST", s.users.URL+"/login", "", credentials)
	unavailable(t, "POST /signup", "POST", s.users.URL+"/signup", "", `{"email":"new@example.com","password":"pw"}`)
	if after := fileBytes(t, path); !bytes.Equal(after, bad) {
		t.Errorf("users.jsonl was written while unusable: %s", describe(after))
	}

	replace(t, path, good)
	took = waitStatus(t, ready, http.StatusOK, 3*time.Second)
	status, _, _, err := do(harness.Client, "POST", s.users.URL+"/login", "", credentials)
	figure(t, "store-recovered", "users.jsonl replaced by the good file again: /readyz 200 after %s, login %d", took.Round(time.Millisecond), status)
	if err != nil || status != http.StatusOK {
		t.Errorf("login once the good file is back: %d %v", status, err)
	}
}

// TestTasksFolderSymlinkRetargeted: TASKS_FOLDER is a symbolic link, and the operator points
// it at another folder (as a volume switch or a blue/green data folder does) while tasks
// runs. The next POST must go to the new folder's tasks.txt, the old one must not change, and
// GET must list the new folder's tasks, not the old ones.
func TestTasksFolderSymlinkRetargeted(t *testing.T) {
	root := t.TempDir()
	a, b, link := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "current")
	for _, dir := range []string{a, b} {
		os.Mkdir(dir, 0o755)
	}
	// b holds a task of the original service (no owner: everyone sees it).
	if err := os.WriteFile(filepath.Join(b, "tasks.txt"), []byte(`{"title":"from b","text":"waiting"}TASK_SPLIT`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	s := startSystem(t)
	tasks := harness.Start(t, harness.Build(t).Tasks, []string{"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port), "TASKS_FOLDER=" + link})
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	if r := harness.Call(t, "POST", tasks.URL+"/tasks", token, map[string]string{"title": "in a"}); r.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.Status, r.Raw)
	}
	aBefore, bBefore := fileBytes(t, filepath.Join(a, "tasks.txt")), fileBytes(t, filepath.Join(b, "tasks.txt"))

	// Retarget atomically: a new link renamed over the old one.
	if err := os.Symlink(b, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
	post := harness.Call(t, "POST", tasks.URL+"/tasks", token, map[string]string{"title": "after the switch"})
	list := harness.Call(t, "GET", tasks.URL+"/tasks", token, nil)
	var listed []string
	for _, task := range list.Body["tasks"].([]any) {
		listed = append(listed, task.(map[string]any)["title"].(string))
	}
	aAfter, bAfter := fileBytes(t, filepath.Join(a, "tasks.txt")), fileBytes(t, filepath.Join(b, "tasks.txt"))
	figure(t, "folder-retarget", "POST right after the switch: %d; GET lists %q; a/tasks.txt %d → %d bytes, b/tasks.txt %d → %d bytes",
		post.Status, listed, len(aBefore), len(aAfter), len(bBefore), len(bAfter))
	if post.Status != http.StatusCreated {
		t.Errorf("POST right after the switch: %d %s", post.Status, post.Raw)
	}
	if !bytes.Equal(aAfter, aBefore) {
		t.Errorf("the old folder's tasks.txt changed after the switch: %q", aAfter)
	}
	if titles, _ := originalReader(t, filepath.Join(b, "tasks.txt")); strings.Join(titles, ",") != "from b,after the switch" {
		t.Errorf("the new folder's tasks.txt holds %q, want [from b, after the switch]", titles)
	}
	if strings.Join(listed, ",") != "from b,after the switch" {
		t.Errorf("GET after the switch lists %q, want the new folder's [from b, after the switch]", listed)
	}

	// Back to a, with no POST to look at the path: GETs notice within a second.
	if err := os.Symlink(a, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
	switched := time.Now()
	for {
		list := harness.Call(t, "GET", tasks.URL+"/tasks", token, nil)
		listed = listed[:0]
		for _, task := range list.Body["tasks"].([]any) {
			listed = append(listed, task.(map[string]any)["title"].(string))
		}
		if strings.Join(listed, ",") == "in a" {
			break
		}
		if time.Since(switched) > 1500*time.Millisecond {
			t.Fatalf("GETs still list %q 1.5 s after TASKS_FOLDER went back to a, want [in a]", listed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	figure(t, "folder-retarget", "switched back with no POST: GET lists the old folder's %q after %s", listed, time.Since(switched).Round(time.Millisecond))
}
