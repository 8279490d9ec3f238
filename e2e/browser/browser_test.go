// Package browser drives the frontend's page in headless Chromium, against the four real
// binaries on loopback: sign up, log in, add tasks (odd ones too), log out, and the errors a
// learner meets when a hop is down. Without Chromium the browser tests skip, except under CI
// (CI set), where they fail. A failed step saves a screenshot (BROWSER_ARTIFACTS, or a
// folder under the system's temporary one) and says where.
package browser

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kub-demo/kub-demo/e2e/browser/webui"
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

func TestBrowserFlowThroughTheProxy(t *testing.T) {
	s := startStack(t, nil)
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(s.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))

	unlabelled := webui.Eval[int](p, `[...document.querySelectorAll("input, textarea")].filter(e => e.labels.length === 0).length`)
	p.Check(unlabelled == 0, "%d form fields have no label", unlabelled)
	live := webui.Eval[string](p, `document.getElementById("error").getAttribute("role") + " " + document.getElementById("error").getAttribute("aria-live")`)
	p.Check(live == "alert assertive", "the error box is %q, want role alert, aria-live assertive", live)

	// Sign up a new user: the page logs in with the real token, and moves focus to the form.
	p.Login("learner@example.com", "s3cret-pass", "signup")
	p.WaitFor("logged in after signup", `!document.getElementById("signed-in").hidden`)
	who := webui.Eval[string](p, `document.getElementById("who").textContent`)
	focused := webui.Eval[string](p, `document.activeElement.id`)
	p.Check(who == "learner@example.com", "logged in as %q", who)
	p.Check(focused == "title", "focus is on #%s after login, want #title", focused)
	token := webui.Eval[string](p, `sessionStorage.getItem("kub-demo-token")`)
	p.Check(token != "" && token != "abc", "the tab keeps the token %q", token)

	p.AddTask("Buy milk", "2 litres")

	// What the API allows must show as it is: quotes, markup, the file's delimiter, long words.
	odd := `Say "hi" <b>bold</b> & 'quotes' TASK_SPLIT {"title":"x"}`
	oddText := "line one\nTASK_SPLIT <script>alert(1)</script>"
	p.AddTask(odd, oddText)
	markup := webui.Eval[int](p, `document.querySelectorAll("#tasks b, #tasks script").length`)
	p.Check(markup == 0, "a task's text became %d HTML elements", markup)
	shownText := webui.Eval[string](p, `[...document.querySelectorAll("#tasks li")].find(li => li.querySelector("h3").textContent === `+webui.JSString(odd)+`).querySelector("p").textContent`)
	p.Check(shownText == oddText, "the odd task's text shows as %q, want %q", shownText, oddText)
	stored := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil)
	p.Check(strings.Contains(stored.Raw, `"title":"Say \"hi\" \u003cb\u003ebold\u003c/b\u003e \u0026 'quotes' TASK_SPLIT`) ||
		strings.Contains(stored.Raw, `Say \"hi\" <b>bold</b> & 'quotes' TASK_SPLIT`), "tasks did not store the title as typed: %s", stored.Raw)

	if path := os.Getenv("BROWSER_DOCS_SCREENSHOT"); path != "" {
		p.Do("scroll to the list", chromedp.ScrollIntoView(chromedp.ID("signed-in")))
		png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	long := strings.Repeat("W", 500) // the longest title tasks takes, one long word
	p.AddTask(long, "")
	overflow := webui.Eval[int](p, `document.documentElement.scrollWidth - window.innerWidth`)
	p.Check(overflow <= 0, "the page is %d px wider than a phone's screen with a long title", overflow)

	// A reload keeps the tab's token and shows the list again.
	p.Do("reload", chromedp.Reload())
	p.WaitFor("the list after a reload", p.HasTitle("Buy milk"))

	// A hop down: the page names it, and the cause.
	if err := s.tasks.Stop(); err != nil {
		t.Fatalf("stop tasks: %v", err)
	}
	p.ReloadList("reload the list with tasks stopped")
	msg := p.WaitError("error with tasks stopped")
	p.Check(strings.Contains(msg, "could not reach tasks (localhost:") && strings.Contains(msg, "connection refused"),
		"with tasks stopped the page says %q", msg)
	// The frontend's proxy answered: the trail stops short of tasks, and says who answered.
	lists := trailOf(p, "list tasks")
	reason := webui.Eval[string](p, `document.querySelector("#trail li .reason").textContent`)
	p.Check(strings.HasPrefix(lists[0], "frontend ") && strings.HasSuffix(lists[0], " → tasks ✗ not reached") &&
		strings.HasPrefix(reason, "502 from frontend ") && strings.Contains(reason, ": The frontend could not reach tasks"),
		"with tasks stopped the trail says %q, %q", lists[0], reason)
	// tasks comes back, a new process at the same name: no restart of the frontend.
	s.tasks.Restart(t)
	p.ReloadList("reload the list with tasks back")
	p.WaitFor("the list with tasks back", p.HasTitle("Buy milk")+` && document.getElementById("error").hidden`)

	if err := s.auth.Stop(); err != nil {
		t.Fatalf("stop auth: %v", err)
	}
	p.ReloadList("reload the list with auth stopped")
	msg = p.WaitError("error with auth stopped")
	p.Check(strings.Contains(msg, "tasks is unavailable (503)") && strings.Contains(msg, "auth"),
		"with auth stopped the list's error says %q", msg)

	// Log out: the token leaves the tab, and focus goes back to the email field.
	p.Do("log out", chromedp.Click(chromedp.ID("logout")))
	p.WaitFor("logged out", `!document.getElementById("signed-out").hidden && sessionStorage.getItem("kub-demo-token") === null`)
	focused = webui.Eval[string](p, `document.activeElement.id`)
	p.Check(focused == "email", "focus is on #%s after logout, want #email", focused)

	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	msg = p.WaitError("login with auth stopped")
	p.Check(strings.Contains(msg, "users is unavailable (503)") && strings.Contains(msg, "auth"), "login with auth stopped says %q", msg)

	s.auth.Restart(t)
	p.Login(harness.DemoEmail, "not-the-password", "login")
	p.WaitFor("wrong password refused", `document.getElementById("error").textContent.includes("(401)")`)
	msg = p.ErrorText()
	p.Check(strings.Contains(msg, "users refused the login (401)"), "a wrong password says %q", msg)

	// The course's demo user, without signing up; it does not see the learner's tasks.
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("the demo user logged in", `!document.getElementById("signed-in").hidden && document.getElementById("error").hidden`)
	p.WaitFor("the demo user's list", `document.getElementById("status").textContent.endsWith("tasks.") || document.getElementById("status").textContent === "1 task."`)
	p.Check(!slices.Contains(p.TaskTitles(), "Buy milk"), "the demo user sees the learner's tasks: %q", p.TaskTitles())
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
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(s.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	mode := webui.Eval[string](p, `document.getElementById("mode").textContent`)
	p.Check(strings.Contains(mode, "Direct mode") && strings.Contains(mode, tasksURL), "the page says %q", mode)

	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("logged in", `!document.getElementById("signed-in").hidden`)
	p.AddTask("Straight from the browser", "with CORS")
	// No frontend hop: the browser called tasks, which exposes its headers to this origin.
	stores := trailOf(p, "store a task")
	p.Check(len(stores) == 1 && strings.HasPrefix(stores[0], "tasks ") && strings.Contains(stores[0], " → auth "),
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
	p.ReloadList("reload the list with tasks stopped")
	msg := p.WaitError("error with tasks stopped")
	p.Check(strings.Contains(msg, "could not reach tasks at "+tasksURL), "with tasks stopped the page says %q", msg)
}
