package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/chainid"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/retry"
)

// Storage keys of a Chain object.
const (
	keyUpstreams = "upstreams" // JSON array of the upstream names stored by the last sync
	keyRowPrefix = "up:"       // + name: the balance.Upstream row of that upstream
	keyFloor     = "floor"     // the balance.Floor: the highest eth_blockNumber served (issue 8)
)

// ClassObject is the failure class of an Upstream object that could not be reached or answered other than
// with the provider's answer or a failure class.
const ClassObject retry.Class = "object_error"

// Chains serves every ChainDurableObject instance of the runtime.
type Chains struct {
	env    Env
	client Client
	objs   *registry[chain]
}

// NewChains makes the Chain objects' handler.
func NewChains(env Env) *Chains {
	return &Chains{env: env, client: Client{env.P}, objs: newRegistry(func(string) *chain { return &chain{} })}
}

var _ http.Handler = (*Chains)(nil)

// chain is one instance's memory: the routing table, loaded from storage on first use, and recent latencies.
type chain struct {
	mu      sync.Mutex
	table   *balance.Table // nil until loaded
	ensured bool           // the upstream objects were asked to /ensure by this instance
	checked chan struct{}  // the first checks of a blind table: closed when done (nil: none were run)
	lat     latencies
}

// Policy is how a chain's requests are tried, beyond the table's thresholds. Defaults are in policyOf.
type Policy struct {
	MaxAttempts     int
	RequestTimeout  time.Duration
	HedgePercentile float64 // 0: no hedging
	HedgeMinDelay   time.Duration
}

// policyOf fills the defaults of a chain's configured settings.
func policyOf(c config.Chain) Policy {
	p := Policy{MaxAttempts: c.MaxAttempts, RequestTimeout: c.RequestTimeout, HedgePercentile: c.HedgePercentile, HedgeMinDelay: c.HedgeMinDelay}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = 30 * time.Second
	}
	if p.HedgeMinDelay <= 0 {
		p.HedgeMinDelay = 50 * time.Millisecond
	}
	return p
}

// tableSettings maps a chain's configured settings to the routing table's.
func tableSettings(c config.Chain) balance.Settings {
	return balance.Settings{
		MaxLagBlocks: c.MaxLagBlocks, StaleAfter: c.StaleAfter, ConfirmAfter: c.ConfirmAfter, BreakerFailures: c.BreakerFailures,
		BreakerOpenFor: c.BreakerOpenFor, CooldownAfter429: c.CooldownAfter429, ProbeShare: c.ProbeShare,
		ExpectedChainID: c.ChainID,
	}
}

// ChainStatus is the /status answer.
type ChainStatus struct {
	Chain string `json:"chain"`
	// BestHeight is the highest height that counts (balance.Table.Best): trusted and confirmed.
	BestHeight uint64 `json:"best_height"`
	// Head is the best height that counts, or the highest eth_blockNumber served if higher: eth_blockNumber
	// never answers less (until the floor yields; see balance.Table.Head).
	Head uint64 `json:"head"`
	// ChainID is the chain's verified chain id (configured, or most upstreams'); 0 while unknown.
	ChainID   uint64        `json:"chain_id,omitempty"`
	Upstreams []UpstreamRow `json:"upstreams"`
}

// UpstreamRow is one upstream in the chain's table, with its state now.
type UpstreamRow struct {
	balance.Upstream
	State balance.State `json:"state"`
	// Reason says why the upstream is out of rotation ("" when it is in).
	Reason string `json:"reason,omitempty"`
}

// SyncResult is the /sync answer.
type SyncResult struct {
	Chain     string   `json:"chain"`
	Upstreams []string `json:"upstreams"`
	Removed   []string `json:"removed"`
}

func (cs *Chains) names(chain string) []string {
	var names []string
	for _, u := range cs.env.Config.ChainUpstreams(chain) {
		names = append(names, u.Name)
	}
	return names
}

// load builds the table from the configuration and the rows in storage, once per instance.
func (cs *Chains) load(ctx context.Context, o *chain, st platform.Storage, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.table != nil {
		return nil
	}
	kv, err := st.List(ctx, keyRowPrefix)
	if err != nil {
		return err
	}
	t := balance.New(tableSettings(cs.env.Config.ChainSettings(name)), cs.names(name), nil)
	for _, v := range kv {
		var u balance.Upstream
		if json.Unmarshal([]byte(v), &u) == nil {
			t.Restore(u) // a row of an upstream no longer configured is ignored
		}
	}
	// issue 8: the served floor, dropped by the table when it was served for another chain id or upstream set.
	if v, ok, err := st.Get(ctx, keyFloor); err != nil {
		return err
	} else if ok {
		var f balance.Floor
		if json.Unmarshal([]byte(v), &f) == nil {
			t.RestoreFloor(f)
		}
	}
	o.table = t
	return nil
}

// ServeHTTP serves the object named by the contract's object header; the chain's name comes in HeaderName.
func (cs *Chains) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, name := r.Header.Get(contract.HeaderObject), r.Header.Get(HeaderName)
	if !cs.env.Config.HasChain(name) {
		jsonrpc.ErrUnknownChain.Write(w, nil)
		return
	}
	st := cs.env.P.StorageFor(id)
	if st == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	o := cs.objs.get(id, r.Header.Get(contract.HeaderInstance))
	if err := cs.load(r.Context(), o, st, name); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	switch r.URL.Path {
	case PathRPC:
		cs.rpc(w, r, o, st, name)
	case PathReport:
		cs.report(w, r, o, st, name)
	case PathStatus:
		writeJSON(w, cs.status(o, name))
	case PathSync:
		cs.sync(w, r, o, st, name)
	case PathClear:
		cs.objs.forget(id)
		if err := st.DeleteAll(r.Context()); err != nil {
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
		writeJSON(w, struct{}{})
	default:
		jsonrpc.ErrNotFound.Write(w, nil)
	}
}

func (cs *Chains) status(o *chain, name string) ChainStatus {
	now := cs.env.P.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	s := ChainStatus{Chain: name, BestHeight: o.table.Best(), Head: o.table.Head(), ChainID: o.table.ChainID(), Upstreams: []UpstreamRow{}}
	for _, n := range o.table.Names() {
		u, _ := o.table.Get(n)
		s.Upstreams = append(s.Upstreams, UpstreamRow{Upstream: u, State: o.table.State(n, now), Reason: o.table.Reason(n, now)})
	}
	return s
}

// outcome is how one attempt at one upstream ended.
type outcome struct {
	up      string
	class   retry.Class
	status  int
	body    []byte // the provider's answer when retry.Lookup(class).Answer, else nil
	latency time.Duration
}

// rpc answers a client's request from the best upstream: candidates in the table's order, the next one tried
// when an attempt fails with a class that allows it, at most MaxAttempts and within RequestTimeout; reads may be
// hedged. A request holding a write goes to the next upstream only when retry's table says the write never left.
func (cs *Chains) rpc(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		jsonrpc.ErrInternal.With("reading the request").Write(w, nil)
		return
	}
	req, perr := jsonrpc.Parse(body, len(body)+1) // the worker validated the body and its size
	if perr != nil {
		perr.Write(w, req)
		return
	}
	pol := policyOf(cs.env.Config.ChainSettings(name))
	ctx, cancel := context.WithTimeout(r.Context(), pol.RequestTimeout)
	defer cancel()
	now := cs.env.P.Now()
	ref, write := requestNeeds(req)
	o.mu.Lock()
	ensure := !o.ensured
	o.ensured = true
	checking := o.checked // closed once the first checks are done; nil when none were needed
	if ensure && o.table.Blind() {
		o.checked = make(chan struct{})
		checking = nil
	}
	first := o.checked
	o.mu.Unlock()
	switch {
	case ensure && first != nil:
		cs.firstChecks(ctx, o, st, name)
		close(first)
	case ensure:
		cs.fanOut(ctx, name, cs.names(name), PathEnsure)
	case checking != nil:
		// Requests that come while the first checks run wait for them too, rather than route blind.
		select {
		case <-checking:
		case <-ctx.Done():
		}
	}
	o.mu.Lock()
	// issue 8: eth_chainId and net_version are answered from the verified chain id (internal/chainid).
	if local, ok := chainid.Answer(req, o.table.ChainID()); ok {
		o.mu.Unlock()
		jsonrpc.WriteJSON(w, http.StatusOK, local)
		return
	}
	cands := append(o.table.Candidates(ref, now), o.table.Fallback(ref, now)...)
	var hedge time.Duration
	if pol.HedgePercentile > 0 && !write {
		hedge = max(pol.HedgeMinDelay, o.lat.percentile(pol.HedgePercentile))
	}
	o.mu.Unlock()
	if len(cands) > pol.MaxAttempts {
		cands = cands[:pol.MaxAttempts]
	}
	res, failed := cs.try(ctx, o, name, req, body, cands, hedge)
	if req.Batch && res.body != nil && res.class != retry.OK { // the upstream's class says an element needs it
		res.body = cs.repairBatch(ctx, o, name, req, res.body, remaining(cands, res.up, failed))
	}
	cs.saveRows(r.Context(), o, st, name, failed)
	switch {
	case res.body != nil:
		if !req.Batch && len(req.Calls) == 1 && req.Calls[0].Method == "eth_blockNumber" {
			res.body = cs.monotonicHead(o, res.up, req.Calls[0].ID, res.body)
		}
		jsonrpc.WriteJSON(w, res.status, res.body)
	case res.class != retry.OK && !retryableFor(req, res.class):
		// A write that may have reached the upstream: the client must know it was not retried.
		jsonrpc.ErrUpstreamFailed.With(string(res.class)+"; a write is not sent twice").Write(w, req)
	default:
		jsonrpc.ErrNoUpstream.Write(w, req)
	}
}

// requestNeeds is the highest block the request's calls name (blockref), and whether any call is a write.
func requestNeeds(req *jsonrpc.Request) (blockref.Ref, bool) {
	var ref blockref.Ref
	write := false
	for _, c := range req.Calls {
		write = write || retry.IsWrite(c.Method)
		r := blockref.Of(c.Method, c.Params)
		if r.Kind == blockref.Number && (ref.Kind != blockref.Number || r.Number > ref.Number) {
			ref = r
		} else if ref.Kind == blockref.None {
			ref = r
		}
	}
	return ref, write
}

// retryableFor reports whether every call of req may go to the next upstream after class.
func retryableFor(req *jsonrpc.Request, class retry.Class) bool {
	for _, c := range req.Calls {
		if !retry.Retryable(c.Method, class) {
			return false
		}
	}
	return true
}

// try runs the attempts of one request over cands and returns the outcome to answer with: the first OK one (or,
// for a batch, the first batch answer, whose failed elements repairBatch then asks of the next upstreams), else
// the last answer an upstream gave (a JSON-RPC error such as "header not found"), else the last failure. failed
// lists the upstreams whose attempt failed. With hedge > 0, when the first attempt has not ended after hedge, the
// next candidate is tried alongside it and the first good answer wins; the other attempt is canceled.
func (cs *Chains) try(ctx context.Context, o *chain, name string, req *jsonrpc.Request, body []byte, cands []string, hedge time.Duration) (outcome, []string) {
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll() // cancels attempts still running when an answer has won
	results := make(chan outcome, len(cands))
	next, inflight := 0, 0
	launch := func() bool {
		if next >= len(cands) || ctx.Err() != nil {
			return false
		}
		up := cands[next]
		next++
		inflight++
		go func() { results <- cs.attempt(ctx, name, up, body) }()
		return true
	}
	var timer <-chan time.Time
	if launch() && hedge > 0 && len(cands) > 1 {
		timer = time.After(hedge)
	}
	var answer, last outcome
	last.class = ClassObject
	var failed []string
	for inflight > 0 {
		select {
		case <-timer:
			timer = nil
			launch()
			continue
		case res := <-results:
			inflight--
			if res.class == forward.Canceled {
				continue // an attempt this request canceled: no one is to blame
			}
			if res.class == retry.OK && !req.Batch && cs.behind(o, req.Calls[0], res) {
				res.class = retry.MissingData // issue 8: a block below the served head goes to the next upstream
			}
			cs.observe(o, res)
			if res.class == retry.OK || (req.Batch && isArray(res.body)) {
				// A batch answer whose elements failed is kept: repairBatch asks the next upstreams for those
				// elements only, and the others stay this upstream's bytes.
				return res, failed
			}
			failed = append(failed, res.up)
			cs.env.P.Logf("chain %s: upstream %s failed (%s)", name, res.up, res.class)
			last = res
			if res.body != nil {
				answer = res
			}
			if !retryableFor(req, res.class) {
				if answer.body != nil {
					return answer, failed
				}
				return res, failed
			}
			if inflight == 0 {
				launch()
			}
		}
	}
	if answer.body != nil {
		return answer, failed
	}
	if ctx.Err() != nil && last.class == ClassObject {
		last.class = retry.Timeout
	}
	return last, failed
}

// behind reports whether res, the answer to the single call c, shows its upstream below the head the chain has
// served (blockref.Behind), and records it in the table (issue 8).
func (cs *Chains) behind(o *chain, c jsonrpc.Call, res outcome) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen, behind := blockref.Behind(c.Method, c.Params, o.table.Served(), res.body)
	if behind {
		o.table.Behind(res.up, seen, cs.env.P.Now())
	}
	return behind
}

// attempt sends body to the upstream object of up and reads its answer whole.
func (cs *Chains) attempt(ctx context.Context, name, up string, body []byte) outcome {
	start := cs.env.P.Now()
	res := outcome{up: up, class: ClassObject}
	defer func() { res.latency = cs.env.P.Now().Sub(start) }()
	resp, err := cs.client.UpstreamRPC(ctx, name+"/"+up, body)
	if err != nil {
		if ctx.Err() != nil {
			res.class = forward.Canceled
		}
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			res.class = forward.Canceled
		}
		return res
	}
	class := retry.Class(resp.Header.Get(HeaderFailure))
	if class == retry.OK && resp.StatusCode/100 != 2 {
		class = ClassObject
	}
	res.class, res.status = class, resp.StatusCode
	if retry.Lookup(class).Answer && class != ClassObject {
		res.body = b
	}
	return res
}

// observe feeds an attempt's outcome to the table and, when it succeeded, its latency to the hedging window.
func (cs *Chains) observe(o *chain, res outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.table.Observe(res.up, res.class, res.latency, cs.env.P.Now())
	if res.class == retry.OK {
		o.lat.add(res.latency)
	}
}

// remaining is cands without the upstream that answered and those that failed, in order.
func remaining(cands []string, answered string, failed []string) []string {
	var out []string
	for _, c := range cands {
		if c != answered && !slices.Contains(failed, c) {
			out = append(out, c)
		}
	}
	return out
}

// repairBatch retries, on the next upstreams, the elements of a batch answer whose class sends them elsewhere
// ("header not found", rate limited, …), and puts the better answers in their place. Writes are never retried.
// The other elements stay the upstream's bytes.
func (cs *Chains) repairBatch(ctx context.Context, o *chain, name string, req *jsonrpc.Request, answer []byte, next []string) []byte {
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
		res := cs.attempt(ctx, name, up, encodeBatch(redo))
		if res.class != forward.Canceled {
			cs.observe(o, res)
		}
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

// idKey is a JSON id in a comparable form (1 and 1.0 differ, as they do on the wire).
func idKey(id json.RawMessage) string { return strings.TrimSpace(string(id)) }

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

// encodeBatch writes calls as a JSON-RPC batch; id and params stay the client's bytes.
func encodeBatch(calls []jsonrpc.Call) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, c := range calls {
		if i > 0 {
			b.WriteByte(',')
		}
		method, _ := json.Marshal(c.Method)
		b.WriteString(`{"jsonrpc":"2.0","id":`)
		b.Write(c.ID)
		b.WriteString(`,"method":`)
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

// monotonicHead answers eth_blockNumber with the table's head (balance.Table.ServeHead): never less than served
// before, never a height that does not count (an upstream's lie); the upstream's bytes when they say the same.
func (cs *Chains) monotonicHead(o *chain, up string, id json.RawMessage, answer []byte) []byte {
	var a struct {
		Result string `json:"result"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return answer
	}
	n, ok := blockref.ParseQuantity(a.Result)
	if !ok {
		return answer
	}
	o.mu.Lock()
	head := o.table.ServeHead(up, n, cs.env.P.Now())
	o.mu.Unlock()
	if head == n {
		return answer
	}
	return []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":"0x` + strconv.FormatUint(head, 16) + `"}`)
}

// saveRows stores the rows of the named upstreams (those whose state a request changed).
func (cs *Chains) saveRows(ctx context.Context, o *chain, st platform.Storage, chain string, names []string) {
	if len(names) == 0 {
		return
	}
	kv := map[string]string{}
	o.mu.Lock()
	for _, n := range names {
		if u, ok := o.table.Get(n); ok {
			b, _ := json.Marshal(u)
			kv[keyRowPrefix+n] = string(b)
		}
	}
	fb, _ := json.Marshal(o.table.Floor()) // issue 8: the floor goes with every row save, and its notes to the log
	kv[keyFloor] = string(fb)
	notes := o.table.Notes()
	o.mu.Unlock()
	for _, n := range notes {
		cs.env.P.Logf("chain %s: %s", chain, n)
	}
	if err := st.Put(ctx, kv); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", chain, err)
	}
}

// Report is an upstream's health report to its chain.
type Report struct {
	Name    string      `json:"name"`
	At      time.Time   `json:"at"`
	Height  uint64      `json:"height"`
	ChainID uint64      `json:"chain_id,omitempty"`
	Syncing bool        `json:"syncing,omitempty"`
	Err     retry.Class `json:"error_class,omitempty"`
	// Unserved: the head claimed at the previous check that the upstream could not serve; Proven: the head it
	// served (issue 8).
	Unserved uint64 `json:"unserved,omitempty"`
	Proven   uint64 `json:"proven,omitempty"`
}

// row is the report as the table takes it.
func (r Report) row() balance.Report {
	return balance.Report{At: r.At, Height: r.Height, ChainID: r.ChainID, Syncing: r.Syncing, Unserved: r.Unserved, Proven: r.Proven, Err: r.Err}
}

func (cs *Chains) report(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var rep Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		jsonrpc.ErrInvalidRequest.With("report").Write(w, nil)
		return
	}
	o.mu.Lock()
	_, known := o.table.Get(rep.Name)
	if known {
		o.table.Report(rep.Name, rep.row())
	}
	o.mu.Unlock()
	if known {
		cs.saveRows(r.Context(), o, st, name, []string{rep.Name})
	}
	writeJSON(w, struct{}{})
}

// sync stores the configured list, drops the rows and objects of upstreams no longer configured, and starts
// the health checks of the configured ones now.
func (cs *Chains) sync(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	ctx := r.Context()
	names := cs.names(name)
	var old []string
	if v, ok, err := st.Get(ctx, keyUpstreams); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &old)
	}
	var removed []string
	for _, n := range old {
		if !slices.Contains(names, n) {
			removed = append(removed, n)
		}
	}
	list, _ := json.Marshal(names)
	err := st.Put(ctx, map[string]string{keyUpstreams: string(list)})
	if err == nil && len(removed) > 0 {
		keys := make([]string, len(removed))
		for i, n := range removed {
			keys[i] = keyRowPrefix + n
		}
		err = st.Delete(ctx, keys...)
	}
	if err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	o.mu.Lock()
	o.ensured = true
	o.table.SetUpstreams(names)
	o.mu.Unlock()
	cs.fanOut(ctx, name, removed, PathClear)
	cs.fanOut(ctx, name, names, PathStart)
	writeJSON(w, SyncResult{Chain: name, Upstreams: names, Removed: removed})
}

// firstCheckWait bounds how long a chain's first request waits for its upstreams' first health checks; once one
// has reported, the others get firstCheckGrace more (a hung upstream then costs the first request that, not 2 s).
const (
	firstCheckWait  = 2 * time.Second
	firstCheckGrace = 250 * time.Millisecond
)

// firstChecks runs a health check of every upstream of the chain now and applies the reports, for a request
// that finds the table blind (no upstream ever reported: a new deployment, or cleared storage). Routing blind
// would send it to whichever upstream comes first in the configuration, lagging or on the wrong chain. Checks
// that take longer than firstCheckWait are not waited for; their upstreams report through their alarms later.
func (cs *Chains) firstChecks(ctx context.Context, o *chain, st platform.Storage, name string) {
	ctx, cancel := context.WithTimeout(ctx, firstCheckWait)
	defer cancel()
	names := cs.names(name)
	reps := make(chan Report, len(names))
	for _, n := range names {
		go func() {
			var rep Report
			if err := cs.client.Upstream(ctx, name+"/"+n, http.MethodPost, PathCheck, &rep); err == nil && rep.Name == n {
				reps <- rep
				return
			}
			reps <- Report{} // not in time, or failed: the alarm set by the check (or /ensure) takes over
		}()
	}
	var got []string
	var grace <-chan time.Time // after the first report, the others get firstCheckGrace
wait:
	for range names {
		var rep Report
		select {
		case rep = <-reps:
		case <-grace:
			break wait
		}
		if rep.Name == "" {
			continue
		}
		if grace == nil {
			grace = time.After(firstCheckGrace)
		}
		o.mu.Lock()
		o.table.Report(rep.Name, rep.row())
		o.mu.Unlock()
		got = append(got, rep.Name)
	}
	if len(got) < len(names) {
		cs.fanOut(context.WithoutCancel(ctx), name, names, PathEnsure) // whoever did not answer gets an alarm
	}
	cs.saveRows(context.WithoutCancel(ctx), o, st, name, got)
}

// fanOut calls path on the named upstream objects of the chain concurrently; failures are logged.
func (cs *Chains) fanOut(ctx context.Context, chain string, names []string, path string) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() {
			if err := cs.client.Upstream(ctx, chain+"/"+n, http.MethodPost, path, nil); err != nil && !errors.Is(err, context.Canceled) {
				cs.env.P.Logf("chain %s: %s of upstream %s: %v", chain, path, n, err)
			}
		})
	}
	wg.Wait()
}
