package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/retry"
)

// repairBatch retries, on the next upstreams, the elements of a batch answer whose class sends them elsewhere
// ("header not found", rate limited, …), and puts the better answers in their place. Writes are never retried.
// The other elements stay the upstream's bytes.
func (pl *Plane) repairBatch(ctx context.Context, r *request, answer []byte, next []string) []byte {
	req := r.req
	var elems []json.RawMessage
	if json.Unmarshal(answer, &elems) != nil {
		return answer
	}
	calls := map[string]jsonrpc.Call{}
	for _, c := range req.Calls {
		if !c.Notification() {
			calls[idKey(c.ID)] = c
		}
	}
	repaired := false
	for _, up := range next {
		var redo []jsonrpc.Call
		at := map[string]int{}
		for i, e := range elems {
			c, ok := calls[elemID(e)]
			if !ok {
				continue
			}
			if class := retry.Element(e); retry.Lookup(class).NextUpstream && retry.Retryable(c.Method, class) {
				redo = append(redo, c)
				at[idKey(c.ID)] = i
			}
		}
		if len(redo) == 0 || ctx.Err() != nil {
			break
		}
		res := pl.attempt(ctx, r, up, encodeBatch(redo), expect(true, redo))
		if res.body == nil {
			continue
		}
		var better []json.RawMessage
		if json.Unmarshal(res.body, &better) != nil {
			continue
		}
		for _, e := range better {
			if i, ok := at[elemID(e)]; ok && !retry.Lookup(retry.Element(e)).NextUpstream {
				elems[i] = e
				repaired = true
			}
		}
	}
	if !repaired {
		return answer // the upstream's bytes, unchanged
	}
	return joinBatch(elems)
}

// isArray reports whether body is a JSON array (a batch answer). The body is an answer the Upstream object
// classified already (valid JSON-RPC), so its first byte tells.
func isArray(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '['
}

// joinBatch writes raw elements as a JSON array, each element's bytes unchanged.
func joinBatch(elems []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// idKey is a JSON id in a comparable form: equal for the ids retry.SameID says are one (1 and 1.0; "1" is not 1).
func idKey(id json.RawMessage) string {
	if k, ok := retry.IDKey(id); ok {
		return k
	}
	return strings.TrimSpace(string(id))
}

// elemID is the idKey of a batch answer element's id, "" when it has none.
func elemID(elem json.RawMessage) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(elem, &m) != nil {
		return ""
	}
	return idKey(m.ID)
}

// encodeBatch writes calls as a JSON-RPC batch; id and params stay the client's bytes, and a notification stays
// one (no id member).
func encodeBatch(calls []jsonrpc.Call) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, c := range calls {
		if i > 0 {
			b.WriteByte(',')
		}
		method, _ := json.Marshal(c.Method)
		b.WriteString(`{"jsonrpc":"2.0",`)
		if len(c.ID) > 0 { // not a notification
			b.WriteString(`"id":`)
			b.Write(c.ID)
			b.WriteByte(',')
		}
		b.WriteString(`"method":`)
		b.Write(method)
		if len(c.Params) > 0 {
			b.WriteString(`,"params":`)
			b.Write(c.Params)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes()
}
