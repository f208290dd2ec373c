// Package platform is the host contract seen from Go: the few capabilities the balancer needs from its host,
// as small interfaces. worker/ implements them over syscall/js (workerd or the wazero host); memplatform
// implements them in memory so that the whole balancer runs natively in tests.
package platform

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Storage is one Durable Object instance's storage. Values are strings (JSON text by convention).
// Put and Delete take at most contract.MaxKeys (128) keys per call; implementations split larger calls.
type Storage interface {
	Get(ctx context.Context, key string) (value string, ok bool, err error)
	Put(ctx context.Context, entries map[string]string) error
	Delete(ctx context.Context, keys ...string) error
	// List returns every key with the prefix ("" for all) and its value.
	List(ctx context.Context, prefix string) (map[string]string, error)
	DeleteAll(ctx context.Context) error
	// GetAlarm reports the instance's alarm, if one is set.
	GetAlarm(ctx context.Context) (at time.Time, ok bool, err error)
	SetAlarm(ctx context.Context, at time.Time) error
	DeleteAlarm(ctx context.Context) error
}

// Namespace is a Durable Object namespace binding: Fetch delivers req to the one live instance named name
// (idFromName(name)). The host sets the role, object and instance headers on the way in.
type Namespace interface {
	Fetch(ctx context.Context, name string, req *http.Request) (*http.Response, error)
}

// EdgeCache is the host's shared answer cache, the second tier of internal/cache: Cloudflare's caches.default
// (per data centre) in workerd, a bounded in-memory cache shared by the Worker runtimes in the wazero host. Keys
// are absolute GET URLs (the Cache API takes no POST); a miss is (nil, false, nil); an error is a miss to the
// caller. hostcall.EdgeCache is it on js/wasm (the `cache` operation, CONTRACT.md), memplatform has its own.
type EdgeCache interface {
	Match(ctx context.Context, key string) (body []byte, ok bool, err error)
	Put(ctx context.Context, key string, body []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// Socket is an accepted WebSocket as the host keeps it (CONTRACT.md §7): the tag Go gave it and its attachment.
type Socket struct{ Tag, Attachment string }

// SocketEvent is a message or close call of a subs object (CONTRACT.md §3): what happened to which socket.
type SocketEvent struct {
	Kind             string // contract.CallMessage or contract.CallClose
	Role             string
	Object, Instance string
	Tag, Attachment  string
	// message: the frame (Data, nil when TooLarge: longer than maxBodyBytes), Binary for a binary frame
	Binary, TooLarge bool
	Data             []byte
	// close: the code (contract.CloseAbnormal when the socket failed or went away), the reason, and Clean when
	// the peer sent a close frame
	Code   int
	Reason string
	Clean  bool
}

// Sockets is the host's WebSocket surface (CONTRACT.md §7). Upgrade is for the Worker's call of a GET with
// Upgrade: websocket; the others act on the open sockets of ctx's own subs object (its fetch, alarm, message and
// close calls). hostcall.Sockets is it on js/wasm, memplatform has its own.
type Sockets interface {
	// Upgrade hands the upgrade request of ctx's call to the SUBS object name, a GET of path with header (which
	// carries Upgrade: websocket): the client is answered with that object's answer as is, whose status Upgrade
	// returns. On an error nothing was answered.
	Upgrade(ctx context.Context, name, path string, header http.Header) (status int, err error)
	// Accept makes the answer of ctx's call (a subs object's fetch call made by an Upgrade) accept the socket under
	// tag with attachment.
	Accept(ctx context.Context, tag, attachment string) error
	// Send writes text as one text frame to the sockets with one of tags; it returns how many it reached.
	Send(ctx context.Context, text []byte, tags ...string) (int, error)
	// Close closes the socket tag with code and reason (at most 123 bytes).
	Close(ctx context.Context, tag string, code int, reason string) (int, error)
	// Attach replaces the attachment of the socket tag.
	Attach(ctx context.Context, tag, attachment string) (int, error)
	// List reads the object's open sockets, in no particular order.
	List(ctx context.Context) ([]Socket, error)
}

// Platform is everything the balancer takes from its host. Every field is required.
type Platform struct {
	// Getenv returns an environment variable or secret, "" when unset.
	Getenv func(name string) string
	// Chains and Upstreams are the CHAIN and UPSTREAM Durable Object namespaces.
	Chains, Upstreams Namespace
	// Subs is the SUBS namespace (the chains' subscription objects, issue 21); the upgrades go through Sockets.
	Subs Namespace
	// Budgets is the BUDGET namespace (one object per limit every isolate shares, issue 22).
	Budgets Namespace
	// StorageFor returns the storage of the live Durable Object instance objectID, or nil if there is none.
	StorageFor func(objectID string) Storage
	// Post makes an outbound request to an RPC provider, what forwarding and health checks send: a POST of a JSON
	// body with Content-Type and Accept application/json, an answer body of at most limit bytes (more fails with
	// ErrTooLarge, or is cut just past limit). It must honour ctx (cancellation) and never follow a redirect: a
	// 3xx is returned as it is (a redirect would send the client's request to an endpoint nobody configured). On
	// js/wasm it is the host's fetch with redirect "manual" (internal/hostcall), natively an http.Client's Do
	// with a CheckRedirect that stops (memplatform).
	Post func(ctx context.Context, url string, body []byte, limit int64) (status int, answer []byte, err error)
	// Now is the clock.
	Now func() time.Time
	// After returns a channel closed once d has passed, on the host's clock; it is never closed when ctx ends
	// first (callers select on ctx.Done() too). On js/wasm it is a timer the host runs in the call's own context.
	After func(ctx context.Context, d time.Duration) <-chan struct{}
	// WithTimeout is context.WithTimeout where the host enforces deadlines itself (js/wasm: every operation
	// carries what is left of its context's deadline, and the host aborts it then): the context reports the
	// deadline but sets no Go timer, whose firing workerd may never deliver and whose scheduling costs two JS
	// calls each time the runtime pauses. Natively it is context.WithTimeout.
	WithTimeout func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
	// Background runs fn on its own goroutine as work of ctx's call that may outlive the answer (workerd's
	// waitUntil): the call does not end before fn returns. fn's context is not canceled with ctx.
	Background func(ctx context.Context, fn func(context.Context))
	// Logf writes one log line. Callers never pass secrets or upstream URLs beyond scheme and host.
	Logf func(format string, args ...any)
	// HostKind names the host ("workerd", "wazero", "memory"); shown, never branched on.
	HostKind string
	// Cache, when set, is the host's shared answer cache (EdgeCache); nil: the isolate's memory is the only tier.
	Cache EdgeCache
	// Sockets is the WebSocket surface (issue 21).
	Sockets Sockets
	// MemoryBytes, when set, is the program's linear memory now (wasm hosts); shown in /admin/stats.
	MemoryBytes func() uint64
}

// ErrTooLarge is Post's error for an answer over its limit (a host that enforces the limit itself).
var ErrTooLarge = errors.New("answer over the response limit")
