package hostcall

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

// The wire form of operations and their results (CONTRACT.md §4): what worker/jsbind hands the host and reads
// back, in pure Go so that it is tested natively.

// The canonical forms of the header names a call carries, without canonicalising (a parse per header) or a map
// lookup (a string hash, slow in wasm) on every request.
var (
	CanonRole     = http.CanonicalHeaderKey(contract.HeaderRole)
	CanonObject   = http.CanonicalHeaderKey(contract.HeaderObject)
	CanonInstance = http.CanonicalHeaderKey(contract.HeaderInstance)
)

// canonical is http.CanonicalHeaderKey, without a parse for the names Go asks for.
func canonical(name string) string {
	if c, ok := contract.CanonicalRequestHeader(name); ok {
		return c
	}
	return http.CanonicalHeaderKey(name)
}

// ToHeader reads a flat [name, value, …] list.
func ToHeader(a []string) http.Header {
	h := make(http.Header, len(a)/2+1)
	vals := make([]string, len(a)/2) // one array for the values of every name
	for i := 0; i+1 < len(a); i += 2 {
		k := canonical(a[i])
		if k == CanonRole || k == CanonObject || k == CanonInstance {
			continue // set from the call's fields, never from a header a host passed
		}
		if prev := h[k]; prev != nil {
			h[k] = append(prev, a[i+1])
			continue
		}
		v := vals[i/2 : i/2+1 : i/2+1]
		v[0] = a[i+1]
		h[k] = v
	}
	return h
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// EncodeOp writes an op as its JSON text (CONTRACT.md §4) and its body (nil when it has none).
func EncodeOp(op Op) ([]byte, []byte) {
	o := contract.NewObject()
	o.Str("op", op.Kind)
	if op.ID != 0 {
		o.Num("id", float64(op.ID))
	}
	var body []byte
	switch op.Kind {
	case contract.OpFetch, contract.OpObject:
		o.Str("method", op.Method)
		o.Pairs("headers", op.Header)
		o.Num("timeout", ms(op.Timeout))
		if op.Kind == contract.OpFetch {
			o.Str("url", op.URL)
			o.Num("limit", float64(op.Limit))
		} else {
			o.Str("namespace", op.Namespace)
			o.Str("name", op.Name)
			o.Str("path", op.Path)
		}
		body = op.Body
	case contract.OpStorage:
		o.Str("call", op.Call)
		switch op.Call {
		case contract.StorageGet:
			o.Str("key", op.Key)
		case contract.StoragePut:
			kv := make([]string, 0, 2*len(op.Entries))
			for k, v := range op.Entries {
				kv = append(kv, k, v)
			}
			o.Strs("entries", kv)
		case contract.StorageDelete:
			o.Strs("keys", op.Keys)
		case contract.StorageList:
			o.Str("prefix", op.Prefix)
		case contract.StorageSetAlarm:
			o.Num("time", float64(op.Time.UnixMilli()))
		}
	case contract.OpCache:
		o.Str("call", op.Call)
		o.Str("key", op.Key)
		switch op.Call {
		case contract.CacheMatch:
			o.Num("limit", float64(op.Limit))
		case contract.CachePut:
			o.Num("ttl", float64(TTLSeconds(op.TTL)))
			body = op.Body
		}
	case contract.OpUpgrade:
		o.Str("namespace", op.Namespace)
		o.Str("name", op.Name)
		o.Str("path", op.Path)
		o.Pairs("headers", op.Header)
		o.Num("timeout", ms(op.Timeout))
	case contract.OpSocket:
		o.Str("call", op.Call)
		switch op.Call {
		case contract.SocketSend:
			if op.All {
				o.True("all")
			} else {
				o.Strs("tags", op.Tags)
			}
			body = op.Body
			if body == nil {
				body = []byte{}
			}
		case contract.SocketClose:
			o.Str("tag", op.Tag)
			o.Num("code", float64(op.Code))
			o.Str("reason", op.Reason)
		case contract.SocketAttach:
			o.Str("tag", op.Tag)
			o.Str("attachment", op.Attachment)
		}
	case contract.OpSleep:
		o.Num("ms", ms(op.Sleep))
	case contract.OpAbort:
		o.Num("target", float64(op.Target))
	case contract.OpResponse:
		o.Num("status", float64(op.Status))
		o.Pairs("headers", op.Header)
		if op.Last {
			o.True("done")
		}
		if op.Accept != nil {
			o.Strs("accept", []string{op.Accept.Tag, op.Accept.Attachment})
		}
		body = op.Body
	case contract.OpDone:
		if op.Err != "" {
			o.Str("error", op.Err)
		}
	default:
		panic(fmt.Sprintf("hostcall: unknown op %q", op.Kind))
	}
	return o.Bytes(), body
}

// DecodeResult reads the host's result of an operation of kind kind (Call.Kind) (CONTRACT.md §4): a JSON array of strings, [error, message,
// payload…], and the body (nil when none).
func DecodeResult(kind, text string, body []byte) Result {
	f, err := contract.DecodeStrings(text)
	if err != nil || len(f) < 2 {
		return Result{Err: contract.ErrInvalid, Message: "the result is not a JSON array of at least 2 strings"}
	}
	if f[0] != "" {
		return Result{Err: f[0], Message: f[1]}
	}
	p := f[2:]
	var r Result
	switch kind {
	case contract.OpUpgrade:
		if len(p) < 1 {
			return Result{Err: contract.ErrInvalid, Message: "no status"}
		}
		r.Status, _ = strconv.Atoi(p[0])
	case socketKind(contract.SocketList):
		r.Sockets = make([]Socket, 0, len(p)/2)
		for i := 0; i+1 < len(p); i += 2 {
			r.Sockets = append(r.Sockets, Socket{Tag: p[i], Attachment: p[i+1]})
		}
		r.Count = len(r.Sockets)
	case socketKind(contract.SocketSend), socketKind(contract.SocketClose), socketKind(contract.SocketAttach):
		if len(p) > 0 {
			r.Count, _ = strconv.Atoi(p[0])
		}
	case contract.OpFetch, contract.OpObject:
		if len(p) < 1 {
			return Result{Err: contract.ErrInvalid, Message: "no status"}
		}
		r.Status, _ = strconv.Atoi(p[0])
		if len(p) > 1 { // hosts send none: Go reads no answer header
			r.Header = ToHeader(p[1:])
		}
		r.Body = body
		if r.Body == nil {
			r.Body = []byte{}
		}
	case contract.StorageGet:
		if len(p) > 0 {
			r.Value, r.Found = p[0], true
		}
	case contract.OpCache: // a match that hit has a body; a miss, a put and a delete none
		r.Body, r.Found = body, body != nil
	case contract.StorageGetAlarm:
		if len(p) > 0 {
			ms, _ := strconv.ParseInt(p[0], 10, 64)
			r.Time, r.Found = time.UnixMilli(ms), true
		}
	case contract.StorageList:
		r.Entries = make(map[string]string, len(p)/2)
		for i := 0; i+1 < len(p); i += 2 {
			r.Entries[p[i]] = p[i+1]
		}
	}
	return r
}
