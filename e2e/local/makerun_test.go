package local

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// portVars are the ports make run listens on, by the variable that sets each.
var portVars = []string{"USERS_PORT", "TASKS_PORT", "AUTH_PORT", "USERS_METRICS_PORT", "TASKS_METRICS_PORT", "AUTH_METRICS_PORT"}

// makeRun is scripts/run-local.sh (what make run runs) with each port in ports, its binaries
// built into and its data kept in folders of the test, in a process group of its own (so a
// test can send Ctrl-C to it as a terminal does).
func makeRun(t *testing.T, ports map[string]int, env ...string) *exec.Cmd {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "run-local.sh"))
	cmd.Env = append(os.Environ(), "BIN="+t.TempDir(), "DATA="+t.TempDir())
	for name, port := range ports {
		cmd.Env = append(cmd.Env, name+"="+strconv.Itoa(port))
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// freePorts are a port for each of make run's variables that nothing listens on now.
func freePorts(t *testing.T) map[string]int {
	t.Helper()
	ports := make(map[string]int)
	var held []net.Listener
	for _, name := range portVars {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		ports[name] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range held {
		l.Close()
	}
	return ports
}

// TestMakeRunNamesEveryTakenPort: before a build that takes minutes on a new machine, make
// run checks each of its six ports, names the variable of each one taken, and prints a
// command whose ports are free. A metrics port counts as much as a public one.
func TestMakeRunNamesEveryTakenPort(t *testing.T) {
	ports := freePorts(t)
	for _, taken := range []string{"TASKS_PORT", "AUTH_METRICS_PORT"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[taken] = l.Addr().(*net.TCPAddr).Port
	}
	out, err := makeRun(t, ports).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("make run with two ports taken: %v, want exit 1:\n%s", err, out)
	}
	for _, taken := range []string{"TASKS_PORT", "AUTH_METRICS_PORT"} {
		if say := "port " + strconv.Itoa(ports[taken]) + " (" + taken + ") is already in use"; !bytes.Contains(out, []byte(say)) {
			t.Errorf("make run does not say %q:\n%s", say, out)
		}
		suggested := regexp.MustCompile(taken + `=(\d+)`).FindSubmatch(out)
		if suggested == nil {
			t.Errorf("make run suggests no other %s:\n%s", taken, out)
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+string(suggested[1])); err != nil {
			t.Errorf("the suggested %s=%s is not free: %v", taken, suggested[1], err)
		} else {
			l.Close()
		}
	}
	if bytes.Contains(out, []byte("building")) {
		t.Errorf("make run started building although it cannot run:\n%s", out)
	}

	same := freePorts(t)
	same["AUTH_PORT"] = same["USERS_METRICS_PORT"]
	out, _ = makeRun(t, same).CombinedOutput()
	if !bytes.Contains(out, []byte("USERS_METRICS_PORT and AUTH_PORT are both")) && !bytes.Contains(out, []byte("AUTH_PORT and USERS_METRICS_PORT are both")) {
		t.Errorf("two services given one port: make run does not say so:\n%s", out)
	}
}

// TestMakeRunStartsQuietlyAndStopsOnCtrlC: make run builds, starts the three, says once
// they are ready where they are, serves the course's flow as the README shows it, logs no
// refused token or warning on the way (the readiness pings and probes), and ends on Ctrl-C
// with a line that says it stopped and exit 0.
func TestMakeRunStartsQuietlyAndStopsOnCtrlC(t *testing.T) {
	harness.SkipShort(t, "builds the services as make run does")
	ports := freePorts(t)
	cmd := makeRun(t, ports)
	// A file, so that the test can read what make run printed while it runs.
	out, err := os.Create(filepath.Join(t.TempDir(), "make-run.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	printed := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	deadline := time.After(5 * time.Minute) // a build with a cold cache
	for !strings.Contains(printed(), "kub-demo is running") {
		select {
		case err := <-done:
			t.Fatalf("make run ended before it was ready: %v\n%s", err, printed())
		case <-deadline:
			t.Fatalf("make run was not ready after 5 minutes:\n%s", printed())
		case <-time.After(100 * time.Millisecond):
		}
	}
	users := "http://127.0.0.1:" + strconv.Itoa(ports["USERS_PORT"])
	if a := harness.Call(t, "POST", users+"/login", "", map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword}); a.Status != 200 {
		t.Errorf("the demo login right after make run said it was ready: %d %s", a.Status, a.Raw)
	}
	checkReadmeFlow(t, ports["USERS_PORT"], ports["TASKS_PORT"])
	for _, noise := range []string{`"msg":"token refused"`, `"level":"WARN"`, `"level":"ERROR"`} {
		if strings.Contains(printed(), noise) {
			t.Errorf("make run's log holds %s on a clean start:\n%s", noise, printed())
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("make run after Ctrl-C: %v, want exit 0\n%s", err, printed())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not end within 30s of Ctrl-C:\n%s", printed())
	}
	if last := strings.TrimSpace(printed()); !strings.HasSuffix(last, "make run: stopped") {
		t.Errorf("make run did not end with its stopped line:\n%s", printed())
	}
}

// TestMakeRunEndsAtOnceWithTheCause: a service that stops at start ends make run at once,
// with that service's reason as the last thing on the screen.
func TestMakeRunEndsAtOnceWithTheCause(t *testing.T) {
	harness.SkipShort(t, "builds the services as make run does")
	start := time.Now()
	out, err := makeRun(t, freePorts(t), "JWT_SECRET=too-short").CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("make run with a bad JWT_SECRET: %v, want exit 1:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 3 || !strings.Contains(lines[len(lines)-3], "make run: auth stopped at start") ||
		!strings.Contains(lines[len(lines)-2], "error: configuration: JWT_SECRET has 9 bytes") {
		t.Errorf("make run does not end with auth's cause:\n%s", out)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("make run took %s to give up", took)
	}
}

// checkReadmeFlow runs the README's curl flow, as a learner pastes it into bash, against
// make run's ports, and compares what it prints with what the README says to expect (in a
// line with "…", what stands for the token, only the rest is compared).
func checkReadmeFlow(t *testing.T, usersPort, tasksPort int) {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## The course's flow")
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```(sh)?\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 || blocks[0][1] != "sh" || blocks[1][1] != "" {
		t.Fatalf("README's flow does not start with an sh block and a block of its output:\n%s", section)
	}
	flow := strings.NewReplacer("localhost:8080", "localhost:"+strconv.Itoa(usersPort),
		"localhost:8000", "localhost:"+strconv.Itoa(tasksPort)).Replace(blocks[0][2])
	out, err := exec.Command("bash", "-c", flow).CombinedOutput()
	if err != nil {
		t.Fatalf("README's flow: %v\n%s", err, out)
	}
	got, want := strings.Split(strings.TrimSpace(string(out)), "\n"), strings.Split(strings.TrimSpace(blocks[1][2]), "\n")
	if len(got) != len(want) {
		t.Fatalf("README's flow printed\n%s\nwant\n%s", out, blocks[1][2])
	}
	for i := range want {
		if before, after, elided := strings.Cut(want[i], "…"); got[i] == want[i] ||
			elided && strings.HasPrefix(got[i], before) && strings.HasSuffix(got[i], after) {
			continue
		}
		t.Errorf("README's flow, line %d: got %s, the README says %s", i+1, got[i], want[i])
	}
}
