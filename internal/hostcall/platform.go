package hostcall

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// errNoCall is what an I/O function answers when its context carries no call: a goroutine that kept a context
// of its own instead of its call's. It is a bug, reported as an error rather than a crash.
var errNoCall = errors.New("hostcall: I/O outside a call (the context carries none)")

// defaultTimeout bounds an operation whose context has no deadline. It is not a setting: every request's
// operations have a deadline from the settings (request_timeout, EVMLB_ATTEMPT_TIMEOUT); this only keeps an
// operation started without one from waiting for ever. It is the longest bound those settings allow (their range's
// maximum, config.ChainRequestTimeout and config.TuningAttemptTimeout; a test holds it so), so that it never cuts
// short what a setting allows.
const defaultTimeout = 5 * time.Minute

// timeout is what is left of ctx's deadline, or defaultTimeout.
func timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return defaultTimeout
}

// jsonHeader is what Post sends: shared, never changed (encodeOp only reads it).
var jsonHeader = http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}

// Post is platform.Platform.Post: a fetch operation of ctx's call, with no request or response object.
func Post(ctx context.Context, url string, body []byte, limit int64) (int, []byte, error) {
	c := From(ctx)
	if c == nil {
		return 0, nil, errNoCall
	}
	r, err := c.Do(ctx, Op{Kind: contract.OpFetch, URL: url, Method: http.MethodPost, Header: jsonHeader, Body: body,
		Timeout: timeout(ctx), Limit: limit})
	if err != nil {
		if r.Err == contract.ErrTooLarge {
			return 0, nil, platform.ErrTooLarge
		}
		return 0, nil, err
	}
	return r.Status, r.Body, nil
}

func readBody(rc io.ReadCloser) ([]byte, error) {
	if rc == nil || rc == http.NoBody {
		return nil, nil
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func response(req *http.Request, r Result) *http.Response {
	h := r.Header
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		Status: http.StatusText(r.Status), StatusCode: r.Status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(r.Body)), ContentLength: int64(len(r.Body)), Request: req,
	}
}

// Namespace is a platform.Namespace whose calls are object operations of the caller's call.
type Namespace string

var _ platform.Namespace = Namespace("")

// Fetch calls the Durable Object name of the namespace with req.
func (ns Namespace) Fetch(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	c := From(ctx)
	if c == nil {
		return nil, errNoCall
	}
	body, err := readBody(req.Body)
	if err != nil {
		return nil, err
	}
	r, err := c.Do(ctx, Op{Kind: contract.OpObject, Namespace: string(ns), Name: name, Method: req.Method, Path: req.URL.Path,
		Header: req.Header, Body: body, Timeout: timeout(ctx)})
	if err != nil {
		return nil, err
	}
	return response(req, r), nil
}

// After is platform.Platform.After over a sleep operation of ctx's call.
func After(ctx context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	c := From(ctx)
	if c == nil {
		return ch // never fires: the caller's own context ends its wait
	}
	go func() {
		if _, err := c.Do(ctx, Op{Kind: contract.OpSleep, Sleep: d}); err == nil {
			close(ch)
		}
	}()
	return ch
}

// Background is platform.Platform.Background: fn runs as background work of ctx's call.
func Background(ctx context.Context, fn func(context.Context)) {
	c := From(ctx)
	if c == nil || !c.Go(ctx, fn) {
		return
	}
}

// Storage is the storage of the Durable Object a call runs for: every method is a storage operation of the call
// its context carries. Object is the instance's id; an operation from a call of another object is refused.
type Storage struct{ Object string }

var _ platform.Storage = Storage{}

func (s Storage) do(ctx context.Context, op Op) (Result, error) {
	c := From(ctx)
	if c == nil {
		return Result{}, errNoCall
	}
	if c.Object != s.Object {
		return Result{}, errors.New("hostcall: storage of another object")
	}
	op.Kind = contract.OpStorage
	return c.Do(ctx, op)
}

func (s Storage) Get(ctx context.Context, key string) (string, bool, error) {
	r, err := s.do(ctx, Op{Call: contract.StorageGet, Key: key})
	return r.Value, r.Found, err
}

func (s Storage) Put(ctx context.Context, entries map[string]string) error {
	keys := sortedKeys(entries)
	for len(keys) > 0 {
		n := min(len(keys), contract.MaxKeys)
		part := make(map[string]string, n)
		for _, k := range keys[:n] {
			part[k] = entries[k]
		}
		if _, err := s.do(ctx, Op{Call: contract.StoragePut, Entries: part}); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s Storage) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), contract.MaxKeys)
		if _, err := s.do(ctx, Op{Call: contract.StorageDelete, Keys: keys[:n]}); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s Storage) List(ctx context.Context, prefix string) (map[string]string, error) {
	r, err := s.do(ctx, Op{Call: contract.StorageList, Prefix: prefix})
	if r.Entries == nil {
		r.Entries = map[string]string{}
	}
	return r.Entries, err
}

func (s Storage) DeleteAll(ctx context.Context) error {
	_, err := s.do(ctx, Op{Call: contract.StorageDeleteAll})
	return err
}

func (s Storage) GetAlarm(ctx context.Context) (time.Time, bool, error) {
	r, err := s.do(ctx, Op{Call: contract.StorageGetAlarm})
	return r.Time, r.Found, err
}

func (s Storage) SetAlarm(ctx context.Context, at time.Time) error {
	_, err := s.do(ctx, Op{Call: contract.StorageSetAlarm, Time: at})
	return err
}

func (s Storage) DeleteAlarm(ctx context.Context) error {
	_, err := s.do(ctx, Op{Call: contract.StorageDeleteAlarm})
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EdgeCache is platform.EdgeCache over cache operations of the caller's call (CONTRACT.md §4): the host's shared
// answer cache, caches.default in workerd. Limit bounds an entry Match takes into Go's memory (0: none): a
// larger one is a miss, and Put does not store one. Every error is the caller's miss (platform.EdgeCache).
type EdgeCache struct{ Limit int64 }

var _ platform.EdgeCache = EdgeCache{}

// Match returns the entry of key, (nil, false, nil) on a miss.
func (e EdgeCache) Match(ctx context.Context, key string) ([]byte, bool, error) {
	c := From(ctx)
	if c == nil {
		return nil, false, errNoCall
	}
	r, err := c.Do(ctx, Op{Kind: contract.OpCache, Call: contract.CacheMatch, Key: key, Limit: e.Limit})
	if err != nil {
		if r.Err == contract.ErrTooLarge {
			return nil, false, platform.ErrTooLarge
		}
		return nil, false, err
	}
	if !r.Found {
		return nil, false, nil
	}
	if e.Limit > 0 && int64(len(r.Body)) > e.Limit { // the host broke the limit: never keep it
		return nil, false, platform.ErrTooLarge
	}
	return r.Body, true, nil
}

// Put stores body under key for ttl, rounded up to whole seconds; a ttl under one nanosecond, or a body over
// Limit, stores nothing.
func (e EdgeCache) Put(ctx context.Context, key string, body []byte, ttl time.Duration) error {
	if ttl <= 0 || e.Limit > 0 && int64(len(body)) > e.Limit {
		return nil
	}
	c := From(ctx)
	if c == nil {
		return errNoCall
	}
	if body == nil {
		body = []byte{} // an empty entry is a body of no bytes, not none
	}
	_, err := c.Do(ctx, Op{Kind: contract.OpCache, Call: contract.CachePut, Key: key, Body: body, TTL: ttl})
	return err
}

// Delete removes the entry of key, if any.
func (e EdgeCache) Delete(ctx context.Context, key string) error {
	c := From(ctx)
	if c == nil {
		return errNoCall
	}
	_, err := c.Do(ctx, Op{Kind: contract.OpCache, Call: contract.CacheDelete, Key: key})
	return err
}

// TTLSeconds is a put's ttl on the wire: whole seconds, rounded up, at least 1.
func TTLSeconds(ttl time.Duration) int64 {
	return max(int64((ttl+time.Second-1)/time.Second), 1)
}

// WithTimeout is platform.Platform.WithTimeout: a context that reports the deadline (every operation hands what
// is left of it to the host, which aborts the operation then) and sets no Go timer. Err reports
// context.DeadlineExceeded once the deadline has passed, and context.Canceled after cancel.
//
// It makes no cancellation machinery of its own: Done is its parent's, and cancel marks it canceled without
// closing a channel. Nothing waits on a deadline context once the code that made it returns (it cancels on its
// way out), and attempts that overlap (hedging) run under a context.WithCancel of their own, which does close its
// Done. A context.WithCancel here cost each request two cancel contexts and their registration in wasm.
func WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	c := &deadlineCtx{Context: parent, deadline: dl}
	return c, c.cancel
}

type deadlineCtx struct {
	context.Context
	deadline time.Time
	canceled atomic.Bool
}

func (c *deadlineCtx) cancel() { c.canceled.Store(true) }

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if time.Until(c.deadline) <= 0 { // the monotonic clock alone: one host call, not two as time.Now
		return context.DeadlineExceeded
	}
	return nil
}
