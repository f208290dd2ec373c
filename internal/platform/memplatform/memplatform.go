// Package memplatform is an in-memory host: Durable Object namespaces that route to a Handler in-process with the
// contract's role, object and instance headers, in-memory storage, and alarms fired by a fake clock. With it the
// whole balancer runs natively in tests.
package memplatform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// Handler is what the host calls: the app's ServeHTTP and Alarm.
type Handler interface {
	http.Handler
	Alarm(ctx context.Context, role, objectID string, retryCount int) error
}

// Host is an in-memory host. Make it with New, build the app on Platform(), then Bind the app.
type Host struct {
	env    map[string]string
	client *http.Client
	clock  *Clock
	cache  *EdgeCache

	bgMu                 sync.Mutex
	bgCond               *sync.Cond
	bgActive, bgSleeping int // background goroutines running, and those of them waiting on the fake clock

	mu        sync.Mutex
	handler   Handler
	instances map[string]*instance        // by object id
	sockets   map[string]map[string]*Conn // open WebSockets by object id and tag (sockets.go)
	calls     map[string]int              // object calls by role and path
	nextToken int
	logs      []string
}

// instance is a live Durable Object instance: its storage and alarm survive Restart, its token does not.
type instance struct {
	role    string
	token   string
	storage *Storage
}

// New makes a host with the environment env, the outbound client (nil: a plain http.Client) and a fake clock
// starting at start. Like the real hosts (fetch with redirect "manual"), the client never follows a redirect: a
// copy of it is made that returns the 3xx answer as it is.
func New(env map[string]string, client *http.Client, start time.Time) *Host {
	if client == nil {
		client = &http.Client{}
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &c
	h := &Host{env: env, client: client, instances: map[string]*instance{}}
	h.bgCond = sync.NewCond(&h.bgMu)
	h.clock = &Clock{now: start, host: h}
	h.cache = &EdgeCache{clock: h.clock}
	return h
}

// Platform is the platform the app is built on.
func (h *Host) Platform() platform.Platform {
	return platform.Platform{
		Getenv:      func(name string) string { return h.env[name] },
		Chains:      namespace{h, contract.RoleChain},
		Upstreams:   namespace{h, contract.RoleUpstream},
		Subs:        namespace{h, contract.RoleSubs},
		Budgets:     namespace{h, contract.RoleBudget},
		StorageFor:  h.storageFor,
		Post:        h.post,
		Now:         h.clock.Now,
		After:       h.clock.After,
		WithTimeout: h.clock.WithTimeout,
		Background:  h.background,
		Logf:        h.logf,
		HostKind:    "memory",
		Cache:       h.cache,
		Sockets:     memSockets{h},
	}
}

// post is platform.Platform.Post over the host's client (which follows no redirect); a deadline of the fake clock
// ends the request, the real network never sees it.
func (h *Host) post(ctx context.Context, url string, body []byte, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(realDeadline{ctx}, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	return resp.StatusCode, b, err
}

type backgroundKey struct{}

// background runs fn on its own goroutine; Wait waits for every such goroutine.
func (h *Host) background(ctx context.Context, fn func(context.Context)) {
	h.bgMu.Lock()
	h.bgActive++
	h.bgMu.Unlock()
	go func() {
		defer func() {
			h.bgMu.Lock()
			h.bgActive--
			h.bgCond.Broadcast()
			h.bgMu.Unlock()
		}()
		fn(context.WithValue(context.WithoutCancel(ctx), backgroundKey{}, true))
	}()
}

// sleeping counts a background goroutine that waits on the fake clock (delta +1 or -1).
func (h *Host) sleeping(delta int) {
	h.bgMu.Lock()
	h.bgSleeping += delta
	h.bgCond.Broadcast()
	h.bgMu.Unlock()
}

// Wait waits until the background work of every call has returned, or waits on the fake clock (which only the
// test moves): what is left is due at a later time.
func (h *Host) Wait() {
	h.bgMu.Lock()
	defer h.bgMu.Unlock()
	for h.bgActive > h.bgSleeping {
		h.bgCond.Wait()
	}
}

// Bind sets the handler that serves requests and alarms (again after an app restart).
func (h *Host) Bind(handler Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handler = handler
}

func (h *Host) bound() Handler {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handler
}

// Cache is the host's answer cache (Platform's Cache), shared by everything the host runs, as caches.default is by
// the isolates of a data centre.
func (h *Host) Cache() *EdgeCache { return h.cache }

// Clock is the host's fake clock.
func (h *Host) Clock() *Clock { return h.clock }

// Restart re-creates every live instance: new instance tokens, storage and alarms kept.
func (h *Host) Restart() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.instances {
		in.token = h.newToken()
	}
}

func (h *Host) newToken() string {
	h.nextToken++
	return "instance-" + strconv.Itoa(h.nextToken)
}

// Logs returns the lines logged so far.
func (h *Host) Logs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

func (h *Host) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, line)
}

// ServeHTTP serves r as the Worker entry: the role header is overwritten and the object headers deleted.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Header.Set(contract.HeaderRole, contract.RoleWorker)
	r.Header.Del(contract.HeaderObject)
	r.Header.Del(contract.HeaderInstance)
	h.bound().ServeHTTP(w, r)
}

func (h *Host) storageFor(objectID string) platform.Storage {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in := h.instances[objectID]; in != nil {
		return in.storage
	}
	return nil
}

// ObjectID is idFromName of the role's namespace: 64 lowercase hex digits, stable.
func ObjectID(role, name string) string {
	sum := sha256.Sum256([]byte(role + "\x00" + name))
	return hex.EncodeToString(sum[:])
}

// namespace delivers requests to the instances of one role.
type namespace struct {
	h    *Host
	role string
}

var _ platform.Namespace = namespace{}

func (ns namespace) Fetch(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	id := ObjectID(ns.role, name)
	h := ns.h
	h.mu.Lock()
	if h.calls == nil {
		h.calls = map[string]int{}
	}
	h.calls[ns.role+" "+req.URL.Path]++
	in := h.instances[id]
	if in == nil {
		in = &instance{role: ns.role, token: h.newToken(), storage: newStorage(h, id)}
		h.instances[id] = in
	}
	token := in.token
	handler := h.handler
	h.mu.Unlock()
	r := req.Clone(withObject(ctx, id))
	r.Header = passedHeaders(r.Header)
	r.Header.Set(contract.HeaderRole, ns.role)
	r.Header.Set(contract.HeaderObject, id)
	r.Header.Set(contract.HeaderInstance, token)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// passedHeaders is h with only the headers a host passes to Go (contract.RequestHeaders), as the real hosts do: a
// header Go reads that is not in the list works here only if this host is as strict as they are.
func passedHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, name := range contract.RequestHeaders {
		if vs := h.Values(name); len(vs) > 0 {
			out[http.CanonicalHeaderKey(name)] = []string{strings.Join(vs, ", ")}
		}
	}
	return out
}

// ObjectCalls counts the calls made so far to objects of the role at path.
func (h *Host) ObjectCalls(role, path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[role+" "+path]
}

// Storage returns the storage of the instance named name in the role's namespace, nil if it never ran.
func (h *Host) Storage(role, name string) *Storage {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in := h.instances[ObjectID(role, name)]; in != nil {
		return in.storage
	}
	return nil
}
