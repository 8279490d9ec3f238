package browser

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kub-demo/kub-demo/e2e/browser/webui"
	"github.com/kub-demo/kub-demo/harness"
)

// chain is the four services on loopback, tasks and auth possibly in replicas, each process
// named by POD_NAME as a pod would be by its host name.
type chain struct {
	auth, tasks     []*harness.Process
	users, frontend *harness.Process
	authAt, tasksAt string // host:port tasks sends auth's calls to, and the frontend /api/tasks
}

type chainOptions struct {
	replicas  int      // of tasks and of auth, behind a round-robin balancer when more than 1
	all       []string // settings every process gets
	tasks     []string // settings every tasks process gets
	firstTask []string // settings only the first tasks process gets
	frontend  func(c *chain) []string
}

// startChain starts auth, users, tasks and the frontend, in that order.
func startChain(t *testing.T, o chainOptions) *chain {
	t.Helper()
	bin := harness.Build(t)
	frontend := harness.BuildFrontend(t)
	data := t.TempDir()
	c := &chain{}
	for i := range o.replicas {
		name := "auth-" + string(rune('a'+i))
		c.auth = append(c.auth, harness.Start(t, bin.Auth, append([]string{"JWT_SECRET=" + jwtSecret, "POD_NAME=" + name}, o.all...)))
	}
	// users logs in through the first auth only: the balancer's turns are tasks' alone.
	c.users = harness.Start(t, bin.Users, append([]string{"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(c.auth[0].Port),
		"USERS_FOLDER=" + data + "/users", "POD_NAME=users-1"}, o.all...))
	c.authAt = balance(t, c.auth)
	for i := range o.replicas {
		name := "tasks-" + string(rune('a'+i))
		env := append([]string{"AUTH_ADDRESS=" + c.authAt, "TASKS_FOLDER=" + filepath.Join(data, name), "POD_NAME=" + name}, o.all...)
		env = append(env, o.tasks...)
		if i == 0 {
			env = append(env, o.firstTask...)
		}
		c.tasks = append(c.tasks, harness.Start(t, bin.Tasks, env))
	}
	c.tasksAt = balance(t, c.tasks)
	env := append([]string{"USERS_ADDRESS=127.0.0.1:" + strconv.Itoa(c.users.Port), "TASKS_ADDRESS=" + c.tasksAt, "POD_NAME=frontend-1"}, o.all...)
	if o.frontend != nil {
		env = append(env, o.frontend(c)...)
	}
	c.frontend = harness.Start(t, frontend, env)
	return c
}

// balance returns the host:port of a balancer that sends each request to the next of
// backends in turn (the address of the only one when there is one). A Service spreads
// connections; this spreads requests, so that a few requests of a test meet every replica.
func balance(t *testing.T, backends []*harness.Process) string {
	t.Helper()
	if len(backends) == 1 {
		return "127.0.0.1:" + strconv.Itoa(backends[0].Port)
	}
	var targets []*url.URL
	for _, b := range backends {
		u, err := url.Parse(b.URL)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, u)
	}
	var turn atomic.Uint64
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(targets[(turn.Add(1)-1)%uint64(len(targets))])
	}})
	t.Cleanup(lb.Close)
	return strings.TrimPrefix(lb.URL, "http://")
}

// trailOf is the chain text of each trail entry of the page for request ("list tasks"…),
// newest first.
func trailOf(p *webui.Page, request string) []string {
	p.T.Helper()
	return webui.Eval[[]string](p, `[...document.querySelectorAll("#trail li")].filter(li => li.dataset.request === `+webui.JSString(request)+
		`).map(li => li.querySelector(".chain").textContent)`)
}

// docsScreenshot saves the viewport (or the whole page) as docs/<name> when BROWSER_DOCS_DIR
// is set (make browser-screenshot).
func docsScreenshot(p *webui.Page, name string, full bool) {
	p.T.Helper()
	dir := os.Getenv("BROWSER_DOCS_DIR")
	if dir == "" {
		return
	}
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(p.Ctx, shot)
	if err != nil {
		p.T.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		p.T.Fatal(err)
	}
}

// TestBrowserTrailAcrossReplicas: two tasks and two auth behind balancers. The trail of each
// request names every hop, and over a few requests both tasks pods and both auth pods; the
// network page shows the four services' discovery views and a near-miss variable's warning.
func TestBrowserTrailAcrossReplicas(t *testing.T) {
	c := startChain(t, chainOptions{
		replicas: 2,
		all:      []string{"LAB_CONTROLS=true"},
		// Every request asks auth, so that each shows which auth pod verified it.
		tasks:     []string{"AUTH_VERIFY_CACHE=0"},
		firstTask: []string{"AUTH_SERVICE_SERIVCE_HOST=10.96.0.99"},
		frontend: func(c *chain) []string {
			return []string{"USERS_DISCOVERY_URL=" + c.users.MetricsURL + "/discovery",
				"TASKS_DISCOVERY_URL=" + c.tasks[0].MetricsURL + "/discovery",
				"AUTH_DISCOVERY_URL=" + c.auth[0].MetricsURL + "/discovery"}
		},
	})
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(c.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("the list after login", `[...document.querySelectorAll("#trail li")].some(li => li.dataset.request === "list tasks")`)

	login := trailOf(p, "log in")
	p.Check(len(login) == 1 && login[0] == "frontend frontend-1 → users users-1 → auth (users does not say which auth pod)",
		"the login's trail is %q", login)

	for i := range 5 {
		p.ReloadList("reload the list " + strconv.Itoa(i))
		p.WaitFor("list "+strconv.Itoa(i)+" in the trail", `[...document.querySelectorAll("#trail li")].filter(li => li.dataset.request === "list tasks").length >= `+strconv.Itoa(min(i+2, 7)))
	}
	lists := trailOf(p, "list tasks")
	seen := map[string]bool{}
	for _, chain := range lists {
		hops := strings.Split(chain, " → ")
		p.Check(len(hops) == 3 && hops[0] == "frontend frontend-1" && strings.HasPrefix(hops[1], "tasks tasks-") && strings.HasPrefix(hops[2], "auth auth-"),
			"a list's trail does not name the frontend, tasks and auth pods: %q", chain)
		seen[hops[1]], seen[hops[2]] = true, true
	}
	for _, pod := range []string{"tasks tasks-a", "tasks tasks-b", "auth auth-a", "auth auth-b"} {
		p.Check(seen[pod], "over %d lists the trail never named %s: %q", len(lists), pod, lists)
	}

	// Each tasks replica keeps its own file here: the list after the store may not show it.
	p.Do("store a task", webui.Fill("title", "Seen through two replicas"), webui.Fill("text", ""), chromedp.Click(chromedp.ID("add")))
	p.WaitFor("the store in the trail", `document.querySelectorAll("#trail li[data-request='store a task']").length === 1`)
	stores := trailOf(p, "store a task")
	p.Check(len(stores) == 1 && strings.HasPrefix(stores[0], "frontend frontend-1 → tasks tasks-") && strings.Contains(stores[0], "→ auth auth-"),
		"the store's trail is %q", stores)
	p.Do("scroll to the trail", chromedp.ScrollIntoView(chromedp.ID("trail-section")))
	docsScreenshot(p, "trail.png", false)

	link := webui.Eval[string](p, `document.querySelector("a[href='network.html']").textContent`)
	p.Check(strings.HasPrefix(link, "See the network"), "the tasks page links to the network page as %q", link)
	p.Do("open the network page", chromedp.Navigate(c.frontend.URL+"/network.html"))
	p.WaitFor("the four views", `document.querySelectorAll("#views section.view").length === 4`)
	for _, v := range []struct{ service, pod string }{{"frontend", "frontend-1"}, {"users", "users-1"}, {"tasks", "tasks-a"}, {"auth", "auth-a"}} {
		heading := webui.Eval[string](p, `document.querySelector("#view-`+v.service+` h2").textContent`)
		p.Check(heading == v.service+": pod "+v.pod, "the %s view's heading is %q", v.service, heading)
	}
	findsAuth := webui.Eval[string](p, `document.querySelector("#view-tasks dl").textContent`)
	p.Check(strings.Contains(findsAuth, "how tasks finds auth") && strings.Contains(findsAuth, "found by AUTH_ADDRESS (AUTH_ADDRESS="+c.authAt+")"),
		"tasks' view does not say how it found auth: %q", findsAuth)
	resolves := webui.Eval[string](p, `document.querySelector("#view-frontend .resolves").textContent`)
	p.Check(strings.HasPrefix(resolves, "127.0.0.1 resolves now to 1 address: 127.0.0.1"), "the frontend's view says %q", resolves)
	const nearMiss = "tasks: AUTH_SERVICE_SERIVCE_HOST is set, but nothing here reads it: did you mean AUTH_SERVICE_SERVICE_HOST?"
	warnings := webui.Eval[[]string](p, `[...document.querySelectorAll("#warnings li")].map(li => li.textContent)`)
	p.Check(len(warnings) == 1 && warnings[0] == nearMiss, "the page's warnings are %q, want the near miss of tasks", warnings)
	inView := webui.Eval[string](p, `document.querySelector("#view-tasks .warnings").textContent`)
	p.Check(strings.Contains(inView, "did you mean AUTH_SERVICE_SERVICE_HOST?"), "tasks' own view shows the warning as %q", inView)
	docsScreenshot(p, "network.png", true)

	// Both auth pods told to fail: tasks answers 503 itself, and the trail puts the failure
	// past tasks, at auth.
	for _, a := range c.auth {
		lab(t, a, "fail=503")
	}
	p.Do("back to the tasks", chromedp.Navigate(c.frontend.URL+"/"))
	msg := p.WaitError("auth failing")
	p.Check(strings.Contains(msg, "tasks is unavailable (503)") && strings.Contains(msg, "auth"), "with auth failing the page says %q", msg)
	lists = trailOf(p, "list tasks")
	p.Check(len(lists) == 1 && strings.HasPrefix(lists[0], "frontend frontend-1 → tasks tasks-") && strings.HasSuffix(lists[0], " → auth ✗ failed or not reached"),
		"with auth failing the trail is %q", lists)
}

// lab sets a lab control of process (LAB_CONTROLS=true), e.g. "fail=503".
func lab(t *testing.T, process *harness.Process, control string) {
	t.Helper()
	resp, err := http.Post(process.MetricsURL+"/lab?"+control, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /lab?%s on %s: %s", control, process.Name, resp.Status)
	}
}

// TestBrowserTrailLabFailure: the trail says when tasks' cache answered for auth, and a lab
// control that makes tasks fail shows its reason and the pod it came from; the network page,
// asked by no setting, says that it is off and which setting turns it on.
func TestBrowserTrailLabFailure(t *testing.T) {
	c := startChain(t, chainOptions{replicas: 1, all: []string{"LAB_CONTROLS=true"},
		frontend: func(*chain) []string { return []string{"LAB_CONTROLS=false"} }})
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(c.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("the list after login", `[...document.querySelectorAll("#trail li")].some(li => li.dataset.request === "list tasks")`)
	p.ReloadList("reload the list")
	p.WaitFor("a second list", `document.querySelectorAll("#trail li[data-request='list tasks']").length === 2`)
	lists := trailOf(p, "list tasks")
	p.Check(lists[1] == "frontend frontend-1 → tasks tasks-a → auth auth-a", "the first list's trail is %q", lists[1])
	p.Check(strings.HasPrefix(lists[0], "frontend frontend-1 → tasks tasks-a → auth auth-a (cached ") && strings.HasSuffix(lists[0], " ago)"),
		"the second list's trail, from tasks' cache, is %q", lists[0])

	lab(t, c.tasks[0], "fail=503")
	p.ReloadList("reload the list with tasks failing")
	msg := p.WaitError("tasks failing")
	const labMessage = "Lab control: this pod of tasks was told to fail every request with 503"
	p.Check(strings.Contains(msg, "tasks is unavailable (503)") && strings.Contains(msg, labMessage), "the error says %q", msg)
	reason := webui.Eval[string](p, `document.querySelector("#trail li .reason").textContent`)
	p.Check(strings.HasPrefix(reason, "503 from tasks tasks-a: "+labMessage), "the trail's reason is %q", reason)
	lists = trailOf(p, "list tasks")
	p.Check(lists[0] == "frontend frontend-1 → tasks tasks-a ✗ 503", "the failed list's trail is %q", lists[0])
	p.Do("scroll to the trail", chromedp.ScrollIntoView(chromedp.ID("trail-section")))
	docsScreenshot(p, "trail-lab.png", false)

	p.Do("open the network page", chromedp.Navigate(c.frontend.URL+"/network.html"))
	p.WaitFor("the page says it is off", `!document.getElementById("off").hidden`)
	off := webui.Eval[string](p, `document.getElementById("off").textContent`)
	p.Check(strings.HasPrefix(off, "Off.") && strings.Contains(off, "DISCOVERY_CHAIN=true") && strings.Contains(off, "TASKS_DISCOVERY_URL"),
		"the network page, off, says %q", off)
	views := webui.Eval[int](p, `document.querySelectorAll("#views section").length`)
	p.Check(views == 0, "the network page shows %d views while off", views)
}

// TestBrowserTrailWithoutServedBy: with SERVED_BY=false the trail says plainly that no pod
// is named, and why.
func TestBrowserTrailWithoutServedBy(t *testing.T) {
	c := startChain(t, chainOptions{replicas: 1, all: []string{"SERVED_BY=false"}})
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(c.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("the list after login", `[...document.querySelectorAll("#trail li")].some(li => li.dataset.request === "list tasks")`)
	lists := trailOf(p, "list tasks")
	p.Check(len(lists) == 1 && strings.HasPrefix(lists[0], "No pod named: the answer carries no X-Served-By") && strings.Contains(lists[0], "SERVED_BY=false"),
		"with SERVED_BY=false the trail says %q", lists)
}

// TestBrowserLateListAfterLogOut: a list that comes back after the user logged out (tasks
// made 2 s slow by a lab control) is not shown: the next user of the tab must not find the
// last one's tasks in the page.
func TestBrowserLateListAfterLogOut(t *testing.T) {
	c := startChain(t, chainOptions{replicas: 1, all: []string{"LAB_CONTROLS=true"},
		frontend: func(*chain) []string { return []string{"LAB_CONTROLS=false"} }})
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(c.frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("logged in", `!document.getElementById("signed-in").hidden`)
	p.AddTask("a task of the demo user", "")

	lab(t, c.tasks[0], "slow=2s")
	p.Do("reload the list, then log out before it comes back",
		chromedp.Click(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("logout")))
	p.WaitFor("logged out", `!document.getElementById("signed-out").hidden`)
	time.Sleep(3 * time.Second) // the slow list's answer arrives meanwhile
	shown := webui.Eval[int](p, `document.querySelectorAll("#tasks li").length`)
	p.Check(shown == 0, "after log out the page holds %d tasks of the user who left", shown)
}
