package durable

import (
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
)

// Failure classes of health checks, which read the answer (shown in admin; never sent as a request's class).
const (
	ClassRPCError  = retry.HealthRPCError
	ClassBadResult = retry.HealthBadResult
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
	if len(ans.Methods) == 0 {
		return nil
	}
	// The Worker isolates' counts of this upstream's methods, collected by the chain: stored at once.
	o := us.objs.get(objectID, "")
	o.mu.Lock()
	for m, c := range ans.Methods {
		o.stats.Add(m, c)
	}
	sb, _ := json.Marshal(o.stats)
	o.mu.Unlock()
	if st := us.env.P.StorageFor(objectID); st != nil {
		return st.Put(ctx, map[string]string{keyStats: string(sb)})
	}
	return nil
}

// runCheck runs one health check of the Upstream object objectID: eth_chainId until it is known, then
// eth_blockNumber and eth_syncing; it stores the result and the stats and sets the next alarm. It returns the
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
	return Report{Name: u.Name, At: h.LastCheck, Height: h.Height, ChainID: chainID, Syncing: h.Syncing, Err: retry.Class(h.LastErrorClass)}, u, nil
}

// maxPollDelay bounds the back-off of a failing upstream's health checks.
const maxPollDelay = 2 * time.Minute

// check returns h updated by one health check: eth_chainId until it is known, eth_blockNumber, and eth_syncing
// (whose failure is not the upstream's: many providers do not offer it).
func (us *Upstreams) check(ctx context.Context, u config.Upstream, h health) health {
	h.LastCheck = us.env.P.Now()
	failed := func(c retry.Class) health {
		h.OK, h.LastErrorClass = false, string(c)
		h.Failures++
		return h
	}
	if h.ChainID == "" {
		id, class := us.call(ctx, u, "eth_chainId")
		if class != retry.OK {
			return failed(class)
		}
		h.ChainID = id
	}
	num, class := us.call(ctx, u, "eth_blockNumber")
	if class != retry.OK {
		return failed(class)
	}
	h.Height, _ = strconv.ParseUint(num[2:], 16, 64) // call checked the quantity
	h.Syncing = us.syncing(ctx, u)
	h.OK, h.LastOK, h.LastErrorClass, h.Failures = true, h.LastCheck, "", 0
	return h
}

// syncing asks eth_syncing: a sync-progress object (with currentBlock or highestBlock) means syncing; false, an
// error, anything else or no answer means not.
func (us *Upstreams) syncing(ctx context.Context, u config.Upstream) bool {
	res := forward.Do(ctx, us.target(u), []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_syncing","params":[]}`))
	if res.Class != retry.OK {
		return false
	}
	var a struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if json.Unmarshal(res.Body, &a) != nil || a.Result == nil {
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
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(res.Body, &a) != nil {
		return "", ClassBadResult
	}
	if len(a.Error) > 0 && string(a.Error) != "null" {
		return "", ClassRPCError
	}
	var q string
	if json.Unmarshal(a.Result, &q) != nil || !isQuantity(q) {
		return "", ClassBadResult
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
