package app

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

var (
	//go:embed dashboard/page.html
	pageHTML string
	//go:embed dashboard/page.css
	pageCSS string
	//go:embed dashboard/page.js
	pageJS string
)

// dashboardHTML is the page, one self-contained document; dashboardCSP allows its inline style and script
// (by hash) and fetches to its own origin, nothing else.
var dashboardHTML, dashboardCSP = func() (string, string) {
	hash := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}
	page := strings.NewReplacer("{{CSS}}", pageCSS, "{{JS}}", pageJS).Replace(pageHTML)
	csp := "default-src 'none'; style-src " + hash(pageCSS) + "; script-src " + hash(pageJS) +
		"; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return page, csp
}()

// dashboardPage serves GET /admin: the dashboard, which reads /admin/dashboard.json every few seconds.
func (a *App) dashboardPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(dashboardHTML))
	}
}
