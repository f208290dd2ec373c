package app

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
)

// Messages of the key's refusals. None names the key, its hash or which part of it was wrong.
const (
	msgNoKey       = "this balancer needs a client key: POST /{chain}/{key}, or send the header Authorization: Bearer {key}"
	msgUnknownKey  = "unknown client key"
	msgTwoKeys     = "two different client keys: the path's and the Authorization header's"
	msgKeyRate     = "this key's requests per second"
	msgKeyDay      = "this key's requests per day (the count starts again at 00:00 UTC)"
	msgKeyBatch    = "this batch holds more calls than this key's burst: send fewer at once"
	msgKeyGone     = "this socket's client key is no longer in CLIENT_KEYS: open a new socket with a key"
	headerAuthz    = "Authorization"
	headerRetryAft = "Retry-After"
)

// clientOf finds the client of a chain request when CLIENT_KEYS is set: its key is pathKey (the path's element
// after the chain) or the Authorization: Bearer header's. It answers 401 (no key, an unknown one, two different
// ones) or 403 (a chain the key may not use) itself and returns false; with CLIENT_KEYS unset it returns nil,
// true: the balancer is open.
func (a *App) clientOf(ctx context.Context, w http.ResponseWriter, r *http.Request, chain, pathKey string) (*clients.Client, bool) {
	if !a.keys.Enabled() {
		return nil, true
	}
	key, how := clients.Presented(pathKey, r.Header.Get(headerAuthz))
	var c *clients.Client
	found := false
	if how == clients.OneKey {
		c, found = a.keys.Lookup(key)
	}
	if !found {
		msg := msgUnknownKey
		switch how {
		case clients.NoKey:
			msg = msgNoKey
		case clients.Conflict:
			msg = msgTwoKeys
		}
		a.plane.CountClient(ctx, chain, metrics.ClientUnknown, metrics.ClientUnauthorized)
		jsonrpc.ErrUnauthorized.With(msg).Write(w, nil) // no WWW-Authenticate: a browser must not ask for a password
		return nil, false
	}
	if !c.MayUse(chain) {
		a.plane.CountClient(ctx, chain, c.Name, metrics.ClientChainDenied)
		jsonrpc.ErrKeyChain.Write(w, nil)
		return nil, false
	}
	return c, true
}

// keyDenied is ErrMethodDenied, naming the method, when the client's own allow or deny list refuses a call of
// req (a batch is refused whole, as by the chain's deny list).
func keyDenied(c *clients.Client, req *jsonrpc.Request) *jsonrpc.Error {
	if c == nil || !c.HasMethodList() {
		return nil
	}
	for i, call := range req.Calls {
		if !c.Refuses(call.Method) {
			continue
		}
		detail := shortMethod(call.Method) + " (this key's list of methods)"
		if req.Batch {
			detail = fmt.Sprintf("batch element %d: %s", i, detail)
		}
		return jsonrpc.ErrMethodDenied.With(detail)
	}
	return nil
}

// spend takes n requests (a batch's calls) of the client's budget. Over it, it answers 429 ErrKeyLimit with
// Retry-After itself (req: the request, for the ids of the answer) and returns false.
func (a *App) spend(ctx context.Context, w http.ResponseWriter, c *clients.Client, chain string, req *jsonrpc.Request, n int) bool {
	refusal, after := a.spendKey(ctx, c, chain, n)
	if refusal == nil {
		return true
	}
	w.Header().Set(headerRetryAft, retryAfter(after))
	refusal.Write(w, req)
	return false
}

// spendKey takes n requests of the client's budget and counts the outcome: nil, or the refusal and when to try
// again.
func (a *App) spendKey(ctx context.Context, c *clients.Client, chain string, n int) (*jsonrpc.Error, time.Duration) {
	if c == nil {
		return nil, 0
	}
	if c.Limit.None() {
		a.plane.CountClient(ctx, chain, c.Name, metrics.ClientOK)
		return nil, 0
	}
	ok, after, day := a.take(ctx, budget.ClientName(c.Name), c.Limit, n)
	if ok {
		a.plane.CountClient(ctx, chain, c.Name, metrics.ClientOK)
		return nil, 0
	}
	msg, outcome := msgKeyRate, metrics.ClientLimited
	switch {
	case day:
		msg, outcome = msgKeyDay, metrics.ClientDayLimited
	case c.Limit.RPS > 0 && float64(n) > c.Limit.Capacity():
		msg = msgKeyBatch
	}
	a.plane.CountClient(ctx, chain, c.Name, outcome)
	return jsonrpc.ErrKeyLimit.With(msg), after
}

// admitSocket decides a message of a socket a key opened (durable.AdmitFunc): the key's list of methods, then its
// budget, as for POST /{chain}/{key}. A socket has no Retry-After header: a refusal's message says when instead.
func (a *App) admitSocket(ctx context.Context, chain, client string, req *jsonrpc.Request) (refusal []byte, limited bool) {
	if !a.keys.Enabled() {
		return nil, false // CLIENT_KEYS unset since the socket opened: the balancer is open to anyone
	}
	c, ok := a.keys.Find(client)
	if !ok || !c.MayUse(chain) { // the key went from CLIENT_KEYS, or lost the chain, since the socket opened
		a.plane.CountClient(ctx, chain, metrics.ClientUnknown, metrics.ClientUnauthorized)
		return jsonrpc.ErrUnauthorized.With(msgKeyGone).BodyFor(req), true
	}
	if derr := keyDenied(c, req); derr != nil {
		a.plane.CountClient(ctx, chain, c.Name, metrics.ClientDenied)
		return derr.BodyFor(req), false
	}
	if lerr, after := a.spendKey(ctx, c, chain, len(req.Calls)); lerr != nil {
		lerr.Detail += "; retry after " + retryAfter(after) + " s"
		return lerr.BodyFor(req), true
	}
	return nil, false
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}
