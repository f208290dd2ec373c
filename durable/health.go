package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/healthcheck"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// Alarm runs one health check of the Upstream object objectID (runCheck) and reports it to the chain object.
// It fails (and the host retries) only when storage fails; an unreachable chain object is logged.
func (us *Upstreams) Alarm(ctx context.Context, objectID string) error {
	rep, u, err := us.runCheck(ctx, objectID, true)
	if err != nil || u.Name == "" {
		return err
	}
	body, _ := json.Marshal(rep)
	var ans ReportAnswer
	o := us.objs.get(objectID, "")
	if err := us.client.Chain(ctx, u.Chain, "POST", protocol.PathReport, body, &ans); err != nil {
		us.env.P.Logf("upstream %s: report to chain: %v", u.ID(), err)
		if len(rep.StateProbes) > 0 {
			o.mu.Lock()
			o.health.StateProbeAt = time.Time{} // what it proved did not reach the chain: probe at the next check
			o.mu.Unlock()
		}
		return nil
	}
	o.mu.Lock()
	o.ask = ans.Ask
	o.mu.Unlock()
	if ans.Seq == 0 {
		return nil
	}
	// The Worker isolates' counts of this upstream's methods, collected by the chain: stored at once, with the
	// handover's number, which the next report acknowledges. A handover already stored is not added again.
	o.mu.Lock()
	if ans.Seq <= o.seq {
		o.mu.Unlock()
		return nil
	}
	next := make(stats.Stats, len(o.stats))
	for m, c := range o.stats {
		next.Add(m, *c)
	}
	for m, c := range ans.Methods {
		next.Add(m, c)
	}
	sb, _ := json.Marshal(next)
	o.mu.Unlock()
	st := us.env.P.StorageFor(objectID)
	if st == nil {
		return nil
	}
	if err := st.Put(ctx, map[string]string{keyStats: string(sb), keySeq: strconv.FormatUint(ans.Seq, 10)}); err != nil {
		return err // not acknowledged: the chain hands the counts again
	}
	o.mu.Lock()
	o.stats, o.seq = next, ans.Seq
	o.mu.Unlock()
	return nil
}

// runCheck runs one health check of the Upstream object objectID (see check); it stores the result and the stats and sets the next alarm. It returns the
// report for the chain and the upstream's configuration (zero when the object is no longer configured: it then
// clears itself and sets no alarm).
//
// probe allows a state probe beside the check (check): not in the first checks a client's request waits for
// (firstChecks), which a slow read of old state would hold up.
func (us *Upstreams) runCheck(ctx context.Context, objectID string, probe bool) (Report, config.Upstream, error) {
	st := us.env.P.StorageFor(objectID)
	if st == nil {
		return Report{}, config.Upstream{}, fmt.Errorf("upstream check: no storage for object %s", objectID)
	}
	o := us.objs.get(objectID, "")
	if err := o.load(ctx, st, ""); err != nil {
		return Report{}, config.Upstream{}, err
	}
	u, ok := o.config(us.env.Config)
	if !ok {
		o.mu.Lock()
		ident := o.ident
		o.mu.Unlock()
		if ident != "" {
			us.env.P.Logf("upstream %s: no longer configured, clearing", ident)
		}
		return Report{}, config.Upstream{}, us.clearObject(ctx, objectID, st)
	}
	o.mu.Lock()
	h, ask := o.health, o.ask
	o.mu.Unlock()
	h, probes := us.check(ctx, u, h, ask, probe)
	o.mu.Lock()
	changed := o.health.LastCheck.IsZero() || o.health.OK != h.OK
	if prev := o.health.ChainID; prev != "" && h.ChainID != prev {
		us.env.P.Logf("upstream %s (%s): eth_chainId changed from %s to %s", u.ID(), u.Endpoint(), prev, h.ChainID)
	}
	if h.Unserved != 0 && o.health.Unserved != h.Unserved {
		us.env.P.Logf("upstream %s (%s): claimed head %d but cannot serve that block", u.ID(), u.Endpoint(), h.Unserved)
	}
	o.health = h
	hb, _ := json.Marshal(h)
	sb, _ := json.Marshal(o.stats)
	o.mu.Unlock()
	if changed {
		us.env.P.Logf("upstream %s (%s): health check: ok=%t class=%s", u.ID(), u.Endpoint(), h.OK, h.LastErrorClass)
	}
	if err := st.Put(ctx, map[string]string{keyHealth: string(hb), keyStats: string(sb)}); err != nil {
		return Report{}, u, err
	}
	// A failing upstream is polled less often, doubling up to maxPollDelay; recovery is seen by the next check.
	// The first failure keeps the interval: a blip is noticed at once, and so is the recovery from it.
	delay := balance.PollDelay(us.env.Settings.HealthInterval, max(h.Failures-1, 0), max(maxPollDelay, us.env.Settings.HealthInterval))
	if err := st.SetAlarm(ctx, us.env.P.Now().Add(delay)); err != nil {
		return Report{}, u, err
	}
	chainID, _ := blockref.ParseQuantity(h.ChainID)
	o.mu.Lock()
	ack := o.seq
	o.mu.Unlock()
	return Report{Ack: ack, Name: u.Name, At: h.LastCheck, Height: h.Height, ChainID: chainID, Syncing: h.Syncing, Unserved: h.Unserved, Proven: h.Proven, Lacks: h.Lacks, Finalized: h.Finalized, Replaced: h.Replaced, Err: retry.Class(h.LastErrorClass), Status: h.LastStatus, StateProbes: probes}, u, nil
}

// maxPollDelay bounds the back-off of a failing upstream's health checks (never below EVMLB_HEALTH_INTERVAL).
// Fixed, not a setting: it says how soon a dead upstream's recovery is seen at worst, which EVMLB_HEALTH_INTERVAL
// already tunes; README.md states it.
const maxPollDelay = 2 * time.Minute

// batchRetry is how long an upstream that refused a batch health check is checked call by call before a batch is
// tried again. Fixed, not a setting: a node's batch support changes with its software, rarely; README.md states
// it.
const batchRetry = time.Hour

// check returns h updated by one health check. Every check asks eth_chainId (so that an upstream that switches
// networks is out at its next check), eth_blockNumber, eth_syncing (whose failure is not the upstream's: many
// providers do not offer it) and, once a head is known, eth_getBlockTransactionCountByNumber at the head the
// previous check found: a node that still claims that height but cannot serve the block is reported (Unserved)
// and its height is not believed; one that serves it has proven that head (Proven: shown by admin, it proves nothing
// of a lead, issue 17). A first check (no head known
// yet) asks for the block of the head it just got, in a second request. The calls go in one batch; a node that does not answer batches (an answer that
// is not an array of them, or HTTP 4xx) is asked call by call, and for batchRetry no batch is tried. When the
// chain asked for a block above the head the upstream answered (ask: the chain's head floor), that block is asked
// for too, in a request of its own: null is the upstream's part of the proof that the floor is gone (Lacks). Each
// check also asks the "finalized" tag (number and hash) and, when the last check found one with a hash, the block
// at that number again: another hash or null is reported (Replaced), and the chain moves its cache epoch.
//
// A state probe (issue 20, stateProbe) goes beside the check, in a request of its own, when one is due.
func (us *Upstreams) check(ctx context.Context, u config.Upstream, h health, ask uint64, probe bool) (health, []StateProbe) {
	now := us.env.P.Now()
	var probes []StateProbe
	var found chan []StateProbe
	if probe && us.stateProbeDue(u, h, now) {
		found = make(chan []StateProbe, 1)
		height := h.Height
		go func() { found <- us.stateProbe(ctx, u, height) }()
	}
	h = us.checkHealth(ctx, u, h, ask)
	if found != nil {
		probes = <-found // always waited for: no call of the check outlives it
		if h.OK {
			h.StateProbeAt = now
		} else {
			probes = nil
		}
	}
	return h, probes
}

// stateProbeDue says whether a check of u at now sends a state probe: every capability_ttl, once the last
// successful check found a chain long enough for StateProbeBlock to be old (a first check does not: its height is
// not known yet, nor, most often, the chain's best height; and devnets' short chains are never probed); never for
// an upstream configured as an archive node, whose state is known.
func (us *Upstreams) stateProbeDue(u config.Upstream, h health, now time.Time) bool {
	ttl := balance.SettingsOf(us.env.Config.ChainSettings(u.Chain)).CapabilityTTL
	return !u.Archive && !h.LastOK.IsZero() && h.Height > healthcheck.StateProbeBlock+stateProbeDepth &&
		(h.StateProbeAt.IsZero() || now.Sub(h.StateProbeAt) >= ttl)
}

// stateProbeDepth is how far below the upstream's height the second probe reads: twice the depth below which state
// is old (balance.OldStateDepth), so that the block is old for the chain even when the upstream leads it a little.
const stateProbeDepth = 2 * balance.OldStateDepth

// stateProbe reads the state at StateProbeBlock: a result proves the upstream has the state at every old block (an
// archive node); a lack proves little by itself (only for the blocks at and below it), so the state at
// stateProbeDepth below height is read too: a full node that lacks it lacks every older block's. Each read is a
// request of its own. It returns what they proved.
func (us *Upstreams) stateProbe(ctx context.Context, u config.Upstream, height uint64) []StateProbe {
	var out []StateProbe
	for _, n := range []uint64{healthcheck.StateProbeBlock, height - stateProbeDepth} {
		res := forward.Do(ctx, us.target(u), healthcheck.StateProbeCall(n))
		if res.Class != retry.OK {
			return out
		}
		class, lack, proves := healthcheck.ReadStateProbe(res.Body)
		if !proves {
			return out
		}
		out = append(out, StateProbe{Block: n, Class: class, Lack: lack, At: us.env.P.Now()})
		if lack == retry.NoLack {
			return out // it has the state at n, and so at every higher block
		}
	}
	return out
}

// checkHealth is check without the state probe.
func (us *Upstreams) checkHealth(ctx context.Context, u config.Upstream, h health, ask uint64) health {
	h.LastCheck = us.env.P.Now()
	var prev uint64 // the head claimed at the last successful check; 0: none to verify
	if !h.LastOK.IsZero() {
		prev = h.Height
	}
	// The finalized block the last check found, asked again in this check: another hash, or none, is a block the
	// upstream had called final that the chain replaced (issue 19: a reorg past finality).
	known := healthcheck.Final{Number: h.Finalized, Hash: h.FinalizedHash}
	h.Replaced = 0
	var r healthcheck.Result
	batched := false
	if h.BatchOff.IsZero() || h.LastCheck.Sub(h.BatchOff) >= batchRetry {
		r, batched = us.checkBatch(ctx, u, prev, known)
		if batched {
			h.BatchOff = time.Time{}
		} else {
			h.BatchOff = h.LastCheck
		}
	}
	if !batched {
		r = us.checkCalls(ctx, u, prev, known)
	}
	if r.Class != retry.OK {
		h.OK, h.LastErrorClass, h.LastStatus = false, string(r.Class), r.Status
		h.Failures++
		return h
	}
	h.ChainID, h.Height, h.Syncing, h.Finalized, h.FinalizedHash, h.Replaced = r.ChainID, r.Height, r.Syncing, r.Finalized, r.FinalizedHash, r.Replaced
	h.Unserved, h.Proven, h.Lacks = 0, 0, 0
	if ask > r.Height && us.probe(ctx, u, ask) == healthcheck.BlockMissing {
		h.Lacks = ask
	}
	if prev == 0 && r.Height > 0 {
		// No previous head to verify (a first check): the head just claimed is asked for, once, so that a lie is
		// caught before its height ever counts (two liars agreeing would otherwise confirm each other).
		prev = r.Height
		r.Probe = us.probe(ctx, u, prev)
	}
	switch {
	case r.Probe == healthcheck.BlockMissing && r.Height >= prev:
		h.Unserved = prev
	case r.Probe == healthcheck.BlockThere:
		h.Proven = prev
	}
	h.OK, h.LastOK, h.LastErrorClass, h.LastStatus, h.Failures = true, h.LastCheck, "", 0, 0
	return h
}

// checkBatch runs the check's calls in one batch. ok is false when the upstream does not seem to take batches
// (an HTTP 4xx other than 429, or an answer that is not the batch's: healthcheck.ReadBatch): the caller then asks
// call by call.
func (us *Upstreams) checkBatch(ctx context.Context, u config.Upstream, prev uint64, known healthcheck.Final) (healthcheck.Result, bool) {
	res := forward.Do(ctx, us.target(u), healthcheck.Batch(prev, known))
	switch {
	case res.Class == retry.HTTPOther:
		return healthcheck.Result{}, false
	case res.Class != retry.OK:
		return healthcheck.Result{Class: res.Class, Status: failedStatus(res)}, true
	}
	return healthcheck.ReadBatch(res.Body, prev, known)
}

// checkCalls runs the check's calls one by one, for upstreams that do not take batches.
func (us *Upstreams) checkCalls(ctx context.Context, u config.Upstream, prev uint64, known healthcheck.Final) healthcheck.Result {
	var r healthcheck.Result
	if r.ChainID, _, r.Class, r.Status = us.call(ctx, u, "eth_chainId"); r.Class != retry.OK {
		return r
	}
	if _, r.Height, r.Class, r.Status = us.call(ctx, u, "eth_blockNumber"); r.Class != retry.OK {
		return r
	}
	res := forward.Do(ctx, us.target(u), healthcheck.Call("eth_syncing"))
	r.Syncing = res.Class == retry.OK && healthcheck.Syncing(res.Body)
	if res := forward.Do(ctx, us.target(u), healthcheck.FinalizedCall()); res.Class == retry.OK {
		f := healthcheck.ReadFinalBlock(res.Body) // a failure only means none: never the check's
		r.Finalized, r.FinalizedHash = f.Number, f.Hash
	}
	if known.Known() {
		if res := forward.Do(ctx, us.target(u), healthcheck.RecheckCall(known)); res.Class == retry.OK && healthcheck.ReadRecheck(res.Body, known) {
			r.Replaced = known.Number
		}
	}
	if prev != 0 {
		r.Probe = us.probe(ctx, u, prev)
	}
	return r
}

// probe asks the upstream for block n (eth_getBlockTransactionCountByNumber: a small answer).
func (us *Upstreams) probe(ctx context.Context, u config.Upstream, n uint64) healthcheck.Block {
	res := forward.Do(ctx, us.target(u), healthcheck.BlockCall(n))
	if res.Class != retry.OK {
		return healthcheck.BlockUnknown
	}
	return healthcheck.ReadBlock(res.Body)
}

// call makes a parameterless call whose result is a hex quantity, and returns that quantity and its value; on a
// failure with an HTTP answer that is not 2xx, its status.
func (us *Upstreams) call(ctx context.Context, u config.Upstream, method string) (string, uint64, retry.Class, int) {
	res := forward.Do(ctx, us.target(u), healthcheck.Call(method))
	if res.Class != retry.OK {
		return "", 0, res.Class, failedStatus(res)
	}
	q, n, err := healthcheck.ReadQuantity(res.Body)
	if err != nil {
		return "", 0, healthcheck.ClassOf(err), 0
	}
	return q, n, retry.OK, 0
}

// failedStatus is the HTTP status of a failed attempt when the status is the failure (not 2xx); else 0.
func failedStatus(res forward.Result) int {
	if res.Status/100 == 2 {
		return 0
	}
	return res.Status
}
