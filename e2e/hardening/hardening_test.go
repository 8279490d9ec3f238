// Package hardening proves, against the real binaries, that nothing acknowledged is lost under
// concurrency, crashes, outages and bad input, and that every error is a clear JSON answer.
package hardening

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kub-demo/kub-demo/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunTests(m)) }

const (
	jwtSecret   = "the-hardening-tests-signing-key-0123456789"
	tokenIssuer = "kub-demo"
)

var delimiter = []byte("TASK_SPLIT")

type system struct {
	auth, users, tasks *harness.Process
	tasksFolder        string
	usersFolder        string
}

func (s system) processes() []*harness.Process { return []*harness.Process{s.auth, s.users, s.tasks} }

// startSystem runs the three binaries on loopback, data in a fresh folder.
func startSystem(t *testing.T, extraTasksEnv ...string) system {
	t.Helper()
	bin := harness.Build(t)
	data := t.TempDir()
	s := system{tasksFolder: filepath.Join(data, "tasks"), usersFolder: filepath.Join(data, "users")}
	s.auth = harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret, "TOKEN_ISSUER=" + tokenIssuer, "BCRYPT_COST=4"})
	authAddress := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port)
	s.users = harness.Start(t, bin.Users, []string{authAddress, "USERS_FOLDER=" + s.usersFolder})
	s.tasks = harness.Start(t, bin.Tasks, append([]string{authAddress, "TASKS_FOLDER=" + s.tasksFolder}, extraTasksEnv...))
	return s
}

// originalReader loads tasks.txt as the Node service did: split on TASK_SPLIT, drop the last
// piece, JSON-parse every other one (any failure crashed it). It returns the titles and the
// dropped last piece.
func originalReader(t *testing.T, path string) (titles []string, tail []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pieces := bytes.Split(raw, delimiter)
	for i, piece := range pieces[:len(pieces)-1] {
		var task struct{ Title string }
		if err := json.Unmarshal(piece, &task); err != nil {
			t.Fatalf("record %d of %s would crash the original's reader: %q: %v", i, path, piece, err)
		}
		titles = append(titles, task.Title)
	}
	return titles, pieces[len(pieces)-1]
}

// usersFileEmails reads users.jsonl line by line; every complete line must be a user.
func usersFileEmails(t *testing.T, path string) (emails []string, tail []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines[:len(lines)-1] {
		var u struct{ Email string }
		if err := json.Unmarshal(line, &u); err != nil || u.Email == "" {
			t.Fatalf("line %d of %s is not a user: %q", i, path, line)
		}
		emails = append(emails, u.Email)
	}
	return emails, lines[len(lines)-1]
}

func count(items []string) map[string]int {
	m := make(map[string]int, len(items))
	for _, item := range items {
		m[item]++
	}
	return m
}

func appendTo(t *testing.T, path string, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func title(worker, i int) string { return fmt.Sprintf("w%02d-%04d", worker, i) }
