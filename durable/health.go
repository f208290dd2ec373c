package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// Alarm runs one health check of the Upstream object objectID (runCheck) and reports it to the chain object.
// It fails (and the host retries) only when storage fails; an unreachable chain object is logged.
func (us *Upstreams) Alarm(ctx context.Context, objectID string) error {
	rep, u, err := us.runCheck(ctx, objectID)
	if err != nil || u.Name == "" {
		return err
	}
	body, _ := json.Marshal(rep)
	var ans ReportAnswer
	if err := us.client.Chain(ctx, u.Chain, "POST", protocol.PathReport, body, &ans); err != nil {
		us.env.P.Logf("upstream %s: report to chain: %v", u.ID(), err)
		return nil
	}
	if ans.Seq == 0 {
		return nil
	}
	// The Worker isolates' counts of this upstream's methods, collected by the chain: stored at once, with the
	// handover's number, which the next report acknowledges. A handover already stored is not added again.
	o := us.objs.get(objectID, "")
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
func (us *Upstreams) runCheck(ctx context.Context, objectID string) (Report, config.Upstream, error) {
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
	h := o.health
	o.mu.Unlock()
	h = us.check(ctx, u, h)
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
	return Report{Ack: ack, Name: u.Name, At: h.LastCheck, Height: h.Height, ChainID: chainID, Syncing: h.Syncing, Unserved: h.Unserved, Proven: h.Proven, Err: retry.Class(h.LastErrorClass)}, u, nil
}

// maxPollDelay bounds the back-off of a failing upstream's health checks.
const maxPollDelay = 2 * time.Minute

// batchRetry is how long an upstream that refused a batch health check is checked call by call before a batch is
// tried again.
const batchRetry = time.Hour

// check returns h updated by one health check. Every check asks eth_chainId (so that an upstream that switches
// networks is out at its next check), eth_blockNumber, eth_syncing (whose failure is not the upstream's: many
// providers do not offer it) and, once a head is known, eth_getBlockTransactionCountByNumber at the head the
// previous check found: a node that still claims that height but cannot serve the block is reported (Unserved)
// and its height is not believed; one that serves it has proven that head (Proven). A first check (no head known
// yet) asks for the block of the head it just got, in a second request. The calls go in one batch; a node that does not answer batches (an answer that
// is not an array of them, or HTTP 4xx) is asked call by call, and for batchRetry no batch is tried.
func (us *Upstreams) check(ctx context.Context, u config.Upstream, h health) health {
	h.LastCheck = us.env.P.Now()
	var prev uint64 // the head claimed at the last successful check; 0: none to verify
	if !h.LastOK.IsZero() {
		prev = h.Height
	}
	var r checkResult
	batched := false
	if h.BatchOff.IsZero() || h.LastCheck.Sub(h.BatchOff) >= batchRetry {
		r, batched = us.checkBatch(ctx, u, prev)
		if batched {
			h.BatchOff = time.Time{}
		} else {
			h.BatchOff = h.LastCheck
		}
	}
	if !batched {
		r = us.checkCalls(ctx, u, prev)
	}
	if r.class != retry.OK {
		h.OK, h.LastErrorClass = false, string(r.class)
		h.Failures++
		return h
	}
	h.ChainID, h.Height, h.Syncing = r.chainID, r.height, r.syncing
	h.Unserved, h.Proven = 0, 0
	if prev == 0 && r.height > 0 {
		// No previous head to verify (a first check): the head just claimed is asked for, once, so that a lie is
		// caught before its height ever counts (two liars agreeing would otherwise confirm each other).
		prev = r.height
		r.probe = us.probe(ctx, u, prev)
	}
	switch {
	case r.probe == blockMissing && r.height >= prev:
		h.Unserved = prev
	case r.probe == blockThere:
		h.Proven = prev
	}
	h.OK, h.LastOK, h.LastErrorClass, h.Failures = true, h.LastCheck, "", 0
	return h
}

// checkResult is what one health check found.
type checkResult struct {
	class   retry.Class // retry.OK when eth_chainId and eth_blockNumber both answered quantities
	chainID string      // eth_chainId's quantity
	height  uint64
	syncing bool
	probe   blockProbe // what the upstream said of the block at the previous head
}

// blockProbe is what an upstream said when asked for a block.
type blockProbe int

const (
	blockUnknown blockProbe = iota // not asked, or an answer that proves nothing
	blockThere                     // the block's transaction count: it has it
	blockMissing                   // null, or an error saying the block is not there
)

// Ids of the calls in a batch health check.
const (
	idChainID = "1"
	idBlock   = "2"
	idSyncing = "3"
	idProbe   = "4"
)

// checkBatch runs the check's calls in one batch. ok is false when the upstream does not seem to take batches
// (an HTTP 4xx other than 429, an answer that is not an array, or one lacking an answer to eth_chainId or
// eth_blockNumber): the caller then asks call by call.
func (us *Upstreams) checkBatch(ctx context.Context, u config.Upstream, prev uint64) (checkResult, bool) {
	body := `[{"jsonrpc":"2.0","id":` + idChainID + `,"method":"eth_chainId","params":[]},` +
		`{"jsonrpc":"2.0","id":` + idBlock + `,"method":"eth_blockNumber","params":[]},` +
		`{"jsonrpc":"2.0","id":` + idSyncing + `,"method":"eth_syncing","params":[]}`
	if prev != 0 {
		body += `,{"jsonrpc":"2.0","id":` + idProbe + `,"method":"eth_getBlockTransactionCountByNumber","params":["0x` + strconv.FormatUint(prev, 16) + `"]}`
	}
	res := forward.Do(ctx, us.target(u), []byte(body+"]"))
	switch {
	case res.Class == retry.HTTPOther:
		return checkResult{}, false
	case res.Class != retry.OK:
		return checkResult{class: res.Class}, true
	}
	var elems []json.RawMessage
	if json.Unmarshal(res.Body, &elems) != nil {
		return checkResult{}, false
	}
	byID := map[string]json.RawMessage{}
	for _, e := range elems {
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(e, &m) == nil {
			byID[string(bytes.TrimSpace(m.ID))] = e
		}
	}
	if byID[idChainID] == nil || byID[idBlock] == nil {
		return checkResult{}, false
	}
	r := checkResult{}
	if r.chainID, r.class = quantity(byID[idChainID]); r.class != retry.OK {
		return r, true
	}
	var num string
	if num, r.class = quantity(byID[idBlock]); r.class != retry.OK {
		return r, true
	}
	r.height, _ = strconv.ParseUint(num[2:], 16, 64) // quantity checked it
	r.syncing = syncingResult(byID[idSyncing])
	if prev != 0 {
		r.probe = probeAnswer(byID[idProbe])
	}
	return r, true
}

// checkCalls runs the check's calls one by one, for upstreams that do not take batches.
func (us *Upstreams) checkCalls(ctx context.Context, u config.Upstream, prev uint64) checkResult {
	var r checkResult
	if r.chainID, r.class = us.call(ctx, u, "eth_chainId"); r.class != retry.OK {
		return r
	}
	var num string
	if num, r.class = us.call(ctx, u, "eth_blockNumber"); r.class != retry.OK {
		return r
	}
	r.height, _ = strconv.ParseUint(num[2:], 16, 64) // call checked the quantity
	r.syncing = us.syncing(ctx, u)
	if prev != 0 {
		r.probe = us.probe(ctx, u, prev)
	}
	return r
}

// probe asks the upstream for block n (eth_getBlockTransactionCountByNumber: a small answer).
func (us *Upstreams) probe(ctx context.Context, u config.Upstream, n uint64) blockProbe {
	res := forward.Do(ctx, us.target(u), []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockTransactionCountByNumber","params":["0x`+strconv.FormatUint(n, 16)+`"]}`))
	if res.Class != retry.OK {
		return blockUnknown
	}
	return probeAnswer(res.Body)
}

// probeAnswer reads an answer to eth_getBlockTransactionCountByNumber: a quantity says the block is there; a null
// result (geth) or an error saying so ("header not found", anvil's "BlockOutOfRangeError: block height is 0 but
// requested was 100") that it is missing. Any other answer, or none, proves nothing.
func probeAnswer(answer []byte) blockProbe {
	if answer == nil {
		return blockUnknown
	}
	if _, class := quantity(answer); class == retry.OK {
		return blockThere
	}
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	switch {
	case json.Unmarshal(answer, &a) != nil:
		return blockUnknown
	case a.Error != nil:
		m := strings.ToLower(a.Error.Message)
		if retry.RPCError(a.Error.Code, a.Error.Message) == retry.MissingData || strings.Contains(m, "out of range") || strings.Contains(m, "outofrange") {
			return blockMissing
		}
		return blockUnknown
	case len(a.Result) == 0 || string(bytes.TrimSpace(a.Result)) == "null":
		return blockMissing
	}
	return blockUnknown
}

// syncing asks eth_syncing: a sync-progress object (with currentBlock or highestBlock) means syncing; false, an
// error, anything else or no answer means not.
func (us *Upstreams) syncing(ctx context.Context, u config.Upstream) bool {
	res := forward.Do(ctx, us.target(u), []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_syncing","params":[]}`))
	return res.Class == retry.OK && syncingResult(res.Body)
}

// syncingResult reads an answer to eth_syncing: true for a sync-progress object.
func syncingResult(answer []byte) bool {
	var a struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if answer == nil || json.Unmarshal(answer, &a) != nil || a.Result == nil {
		return false
	}
	_, cur := a.Result["currentBlock"]
	_, high := a.Result["highestBlock"]
	return cur || high
}

// call makes a parameterless call whose result is a hex quantity, and returns that quantity.
func (us *Upstreams) call(ctx context.Context, u config.Upstream, method string) (string, retry.Class) {
	res := forward.Do(ctx, us.target(u), []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":[]}`))
	if res.Class != retry.OK {
		return "", res.Class
	}
	return quantity(res.Body)
}

// quantity reads a JSON-RPC answer whose result must be a hex quantity.
func quantity(answer []byte) (string, retry.Class) {
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return "", retry.HealthBadResult
	}
	if len(a.Error) > 0 && string(a.Error) != "null" {
		return "", retry.HealthRPCError
	}
	var q string
	if json.Unmarshal(a.Result, &q) != nil || !isQuantity(q) {
		return "", retry.HealthBadResult
	}
	return q, retry.OK
}

// isQuantity reports whether q is a hex quantity as JSON-RPC writes them: 0x followed by 1 to 16 hex digits.
func isQuantity(q string) bool {
	digits, ok := strings.CutPrefix(q, "0x")
	if !ok || len(digits) == 0 || len(digits) > 16 {
		return false
	}
	_, err := strconv.ParseUint(digits, 16, 64)
	return err == nil
}
