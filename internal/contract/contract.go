// Package contract holds the names and numbers of the host contract (CONTRACT.md at the repository root),
// shared by the Go program, the JS shim and the wazero host. Change CONTRACT.md, this file, worker/shim and host/
// together, and bump Version.
package contract

import "time"

// Version of the host contract. The shim and the wazero host refuse to serve a program of another version.
const Version = 7

// Headers the host sets on every request it hands to Go.
const (
	HeaderRole     = "x-evmlb-role"
	HeaderObject   = "x-evmlb-object"
	HeaderInstance = "x-evmlb-instance"
)

// Roles, the values of HeaderRole and the first argument of handleAlarm.
const (
	RoleWorker   = "worker"
	RoleChain    = "chain"
	RoleUpstream = "upstream"
	RoleSubs     = "subs"   // the chain's WebSocket sessions (SubscriptionDurableObject)
	RoleBudget   = "budget" // a limit shared by every isolate: one object per budget (BudgetDurableObject, issue 22)
)

// Environment binding names of the Durable Object namespaces.
const (
	BindingChain    = "CHAIN"
	BindingUpstream = "UPSTREAM"
	BindingSubs     = "SUBS"
	BindingBudget   = "BUDGET"
)

// Durable Object class names, as wrangler.toml and the shim export them.
const (
	ClassChain    = "ChainDurableObject"
	ClassUpstream = "UpstreamDurableObject"
	ClassSubs     = "SubscriptionDurableObject"
	ClassBudget   = "BudgetDurableObject"
)

// Names Go registers on context.binding.
const (
	BindingContractVersion = "contractVersion"
	BindingMaxBodyBytes    = "maxBodyBytes"
	BindingRequestHeaders  = "requestHeaders"
	BindingBegin           = "begin"
	BindingComplete        = "complete"
)

// The import module through which Go hands the host bytes and takes them (CONTRACT.md §1): plain wasm numbers,
// addresses and lengths in the program's linear memory, so that no JS value (and no finalizer) is made per
// message.
const (
	ImportModule  = "evmlb"
	ImportDeliver = "deliver"
	ImportTake    = "take"
	ImportBody    = "body"
)

// Call kinds, the first member of begin's text (CONTRACT.md §3).
const (
	CallFetch = "fetch"
	CallAlarm = "alarm"
	// A text or binary frame from a WebSocket the object accepted (workerd: webSocketMessage).
	CallMessage = "message"
	// A WebSocket of the object closed or failed (workerd: webSocketClose, webSocketError).
	CallClose = "close"
)

// Kinds of message, the `op` member of what Go delivers (CONTRACT.md §4).
const (
	OpFetch    = "fetch"
	OpObject   = "object"
	OpStorage  = "storage"
	OpSleep    = "sleep"
	OpCache    = "cache"
	OpUpgrade  = "upgrade" // a Worker call: answer the client with a subs object's answer as is (a WebSocket)
	OpSocket   = "socket"  // a subs object's call: its accepted WebSockets
	OpAbort    = "abort"
	OpResponse = "response"
	OpDone     = "done"
)

// Error kinds of a failed operation's result (its first member; "" is success).
const (
	ErrTimeout  = "timeout"
	ErrAborted  = "aborted"
	ErrTooLarge = "too_large"
	ErrNetwork  = "network"
	ErrStorage  = "storage"
	ErrInvalid  = "invalid"
)

// Storage calls, the `call` member of a storage operation.
const (
	StorageGet         = "get"
	StoragePut         = "put"
	StorageDelete      = "delete"
	StorageList        = "list"
	StorageDeleteAll   = "deleteAll"
	StorageGetAlarm    = "getAlarm"
	StorageSetAlarm    = "setAlarm"
	StorageDeleteAlarm = "deleteAlarm"
)

// Cache calls, the `call` member of a cache operation (CONTRACT.md §4): the host's shared answer cache
// (workerd: caches.default), keyed by an absolute https URL on the Worker's own host.
const (
	CacheMatch  = "match"
	CachePut    = "put"
	CacheDelete = "delete"
)

// Socket calls, the `call` member of a socket operation (CONTRACT.md §4): the WebSockets the calling object
// accepted, named by the tag Go gave each.
const (
	SocketSend   = "send"
	SocketClose  = "close"
	SocketAttach = "attach"
	SocketList   = "list"
)

// Frame kinds of a message call (CONTRACT.md §3).
const (
	FrameText   = "text"
	FrameBinary = "binary"
)

// WebSocket limits (CONTRACT.md §4): a tag is at most MaxTagBytes bytes (Cloudflare's limit for a hibernatable
// socket's tag), an attachment at most MaxAttachmentBytes bytes of UTF-8 (serializeAttachment's), a close
// reason at most MaxCloseReasonBytes (what fits a close frame).
const (
	MaxTagBytes         = 256
	MaxAttachmentBytes  = 16 << 10
	MaxCloseReasonBytes = 123
)

// Close codes a host uses itself (CONTRACT.md §4): CloseAbnormal is what a close call carries when the socket
// failed or its peer went away without a close frame (webSocketError; RFC 6455's 1006, never sent on the wire).
const CloseAbnormal = 1006

// ValidCloseCode reports whether Go may close a socket with code: 1000–1003, 1007–1014 or 3000–4999 (the codes
// RFC 6455 lets an endpoint send; 1004–1006 and 1015 are reserved).
func ValidCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// MaxKeys is the most keys one storage put or delete may carry (Cloudflare's limit): callers split larger ones,
// hosts refuse them (invalid).
const MaxKeys = 128

// ObjectURLBase prefixes an object operation's path to make the url of the call the object receives.
const ObjectURLBase = "https://object"

// Host kinds, context.host.kind.
const (
	HostWorkerd = "workerd"
	HostWazero  = "wazero"
)

// NoBody is the body length that says "no body" (null) in begin, complete and deliver.
const NoBody = -1

// Alarm retry policy the hosts apply when an alarm call's done carries an error (as Cloudflare does): at most
// AlarmMaxRetries retries, the first AlarmFirstBackoffMsec after the failure, each next one twice as long.
const (
	AlarmMaxRetries       = 6
	AlarmFirstBackoffMsec = 2000
)

// AlarmBackoff is the delay before retry n+1 of an alarm, n being the retry count of the try that failed
// (0 for the first try): 2 s, 4 s, 8 s, …
func AlarmBackoff(n int) time.Duration {
	return time.Duration(AlarmFirstBackoffMsec) * time.Millisecond << n
}

// InternalErrorBody is what a host answers (HTTP 500) when Go could not answer at all.
const InternalErrorBody = `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`

// RequestHeaders are the only request headers a host passes to Go (binding.requestHeaders), lower-case: the ones
// Go reads. Converting every header a request carries (twenty or more behind Cloudflare's edge) cost time on
// every call. A header Go starts to read must be added here.
var RequestHeaders = []string{"authorization", "content-type", "origin", "upgrade", "x-evmlb-admin", "x-evmlb-client", "x-evmlb-name"}

// CanonicalRequestHeader is http.CanonicalHeaderKey of a name in RequestHeaders, by a switch: no parse and no
// string hash (slow in wasm) per header per request. TestCanonicalRequestHeader holds the two equal.
func CanonicalRequestHeader(name string) (string, bool) {
	switch name {
	case "authorization":
		return "Authorization", true
	case "content-type":
		return "Content-Type", true
	case "origin":
		return "Origin", true
	case "upgrade":
		return "Upgrade", true
	case "x-evmlb-admin":
		return "X-Evmlb-Admin", true
	case "x-evmlb-client":
		return "X-Evmlb-Client", true
	case "x-evmlb-name":
		return "X-Evmlb-Name", true
	}
	return "", false
}
