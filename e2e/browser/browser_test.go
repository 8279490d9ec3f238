// Package browser drives the frontend's page in headless Chromium, against the four real
// binaries on loopback: sign up, log in, add tasks (odd ones too), log out, and the errors a
// learner meets when a hop is down. Without Chromium the browser tests skip, except under CI
// (CI set), where they fail. A failed step saves a screenshot (BROWSER_ARTIFACTS, or a
// folder under the system's temporary one) and says where.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kub-demo/kub-demo/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunTests(m)) }

const jwtSecret = "an-end-to-end-test-secret-of-enough-bytes"

type stack struct {
	auth, users, tasks, frontend *harness.Process
}

// startStack starts auth and users, then the frontend, then tasks: the frontend must not
// care which of its upstreams exists first. tasks is named by "localhost", so that the
// frontend resolves it for each connection. frontendEnv adds to the frontend's settings,
// given the port tasks is to listen on.
func startStack(t *testing.T, frontendEnv func(tasksPort int) []string) stack {
	t.Helper()
	bin := harness.Build(t)
	frontend := harness.BuildFrontend(t)
	data := t.TempDir()
	tasksPort := freePort(t)
	s := stack{}
	s.auth = harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret})
	authAt := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port)
	s.users = harness.Start(t, bin.Users, []string{authAt, "USERS_FOLDER=" + data + "/users"})
	env := []string{"USERS_ADDRESS=127.0.0.1:" + strconv.Itoa(s.users.Port), "TASKS_ADDRESS=localhost:" + strconv.Itoa(tasksPort)}
	if frontendEnv != nil {
		env = append(env, frontendEnv(tasksPort)...)
	}
	s.frontend = harness.Start(t, frontend, env)
	// AUTH_VERIFY_CACHE=0: tasks asks auth on every request, so that stopping auth shows at once.
	s.tasks = harness.Start(t, bin.Tasks, []string{authAt, "TASKS_FOLDER=" + data + "/tasks", "AUTH_TIMEOUT=1s",
		"AUTH_VERIFY_CACHE=0", "PORT=" + strconv.Itoa(tasksPort)})
	return s
}

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// chromiumPath finds Chromium (CHROMIUM, else the usual names on PATH), or skips the test,
// or fails it under CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	harness.Skip(t, "no Chromium (set CHROMIUM, or on Debian: apt-get install chromium)")
	return ""
}

// page is one browser tab at a phone's size, and the test that drives it.
type page struct {
	t   *testing.T
	ctx context.Context
}

// Phone-sized: the page must work there without scrolling sideways.
const width, height = 390, 844

func newPage(t *testing.T) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in a container: Chromium's sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &page{t: t, ctx: ctx}
}

// do runs one step's actions, within 20 s; on failure it saves a screenshot and fails the test.
func (p *page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v%s", step, err, p.screenshot(step))
	}
}

// check fails the test, with a screenshot, when what is false.
func (p *page) check(ok bool, format string, args ...any) {
	p.t.Helper()
	if !ok {
		msg := fmt.Sprintf(format, args...)
		p.t.Fatalf("%s%s", msg, p.screenshot(msg))
	}
}

// screenshot saves the page as it is now and returns a line saying where.
func (p *page) screenshot(step string) string {
	dir := os.Getenv("BROWSER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "kub-demo-browser")
	}
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "\n(no screenshot: " + err.Error() + ")"
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, p.t.Name()+"-"+step)
	path := filepath.Join(dir, name[:min(len(name), 120)]+".png")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "\n(no screenshot: " + err.Error() + ")"
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "\n(no screenshot: " + err.Error() + ")"
	}
	return "\nscreenshot: " + path
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v%s", expr, err, p.screenshot("evaluate"))
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page.
func (p *page) waitFor(step, expr string) {
	p.t.Helper()
	p.do(step, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// errorText is what the error box shows, "" when it is hidden.
func (p *page) errorText() string {
	p.t.Helper()
	return eval[string](p, `document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`)
}

// waitError waits for the error box to show and returns its text.
func (p *page) waitError(step string) string {
	p.t.Helper()
	p.waitFor(step, `!document.getElementById("error").hidden`)
	return p.errorText()
}

// login types the credentials and presses button (login or signup), with the keyboard's
// Enter for login, as a keyboard user would.
func (p *page) login(email, password, button string) {
	p.t.Helper()
	p.do("fill in "+email,
		chromedp.WaitVisible(chromedp.ID("email")),
		fill("email", ""),
		fill("password", ""),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if button == "login" {
		p.do("press Enter", chromedp.SendKeys(chromedp.ID("password"), "\r"))
	} else {
		p.do("click "+button, chromedp.Click(chromedp.ID(button)))
	}
}

// fill sets the value of the field with this id, as pasting it would. (chromedp v0.24's
// SetValue cannot set "", and its Clear fails on an empty textarea.)
func fill(id, value string) chromedp.Action[chromedp.Void] {
	expr := fmt.Sprintf(`(e => { e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); return true })(document.getElementById(%s))`,
		jsString(value), jsString(id))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](expr)(ctx, t)
		return err
	})
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// taskTitles lists the titles the page shows, as text.
func (p *page) taskTitles() []string {
	p.t.Helper()
	return eval[[]string](p, `[...document.querySelectorAll("#tasks h3")].map(h => h.textContent)`)
}

func (p *page) hasTitle(title string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#tasks h3")].some(h => h.textContent === %s)`, jsString(title))
}

// addTask fills in the task form and submits it, then waits for title in the list.
func (p *page) addTask(title, text string) {
	p.t.Helper()
	p.do("add "+title[:min(len(title), 20)],
		fill("title", title),
		fill("text", text),
		chromedp.Click(chromedp.ID("add")))
	p.waitFor("see the new task listed", p.hasTitle(title))
}

func TestBrowserFlowThroughTheProxy(t *testing.T) {
	s := startStack(t, nil)
	p := newPage(t)
	p.do("open the page", chromedp.Navigate(s.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))

	unlabelled := eval[int](p, `[...document.querySelectorAll("input, textarea")].filter(e => e.labels.length === 0).length`)
	p.check(unlabelled == 0, "%d form fields have no label", unlabelled)
	live := eval[string](p, `document.getElementById("error").getAttribute("role") + " " + document.getElementById("error").getAttribute("aria-live")`)
	p.check(live == "alert assertive", "the error box is %q, want role alert, aria-live assertive", live)

	// Sign up a new user: the page logs in with the real token, and moves focus to the form.
	p.login("learner@example.com", "s3cret-pass", "signup")
	p.waitFor("logged in after signup", `!document.getElementById("signed-in").hidden`)
	who := eval[string](p, `document.getElementById("who").textContent`)
	focused := eval[string](p, `document.activeElement.id`)
	p.check(who == "learner@example.com", "logged in as %q", who)
	p.check(focused == "title", "focus is on #%s after login, want #title", focused)
	token := eval[string](p, `sessionStorage.getItem("kub-demo-token")`)
	p.check(token != "" && token != "abc", "the tab keeps the token %q", token)

	p.addTask("Buy milk", "2 litres")

	// What the API allows must show as it is: quotes, markup, the file's delimiter, long words.
	odd := `Say "hi" <b>bold</b> & 'quotes' TASK_SPLIT {"title":"x"}`
	oddText := "line one\nTASK_SPLIT <script>alert(1)</script>"
	p.addTask(odd, oddText)
	markup := eval[int](p, `document.querySelectorAll("#tasks b, #tasks script").length`)
	p.check(markup == 0, "a task's text became %d HTML elements", markup)
	shownText := eval[string](p, `[...document.querySelectorAll("#tasks li")].find(li => li.querySelector("h3").textContent === `+jsString(odd)+`).querySelector("p").textContent`)
	p.check(shownText == oddText, "the odd task's text shows as %q, want %q", shownText, oddText)
	stored := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil)
	p.check(strings.Contains(stored.Raw, `"title":"Say \"hi\" \u003cb\u003ebold\u003c/b\u003e \u0026 'quotes' TASK_SPLIT`) ||
		strings.Contains(stored.Raw, `Say \"hi\" <b>bold</b> & 'quotes' TASK_SPLIT`), "tasks did not store the title as typed: %s", stored.Raw)

	if path := os.Getenv("BROWSER_DOCS_SCREENSHOT"); path != "" {
		p.do("scroll to the list", chromedp.ScrollIntoView(chromedp.ID("signed-in")))
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	long := strings.Repeat("W", 500) // the longest title tasks takes, one long word
	p.addTask(long, "")
	overflow := eval[int](p, `document.documentElement.scrollWidth - window.innerWidth`)
	p.check(overflow <= 0, "the page is %d px wider than a phone's screen with a long title", overflow)

	// A reload keeps the tab's token and shows the list again.
	p.do("reload", chromedp.Reload())
	p.waitFor("the list after a reload", p.hasTitle("Buy milk"))

	// A hop down: the page names it, and the cause.
	if err := s.tasks.Stop(); err != nil {
		t.Fatalf("stop tasks: %v", err)
	}
	p.do("reload the list with tasks stopped", chromedp.Click(chromedp.ID("refresh")))
	msg := p.waitError("error with tasks stopped")
	p.check(strings.Contains(msg, "could not reach tasks (localhost:") && strings.Contains(msg, "connection refused"),
		"with tasks stopped the page says %q", msg)
	// The frontend's proxy answered: the trail stops short of tasks, and says who answered.
	lists := p.trailOf("list tasks")
	reason := eval[string](p, `document.querySelector("#trail li .reason").textContent`)
	p.check(strings.HasPrefix(lists[0], "frontend ") && strings.HasSuffix(lists[0], " → tasks ✗ not reached") &&
		strings.HasPrefix(reason, "502 from frontend ") && strings.Contains(reason, ": The frontend could not reach tasks"),
		"with tasks stopped the trail says %q, %q", lists[0], reason)
	// tasks comes back, a new process at the same name: no restart of the frontend.
	s.tasks.Restart(t)
	p.do("reload the list with tasks back", chromedp.Click(chromedp.ID("refresh")))
	p.waitFor("the list with tasks back", p.hasTitle("Buy milk")+` && document.getElementById("error").hidden`)

	if err := s.auth.Stop(); err != nil {
		t.Fatalf("stop auth: %v", err)
	}
	p.do("reload the list with auth stopped", chromedp.Click(chromedp.ID("refresh")))
	msg = p.waitError("error with auth stopped")
	p.check(strings.Contains(msg, "tasks is unavailable (503)") && strings.Contains(msg, "auth"),
		"with auth stopped the list's error says %q", msg)

	// Log out: the token leaves the tab, and focus goes back to the email field.
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	p.waitFor("logged out", `!document.getElementById("signed-out").hidden && sessionStorage.getItem("kub-demo-token") === null`)
	focused = eval[string](p, `document.activeElement.id`)
	p.check(focused == "email", "focus is on #%s after logout, want #email", focused)

	p.login(harness.DemoEmail, harness.DemoPassword, "login")
	msg = p.waitError("login with auth stopped")
	p.check(strings.Contains(msg, "users is unavailable (503)") && strings.Contains(msg, "auth"), "login with auth stopped says %q", msg)

	s.auth.Restart(t)
	p.login(harness.DemoEmail, "not-the-password", "login")
	p.waitFor("wrong password refused", `document.getElementById("error").textContent.includes("(401)")`)
	msg = p.errorText()
	p.check(strings.Contains(msg, "users refused the login (401)"), "a wrong password says %q", msg)

	// The course's demo user, without signing up; it does not see the learner's tasks.
	p.login(harness.DemoEmail, harness.DemoPassword, "login")
	p.waitFor("the demo user logged in", `!document.getElementById("signed-in").hidden && document.getElementById("error").hidden`)
	p.waitFor("the demo user's list", `document.getElementById("status").textContent.endsWith("tasks.") || document.getElementById("status").textContent === "1 task."`)
	p.check(!slices.Contains(p.taskTitles(), "Buy milk"), "the demo user sees the learner's tasks: %q", p.taskTitles())
}

// TestBrowserDirectMode is the course's first frontend lesson: the page calls tasks at its
// public URL from the browser, across origins (CORS); users, which sends no CORS headers,
// through the frontend.
func TestBrowserDirectMode(t *testing.T) {
	var tasksURL string
	s := startStack(t, func(tasksPort int) []string {
		tasksURL = "http://127.0.0.1:" + strconv.Itoa(tasksPort)
		return []string{"FRONTEND_API_MODE=direct", "TASKS_PUBLIC_URL=" + tasksURL}
	})
	p := newPage(t)
	p.do("open the page", chromedp.Navigate(s.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	mode := eval[string](p, `document.getElementById("mode").textContent`)
	p.check(strings.Contains(mode, "Direct mode") && strings.Contains(mode, tasksURL), "the page says %q", mode)

	p.login(harness.DemoEmail, harness.DemoPassword, "login")
	p.waitFor("logged in", `!document.getElementById("signed-in").hidden`)
	p.addTask("Straight from the browser", "with CORS")
	// No frontend hop: the browser called tasks, which exposes its headers to this origin.
	stores := p.trailOf("store a task")
	p.check(len(stores) == 1 && strings.HasPrefix(stores[0], "tasks ") && strings.Contains(stores[0], " → auth "),
		"in direct mode the store's trail is %q", stores)
	if logs := s.frontend.SettledLogs(); strings.Contains(logs, `"path":"/api/tasks"`) {
		t.Errorf("in direct mode the tasks calls went through the frontend:\n%s", logs)
	}
	if logs := s.tasks.SettledLogs(); !strings.Contains(logs, `"method":"OPTIONS"`) {
		t.Errorf("tasks saw no CORS preflight from the browser:\n%s", logs)
	}

	if err := s.tasks.Stop(); err != nil {
		t.Fatalf("stop tasks: %v", err)
	}
	p.do("reload the list with tasks stopped", chromedp.Click(chromedp.ID("refresh")))
	msg := p.waitError("error with tasks stopped")
	p.check(strings.Contains(msg, "could not reach tasks at "+tasksURL), "with tasks stopped the page says %q", msg)
}
