// Package ui is the tasks web page, embedded in the binary: plain HTML, CSS and one script,
// and /config.js, which tells the script where users and tasks are.
package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// files holds the page's files at its root (index.html, app.js, app.css).
var files, _ = fs.Sub(static, "static")

// Modes of the page: through the frontend's /api/ (the course's reverse-proxy lesson), or
// straight to the public URLs of users and tasks with CORS (its first frontend lesson).
const (
	ModeProxy  = "proxy"
	ModeDirect = "direct"
)

// Config is what the script is told at /config.js.
type Config struct {
	Mode     string `json:"mode"`
	UsersURL string `json:"usersURL"` // base URL of users' routes: /api, or users' public URL
	TasksURL string `json:"tasksURL"` // the same for tasks
}

// Page serves the page's files and its config.
type Page struct {
	configJS []byte
	csp      string
}

// NewPage returns the page for cfg.
func NewPage(cfg Config) (*Page, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The script may call only this origin and, in direct mode, the two public URLs.
	connect := []string{"'self'"}
	for _, u := range []string{cfg.UsersURL, cfg.TasksURL} {
		if strings.Contains(u, "://") {
			connect = append(connect, u)
		}
	}
	return &Page{
		configJS: append(append([]byte("window.kubDemoConfig = "), raw...), ";\n"...),
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src " +
			strings.Join(connect, " ") + "; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	}, nil
}

// File serves one of the page's files. name is a constant from the routes, never the request's path.
func (p *Page) File(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.headers(w)
		// The files change with the binary: revalidate each time (ServeFileFS answers 304s).
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, name)
	}
}

// ConfigJS serves /config.js.
func (p *Page) ConfigJS(w http.ResponseWriter, r *http.Request) {
	p.headers(w)
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(p.configJS)
}

func (p *Page) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
