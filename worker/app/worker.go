package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/proxy"
)

// worker is the Worker's router: GET /, /admin/…, POST /{chain} and POST /{chain}/{key}.
func (a *App) worker(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/":
		a.describe(w)
	case path == "/admin" || strings.HasPrefix(path, "/admin/"):
		a.admin(w, r)
	case strings.Count(path, "/") == 1:
		a.chainRPC(w, r, path[1:], "")
	case strings.Count(path, "/") == 2 && a.keys.Enabled(): // with CLIENT_KEYS unset, a path has no key
		chain, key, _ := strings.Cut(path[1:], "/")
		a.chainRPC(w, r, chain, key)
	default:
		jsonrpc.ErrNotFound.Write(w, nil)
	}
}

// Description is the GET / answer.
type Description struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Host    string   `json:"host"`
	Chains  []string `json:"chains"`
	Usage   string   `json:"usage"`
	// Config says where the upstream list comes from: "UPSTREAM_CONFIG", or "embedded default" when it is unset.
	Config string `json:"config"`
	// ConfigError names what is wrong with the configuration, if anything (never a value).
	ConfigError string `json:"config_error,omitempty"`
	// ClientKeys: CLIENT_KEYS is set, so a chain request needs a client key.
	ClientKeys bool `json:"client_keys,omitempty"`
}

// describe answers GET / (any method): always 200.
func (a *App) describe(w http.ResponseWriter) {
	d := Description{
		Name: Name, Version: Version, Host: a.p.HostKind, Chains: a.env.Config.Chains(),
		Usage:  "POST /{chain} with a JSON-RPC 2.0 request or batch (Content-Type: application/json)",
		Config: a.configSource,
	}
	if d.Chains == nil {
		d.Chains = []string{}
	}
	if a.keys.Enabled() {
		d.ClientKeys = true
		d.Usage = "POST /{chain}/{key}, or POST /{chain} with Authorization: Bearer {key}, with a JSON-RPC 2.0 request or batch (Content-Type: application/json)"
	}
	if a.cfgErr != nil {
		d.ConfigError = a.cfgErr.Error()
	}
	b, _ := json.Marshal(d) // a struct of strings always marshals
	jsonrpc.WriteJSON(w, http.StatusOK, b)
}

// chainRPC validates a client's request and answers it from the data plane (internal/proxy), in this request.
// pathKey is the path's element after the chain: a client key (with CLIENT_KEYS unset it is not looked at).
func (a *App) chainRPC(w http.ResponseWriter, r *http.Request, chain, pathKey string) {
	if a.cfgErr != nil {
		jsonrpc.ErrConfig.With(a.cfgErr.Error()).Write(w, nil)
		return
	}
	a.cors(w, r)
	if !a.env.Config.HasChain(chain) {
		jsonrpc.ErrUnknownChain.Write(w, nil)
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent) // a CORS preflight: the headers say it all
		return
	}
	if r.Method == http.MethodGet && isUpgrade(r) {
		if c, ok := a.clientOf(r.Context(), w, r, chain, pathKey); ok && a.spend(r.Context(), w, c, chain, nil, 1) {
			a.upgrade(w, r, chain, c)
		}
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	}
	c, ok := a.clientOf(r.Context(), w, r, chain, pathKey) // before the body is read
	if !ok {
		return
	}
	if r.ContentLength > a.env.Settings.MaxBodyBytes {
		jsonrpc.ErrBodyTooLarge.Write(w, nil)
		return
	}
	if !a.admit(r.ContentLength) {
		jsonrpc.ErrBusy.Write(w, nil)
		return
	}
	defer a.release(r.ContentLength)
	body, err := readBody(w, r, a.env.Settings.MaxBodyBytes)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			jsonrpc.ErrBodyTooLarge.Write(w, nil)
			return
		}
		jsonrpc.ErrParse.With("reading the body").Write(w, nil)
		return
	}
	req, perr := jsonrpc.Parse(body, a.env.Settings.MaxBatch)
	if perr != nil {
		perr.Write(w, req)
		return
	}
	derr := a.denied(chain, req)
	if derr == nil {
		derr = keyDenied(c, req)
	}
	if derr != nil {
		if c != nil {
			a.plane.CountClient(r.Context(), chain, c.Name, metrics.ClientDenied)
		}
		derr.Write(w, req)
		return
	}
	if !a.spend(r.Context(), w, c, chain, req, len(req.Calls)) { // a batch of n calls spends n
		return
	}
	a.plane.Serve(proxy.WithHost(r.Context(), &r.Host), w, chain, req, body)
}

// isUpgrade reports whether r asks for a WebSocket (Upgrade: websocket, any case).
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket")
}

// upgrade hands a WebSocket upgrade of a known chain to the chain's subscription object (durable/subs.go), whose
// answer, the socket or its refusal, answers the client as is. A key's client (c) is named to the object, which
// holds each message of the socket to the key's list and budget (admitSocket); the upgrade itself spent one.
func (a *App) upgrade(w http.ResponseWriter, r *http.Request, chain string, c *clients.Client) {
	if a.p.Sockets == nil {
		jsonrpc.ErrMethodNotAllowed.With("this host serves no WebSocket").Write(w, nil)
		return
	}
	h := http.Header{"Upgrade": {"websocket"}}
	if c != nil {
		h.Set(durable.HeaderSocketClient, c.Name)
	}
	if _, err := a.p.Sockets.Upgrade(r.Context(), chain, "/"+chain, h); err != nil {
		a.p.Logf("chain %s: WebSocket upgrade: %v", chain, err)
		jsonrpc.ErrInternal.With("the WebSocket could not be opened").Write(w, nil)
	}
}

// serveCalls answers a WebSocket's plain calls as POST /{chain} answers a body (durable.ServeFunc): the deny list,
// then the data plane. nil: no answer (notifications only).
func (a *App) serveCalls(ctx context.Context, chain string, req *jsonrpc.Request, body []byte) []byte {
	if derr := a.denied(chain, req); derr != nil {
		return derr.BodyFor(req)
	}
	w := &bufferWriter{header: http.Header{}}
	a.plane.Serve(ctx, w, chain, req, body)
	if len(bytes.TrimSpace(w.body.Bytes())) == 0 {
		return nil
	}
	return w.body.Bytes()
}

// bufferWriter is an http.ResponseWriter into memory: the data plane's answer to a socket's calls.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(int)             {}

// smallBody is the size below which a request is always admitted: the in-flight bound is for large bodies.
const smallBody = config.SmallBodyBytes

// admit reserves n bytes of the runtime's in-flight budget (EVMLB_MAX_INFLIGHT_BYTES) for a request body; it
// reports false when a large body would take the runtime past it. Small and unknown-length bodies pass (an
// unknown length is bounded by EVMLB_MAX_BODY_BYTES while it is read).
func (a *App) admit(n int64) bool {
	if n < smallBody {
		return true
	}
	if a.inflight.Add(n) > a.env.Settings.MaxInflightBytes {
		a.inflight.Add(-n)
		return false
	}
	return true
}

func (a *App) release(n int64) {
	if n >= smallBody {
		a.inflight.Add(-n)
	}
}

// readBody reads a request body once into a buffer of its exact size when the length is known (the hosts always
// say it), else through MaxBytesReader; a body the host made for us is taken without a copy.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if b, ok := r.Body.(interface{ Bytes() []byte }); ok {
		return b.Bytes(), nil
	}
	if n := r.ContentLength; n >= 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// denied answers ErrMethodDenied, naming the method, when a call of req asks for a method the chain's deny list
// refuses (config.Config.Denied), or for a custom JavaScript tracer the chain does not allow
// (config.Config.TracerDenied). A batch holding one such call is refused whole, each call getting the error, as a
// batch with one invalid call already is: nothing of it reaches an upstream.
func (a *App) denied(chain string, req *jsonrpc.Request) *jsonrpc.Error {
	for i, c := range req.Calls {
		detail := shortMethod(c.Method)
		switch {
		case a.env.Config.Denied(a.env.Settings, chain, c.Method):
		case a.env.Config.TracerDenied(chain, c.Method, c.Params):
			detail += " with a custom JavaScript tracer: only built-in tracers (callTracer, prestateTracer, …) are allowed, as tracer code can crash the node (allow_custom_tracers)"
		default:
			continue
		}
		if req.Batch {
			detail = fmt.Sprintf("batch element %d: %s", i, detail)
		}
		return jsonrpc.ErrMethodDenied.With(detail)
	}
	return nil
}

// shortMethod is a method name cut to at most 64 bytes (a client may send megabytes after "admin_").
func shortMethod(m string) string {
	const max = 64
	if len(m) <= max {
		return m
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "…"
}

var exposeHeaders = []string{proxy.CacheHeader}

// cors sets the CORS headers of a chain endpoint's answer (EVMLB_CORS_ORIGINS): dapps call RPC URLs from pages
// of other origins, and a browser sends a preflight for a JSON POST. The admin API never sets them.
func (a *App) cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	var origin string
	if o := r.Header["Origin"]; len(o) > 0 { // keys are canonical: no canonicalising on every request
		origin = o[0]
	}
	allow := a.env.Settings.AllowOrigin(origin)
	if allow != "*" {
		h["Vary"] = append(h["Vary"], "Origin")
	}
	if allow == "" {
		return
	}
	h["Access-Control-Allow-Origin"] = []string{allow}
	h["Access-Control-Expose-Headers"] = exposeHeaders // a page may read what the answer cache did
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", "86400")
	}
}
