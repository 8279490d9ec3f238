//go:build cluster

package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kub-demo/kub-demo/e2e/browser/webui"
	"github.com/kub-demo/kub-demo/harness"
)

// testBrowser drives the web UI of deploy/k8s in headless Chromium through kubectl
// port-forward to frontend-service, as make browser-test does on loopback: sign up, add
// tasks (an odd one too), see them after a reload, auth scaled to zero (the page names the
// hop), auth back, log out, log in as the demo user.
func testBrowser(t *testing.T, figure func(string, ...any)) {
	start := time.Now()
	frontend := portForward(t, "frontend-service", 80)
	p := webui.NewPage(t)
	p.Do("open the page", chromedp.Navigate(frontend.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))

	email := fmt.Sprintf("browser-%d@example.com", time.Now().UnixNano())
	p.Login(email, "s3cret-pass", "signup")
	p.WaitFor("logged in after signup", `!document.getElementById("signed-in").hidden`)
	p.AddTask("Buy milk", "2 litres")
	odd := `Say "hi" <b>bold</b> & 'quotes' TASK_SPLIT {"title":"x"}`
	p.AddTask(odd, "line one\nTASK_SPLIT <script>alert(1)</script>")
	markup := webui.Eval[int](p, `document.querySelectorAll("#tasks b, #tasks script").length`)
	p.Check(markup == 0, "a task's text became %d HTML elements", markup)
	p.Do("reload", chromedp.Reload())
	p.WaitFor("the list after a reload", p.HasTitle("Buy milk")+" && "+p.HasTitle(odd))

	// auth gone: tasks cannot verify the token once its cache entry (AUTH_VERIFY_CACHE, 10 s)
	// is past, and the page says which hop failed.
	mustKubectl(t, time.Minute, "scale", "deployment/auth-deployment", "--replicas=0")
	mustKubectl(t, 2*time.Minute, "wait", "--for=delete", "pod", "-l", "app=auth", waitArg(2*time.Minute))
	var msg string
	for deadline := time.Now().Add(40 * time.Second); ; {
		p.ReloadList("reload the list with auth scaled to zero")
		if msg = p.ErrorText(); msg != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second) // the cached verification is still good: try again shortly
	}
	p.Check(strings.Contains(msg, "tasks is unavailable (503)") && strings.Contains(msg, "auth"),
		"with auth scaled to zero the page says %q", msg)
	mustKubectl(t, time.Minute, "scale", "deployment/auth-deployment", "--replicas=2")
	mustKubectl(t, 4*time.Minute, "rollout", "status", "deployment/auth-deployment", waitArg(4*time.Minute))
	// The Service's endpoints reach kube-proxy a moment after the pods are Ready: until then
	// tasks still meets a refused connection, and the page says to try again in a moment.
	ready := time.Now()
	for deadline := ready.Add(30 * time.Second); ; {
		p.ReloadList("reload the list with auth back")
		if p.ErrorText() == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	p.WaitFor("the list with auth back", p.HasTitle("Buy milk")+` && document.getElementById("error").hidden`)
	backAfter := since(ready)

	p.Do("log out", chromedp.Click(chromedp.ID("logout")))
	p.WaitFor("logged out", `!document.getElementById("signed-out").hidden`)
	p.Login(harness.DemoEmail, harness.DemoPassword, "login")
	p.WaitFor("the demo user logged in", `!document.getElementById("signed-in").hidden && document.getElementById("error").hidden`)
	p.WaitFor("the demo user's list", `document.getElementById("status").textContent.endsWith("tasks.") || document.getElementById("status").textContent === "1 task."`)
	p.Check(!strings.Contains(strings.Join(p.TaskTitles(), "\n"), "Buy milk"), "the demo user sees the learner's tasks: %q", p.TaskTitles())
	figure("the web UI in Chromium through port-forward to frontend-service: sign up, tasks, auth scaled to zero and back (the list back %s after auth's pods were Ready), log out, demo login in %s",
		backAfter, since(start))
}
