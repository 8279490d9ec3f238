// Package webui drives the frontend's page in headless Chromium, a phone-sized tab at a
// time: the steps a learner takes (log in, add a task, read the error box), each failing the
// test with a screenshot. The browser tests (package browser) and make cluster-test use it.
package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kub-demo/kub-demo/harness"
)

// Page is one browser tab at a phone's size, and the test that drives it.
type Page struct {
	T   *testing.T
	Ctx context.Context
}

// Phone-sized: the page must work there without scrolling sideways.
const Width, Height = 390, 844

// NewPage starts Chromium (ChromiumPath) with a tab of its own, closed when the test ends.
func NewPage(t *testing.T) *Page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.NoSandbox, // root in a container: Chromium's sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(Width, Height),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(Width, Height)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &Page{T: t, Ctx: ctx}
}

// ChromiumPath finds Chromium (CHROMIUM, else the usual names on PATH), or skips the test,
// or fails it under CI (harness.Skip).
func ChromiumPath(t *testing.T) string {
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

// Do runs one step's actions, within 20 s; on failure it saves a screenshot and fails the test.
func (p *Page) Do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("%s: %v%s", step, err, p.Screenshot(step))
	}
}

// Check fails the test, with a screenshot, when ok is false.
func (p *Page) Check(ok bool, format string, args ...any) {
	p.T.Helper()
	if !ok {
		msg := fmt.Sprintf(format, args...)
		p.T.Fatalf("%s%s", msg, p.Screenshot(msg))
	}
}

// Screenshot saves the page as it is now (in BROWSER_ARTIFACTS, or a folder under the
// system's temporary one) and returns a line saying where.
func (p *Page) Screenshot(step string) string {
	dir := os.Getenv("BROWSER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "kub-demo-browser")
	}
	ctx, cancel := context.WithTimeout(p.Ctx, 5*time.Second)
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
	}, p.T.Name()+"-"+step)
	path := filepath.Join(dir, name[:min(len(name), 120)]+".png")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "\n(no screenshot: " + err.Error() + ")"
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "\n(no screenshot: " + err.Error() + ")"
	}
	return "\nscreenshot: " + path
}

// Eval returns the value of a JavaScript expression in the page.
func Eval[T any](p *Page, expr string) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.T.Fatalf("evaluate %s: %v%s", expr, err, p.Screenshot("evaluate"))
	}
	return v
}

// WaitFor waits until a JavaScript expression is true in the page.
func (p *Page) WaitFor(step, expr string) {
	p.T.Helper()
	p.Do(step, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// ErrorText is what the error box shows, "" when it is hidden.
func (p *Page) ErrorText() string {
	p.T.Helper()
	return Eval[string](p, `document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`)
}

// WaitError waits for the error box to show and returns its text.
func (p *Page) WaitError(step string) string {
	p.T.Helper()
	p.WaitFor(step, `!document.getElementById("error").hidden`)
	return p.ErrorText()
}

// Login types the credentials and presses button (login or signup), with the keyboard's
// Enter for login, as a keyboard user would.
func (p *Page) Login(email, password, button string) {
	p.T.Helper()
	p.Do("fill in "+email,
		chromedp.WaitVisible(chromedp.ID("email")),
		Fill("email", ""),
		Fill("password", ""),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if button == "login" {
		p.Do("press Enter", chromedp.SendKeys(chromedp.ID("password"), "\r"))
	} else {
		p.Do("click "+button, chromedp.Click(chromedp.ID(button)))
	}
}

// Fill sets the value of the field with this id, as pasting it would. (chromedp v0.24's
// SetValue cannot set "", and its Clear fails on an empty textarea.)
func Fill(id, value string) chromedp.Action[chromedp.Void] {
	expr := fmt.Sprintf(`(e => { e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); return true })(document.getElementById(%s))`,
		JSString(value), JSString(id))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](expr)(ctx, t)
		return err
	})
}

// JSString is s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ReloadList clicks "Reload the list" and waits for the page to have dealt with the answer,
// whatever it was: the form's buttons are enabled again. Waiting on the list itself would
// pass at once on the list shown before the click.
func (p *Page) ReloadList(step string) {
	p.T.Helper()
	p.Do(step, chromedp.Click(chromedp.ID("refresh")),
		chromedp.Poll[chromedp.Void](`!document.getElementById("refresh").disabled`, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// TaskTitles lists the titles the page shows, as text.
func (p *Page) TaskTitles() []string {
	p.T.Helper()
	return Eval[[]string](p, `[...document.querySelectorAll("#tasks h3")].map(h => h.textContent)`)
}

// HasTitle is a JavaScript expression, true when the list shows a task titled title.
func (p *Page) HasTitle(title string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#tasks h3")].some(h => h.textContent === %s)`, JSString(title))
}

// AddTask fills in the task form and submits it, then waits for title in the list.
func (p *Page) AddTask(title, text string) {
	p.T.Helper()
	p.Do("add "+title[:min(len(title), 20)],
		Fill("title", title),
		Fill("text", text),
		chromedp.Click(chromedp.ID("add")))
	p.WaitFor("see the new task listed", p.HasTitle(title))
}
