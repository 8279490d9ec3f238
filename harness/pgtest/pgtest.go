// Package pgtest runs a throwaway PostgreSQL server for tests and benchmarks: initdb into a
// new temporary folder, postgres on a free loopback port (TCP only, no Unix socket, trust
// authentication), and the folder removed when it stops. It uses the server binaries
// installed on the machine (Debian: apt-get install postgresql) and no Go dependency.
//
// PostgreSQL refuses to run as root. Run as root (CI machines, containers), the server runs
// as the system user "postgres" instead; as any other user, as that user.
//
// Tests use NewDatabase, which starts one server per test binary at first use and gives each
// test a database of its own, and end their TestMain with os.Exit(pgtest.RunTests(m)). When
// the binaries are missing the tests fail, saying what to install: they never skip.
package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a server.
type Options struct {
	// Durable keeps PostgreSQL's crash safety (fsync, full page writes), for benchmarks.
	// Without it the server skips them: an acknowledged commit still survives the death of
	// any process, the server's included, but not of the machine.
	Durable bool
	// Settings are more postgresql.conf settings, e.g. {"max_connections": "300"}.
	Settings map[string]string
}

// Server is a running PostgreSQL server on 127.0.0.1.
type Server struct {
	Port int

	bin  string
	dir  string // removed by Stop
	data string
	cred *syscall.Credential
	cmd  *exec.Cmd
	logs *tail
	done chan struct{}
	err  error // how the server exited, once done is closed
}

// ErrNoBinaries: the PostgreSQL server binaries are not installed.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install them " +
	"(Debian/Ubuntu: apt-get install postgresql) or set PG_BIN to the folder that holds them")

// Binaries returns the folder of initdb and postgres: $PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin (Debian's layout), else the folder of initdb on PATH.
func Binaries() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if !executable(filepath.Join(dir, "initdb")) {
			return "", fmt.Errorf("PG_BIN=%s holds no initdb: %w", dir, ErrNoBinaries)
		}
		return dir, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { return majorVersion(b) - majorVersion(a) })
	if len(found) > 0 {
		return filepath.Dir(found[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func majorVersion(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func executable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

// Start runs initdb in a new temporary folder and starts postgres on a free loopback port.
// It returns once the server accepts connections.
func Start(opts Options) (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, logs: &tail{max: 1 << 20}}
	if s.cred, err = serverUser(); err != nil {
		return nil, err
	}
	removeStale()
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The port is free when asked, and may be taken before postgres binds it: try again.
	for try := 1; ; try++ {
		err = s.start(opts)
		if err == nil {
			return s, nil
		}
		if try == 5 || !strings.Contains(s.logs.String(), "could not bind") {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
}

// removeStale removes the folders of servers whose test binary was killed (a timeout, kill
// -9): the server went with it (Pdeathsig), its folder stayed. Only folders an hour old whose
// server is not running, so that a server being set up right now is left alone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil || time.Since(info.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(pid), "\n")
			if n, err := strconv.Atoi(line); err == nil && syscall.Kill(n, 0) != syscall.ESRCH {
				continue // running (or not ours to signal)
			}
		}
		os.RemoveAll(dir)
	}
}

// serverUser is whom the server runs as: nil for this process's user, or the "postgres"
// system user when this process is root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: the server would run as the user \"postgres\", which does not exist (%v)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command runs as the server's user, with a plain environment.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.Dir = s.dir
	// Stop with the process that started it, even when that one is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

func (s *Server) start(opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(port),
		"unix_socket_directories": "",
		"max_connections":         "200",
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", s.data}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}
	s.logs.Reset()
	s.cmd = s.command(filepath.Join(s.bin, "postgres"), args...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	s.cmd.Stdout = s.logs
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.done = make(chan struct{})
	ready := make(chan struct{})
	go s.readLog(stderr, ready)
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
		s.Port = port
		return nil
	case <-s.done:
		return fmt.Errorf("postgres exited at start: %v\n%s", s.err, s.logs.String())
	case <-time.After(30 * time.Second):
		s.kill()
		return fmt.Errorf("postgres not ready after 30s:\n%s", s.logs.String())
	}
}

// readLog keeps the server's log and says when it accepts connections.
func (s *Server) readLog(r io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		s.logs.Write([]byte(line + "\n"))
		if !signalled && strings.Contains(line, "database system is ready to accept connections") {
			signalled = true
			close(ready)
		}
	}
	io.Copy(s.logs, r)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the connection URL of database, as user postgres (no password: trust).
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, database)
}

// CreateDatabase creates an empty database.
func (s *Server) CreateDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", name)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("createdb %s: %v: %s", name, err, out)
	}
	return nil
}

// Logs is the server's log so far (its last MiB).
func (s *Server) Logs() string { return s.logs.String() }

// Stop shuts the server down (fast: open sessions are ended) and removes its folder.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.dir)
	select {
	case <-s.done:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		s.kill()
		return errors.New("postgres did not stop within 10s of SIGINT: killed")
	}
}

func (s *Server) kill() {
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func (t *tail) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.buf[:0]
}

var databaseName = regexp.MustCompile(`[^a-z0-9_]+`)
