package proxy

import (
	"context"
	"hash/fnv"
	"net/http"
	"time"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
)

// Poison requests (issue 18): a request that brings a node down (a tracer that overflows its stack) must not be
// sent to the next upstream, which it would bring down too. README.md states the rule ("How requests are routed");
// RATIONALE.md says why it is decided by a probe.
const (
	// poisonMemory is how long an isolate refuses the calls of a poison request without an attempt.
	poisonMemory = 2 * time.Minute
	// probeTimeout bounds the eth_chainId probe after a dropped connection (or the attempt timeout when shorter).
	probeTimeout = 3 * time.Second
)

// probeBody is the probe's request: eth_chainId is answered by every node from memory.
var probeBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)

// mayPoison reports whether a dropped connection on req is to be probed: a read that would go to the next upstream
// after a dropped connection, holding a trace (retry.Traces). A plain state read cannot crash a node, an eth_call
// fails over (README.md: a node that died on its own must not cost the commonest call its failover), and a write
// is not sent twice anyway.
func mayPoison(req *jsonrpc.Request) bool {
	return retryableFor(req, retry.Network) && traces(req)
}

// traces reports whether req holds a debug_ or trace_ call: such a request is never hedged, as a second attempt
// beside a slow one would give a request that is crashing its node to the next upstream before the drop is seen
// (and tracing twice doubles the heaviest work a provider does).
func traces(req *jsonrpc.Request) bool {
	for _, c := range req.Calls {
		if retry.Traces(c.Method) {
			return true
		}
	}
	return false
}

// probeAfterDrop is the class of an attempt at u that ended retry.Network: the same upstream is asked eth_chainId at
// once, and when it does not answer (refused, dropped again, timed out, not a 2xx JSON answer) the request likely
// brought it down: retry.Poison. When it answers, the drop was the network's or the node's own: retry.Network,
// and the request fails over as before.
func (pl *Plane) probeAfterDrop(ctx context.Context, r *request, u config.Upstream) retry.Class {
	if !mayPoison(r.req) || pl.failingBefore(r.v, u.Name) {
		return retry.Network
	}
	t := pl.target(u)
	t.Timeout = min(t.Timeout, probeTimeout)
	t.Unchecked = false
	res := forward.Do(ctx, t, probeBody)
	switch {
	case res.Class == retry.Canceled || ctx.Err() != nil:
		return retry.Network // the client went away: nothing learnt
	case res.Class == retry.OK:
		return retry.Network
	}
	pl.p.Logf("upstream %s (%s): dropped a request's connection and then failed a probe (%s): poison request, not sent to another upstream", u.ID(), u.Endpoint(), res.Class)
	return retry.Poison
}

// failingBefore reports whether the isolate's table counted failures of up in a row before this attempt: an
// upstream that was failing already (workerd reports its refused connections as drops) did not go down because
// of this request, which then fails over. Only the first request to meet a node that died on its own is judged
// poison; its outcome then counts against the upstream.
func (pl *Plane) failingBefore(v *chainView, up string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table == nil {
		return false
	}
	row, ok := v.table.Get(up)
	return ok && row.Breaker.Failures > 0
}

// fingerprint identifies a request's calls for the poison memory: every call's method and params, not its id, so
// that a client's retry of the same calls is recognised.
func fingerprint(req *jsonrpc.Request) uint64 {
	h := fnv.New64a()
	for _, c := range req.Calls {
		_, _ = h.Write([]byte(c.Method))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(c.Params)
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// rememberPoison records req's fingerprint as poison for poisonMemory, to be reported to the chain object (which
// hands it to every isolate), and counts it. The caller does not hold v's lock.
func (pl *Plane) rememberPoison(v *chainView, req *jsonrpc.Request, now time.Time) {
	mark := protocol.PoisonMark{FP: fingerprint(req), Until: now.Add(poisonMemory).UnixMilli()}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.met.Poison++
	v.addPoison([]protocol.PoisonMark{mark}, now)
	v.pending.Poison = append(v.pending.Poison, mark)
	if n := len(v.pending.Poison) - protocol.MaxPoison; n > 0 {
		v.pending.Poison = v.pending.Poison[n:]
	}
}

// addPoison adds marks to what v refuses. The caller holds v's lock.
func (v *chainView) addPoison(marks []protocol.PoisonMark, now time.Time) {
	if v.poison == nil {
		v.poison = map[uint64]int64{}
	}
	protocol.AddPoison(v.poison, marks, now)
}

// refusePoison answers req with jsonrpc.ErrPoison, without an attempt, when its calls were found poison within
// poisonMemory; it reports whether it did.
func (pl *Plane) refusePoison(w http.ResponseWriter, v *chainView, req *jsonrpc.Request, start time.Time) bool {
	if !mayPoison(req) {
		return false
	}
	fp := fingerprint(req)
	v.mu.Lock()
	ok := v.poison[fp] > start.UnixMilli()
	if ok {
		v.met.Poison++
		v.met.Request(methodLabel(req), metrics.OutcomePoison, pl.p.Now().Sub(start))
	}
	v.mu.Unlock()
	if ok {
		jsonrpc.ErrPoison.With("refused again for "+poisonMemory.String()+" without an attempt").Write(w, req)
	}
	return ok
}
