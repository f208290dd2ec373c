package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/evmlb/evmlb/internal/cache"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/methods"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/retry"
)

// CacheHeader is the header a single call's answer says the cache's part in (metrics.CacheHit, …).
const CacheHeader = "X-Evmlb-Cache"

// The header's values, canonical already (set without Header().Set's canonicalising, as jsonrpc.WriteJSON does).
var cacheHeaders = map[string][]string{
	metrics.CacheHit: {metrics.CacheHit}, metrics.CacheMiss: {metrics.CacheMiss},
	metrics.CacheShared: {metrics.CacheShared}, metrics.CacheSkip: {metrics.CacheSkip},
}

type hostKey struct{}

// WithHost is ctx carrying the client request's host (*host, not copied: no allocation beyond the context's),
// which the cache's keys are URLs on (the Cache API keeps them per zone); without one the keys use a placeholder
// host.
func WithHost(ctx context.Context, host *string) context.Context {
	return context.WithValue(ctx, hostKey{}, host)
}

func hostOf(ctx context.Context) string {
	if h, _ := ctx.Value(hostKey{}).(*string); h != nil {
		return *h
	}
	return ""
}

// reply is what a request (or a batch's part sent upstream) is answered with.
type reply struct {
	status  int
	body    []byte
	outcome string // metrics.Outcome…
	failed  bool   // an upstream failed on the way: exchange early
	// answered: body is an upstream's good answer (class OK), whose result may be stored.
	answered bool
	// abandoned: the leader's own context ended before any answer: a waiter that is still there asks itself.
	abandoned bool
	id        json.RawMessage // the id body was written with
	up        string          // the upstream whose answer body is, when one's (logs.go learns from its refusals)
	// retryAfter, when set, is the answer's Retry-After (every candidate's request budget was spent).
	retryAfter time.Duration
}

// cacheSettings are chain's cache settings, defaults filled.
func cacheSettings(c config.Chain) cache.Settings {
	c = c.WithDefaults()
	return cache.Settings{Off: c.CacheOff, FinalizedTTL: c.CacheFinalizedTTL, RealtimeTTL: c.CacheRealtimeTTL,
		HashTTL: c.CacheHashTTL, MaxAnswerBytes: c.CacheMaxAnswerBytes}
}

// cacheState is what the cache's decisions read of v now. The caller holds v.mu.
func (pl *Plane) cacheState(ctx context.Context, chain string, v *chainView) cache.State {
	set, ok := pl.cacheSet[chain]
	if !ok {
		set = cacheSettings(config.Chain{})
	}
	s := cache.State{Host: hostOf(ctx), Chain: chain, Settings: set}
	if v.table != nil {
		s.Finalized, s.FinalizedKnown = v.table.Finalized()
		s.Epoch = v.table.CacheEpoch()
		s.Head = v.table.Head()
	}
	return s
}

// lookup is the answer's result kept under d's key: the isolate's memory first, then the edge tier for the kinds
// it keeps (a hit there is kept in memory too).
func (pl *Plane) lookup(ctx context.Context, chain string, d cache.Decision) ([]byte, bool) {
	now := pl.p.Now()
	if b, ok := pl.mem.Get(d.Key, now); ok {
		return b, true
	}
	if !d.Edge() || pl.p.Cache == nil {
		return nil, false
	}
	b, ok, err := pl.p.Cache.Match(ctx, d.Key)
	if err != nil || !ok || !d.Storable(b) { // an error is a miss; an edge entry is checked as a fresh answer is
		return nil, false
	}
	pl.mem.Put(chain, d.Key, b, now, d.TTL)
	return b, true
}

// store keeps result under d's key when d says it may be: in memory, and for the edge's kinds in the edge tier
// too (in the background: the client does not wait for it).
func (pl *Plane) store(ctx context.Context, chain string, d cache.Decision, result []byte) {
	if !d.Storable(result) {
		return
	}
	result = bytes.Clone(result) // a sub-slice of the answer, which may be large: keep only the result
	pl.mem.Put(chain, d.Key, result, pl.p.Now(), d.TTL)
	if d.Edge() && pl.p.Cache != nil {
		key, ttl, c := d.Key, d.TTL, pl.p.Cache
		pl.p.Background(ctx, func(ctx context.Context) {
			if err := c.Put(ctx, key, result, ttl); err != nil {
				pl.p.Logf("chain %s: edge cache put failed: %v", chain, err)
			}
		})
	}
}

// resultOf is the raw result member of a JSON-RPC answer object, false when it has none (an error).
func resultOf(answer []byte) ([]byte, bool) {
	f, ok := jsonrpc.Fields(answer, "result")
	if !ok || f[0] == nil {
		return nil, false
	}
	return f[0], true
}

// answerWith is the answer object with id and result.
func answerWith(id json.RawMessage, result []byte) []byte {
	id = jsonrpc.IDOrNull(id)
	b := make([]byte, 0, len(`{"jsonrpc":"2.0","id":,"result":}`)+len(id)+len(result))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}

// errorWith is the answer object with id and error member e.
func errorWith(id json.RawMessage, e []byte) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + string(jsonrpc.IDOrNull(id)) + `,"error":` + string(e) + `}`)
}

// withOwnID is a shared answer object (or error) written for the call whose id is id: unchanged when the ids are
// the same bytes, else rebuilt from its result or error member. false when it has neither.
func withOwnID(body []byte, from, id json.RawMessage) ([]byte, bool) {
	if bytes.Equal(from, id) {
		return body, true
	}
	f, ok := jsonrpc.Fields(body, "result", "error")
	switch {
	case !ok:
		return nil, false
	case f[0] != nil:
		return answerWith(id, f[0]), true
	case f[1] != nil:
		return errorWith(id, f[1]), true
	}
	return nil, false
}

// flightKey is the key identical calls share a flight under: the cache key when the call is cacheable, else,
// for a read of the cache's table (cache.Coalesces), a key of the same form whose kind context is the served head
// ("pending" and unfinalized reads: identical ones in flight at once are still sent once). "" : never shared
// (writes, filters, everything else, or the chain's cache off).
func flightKey(d cache.Decision, method string, params json.RawMessage, s cache.State) string {
	if d.Cacheable() {
		return d.Key
	}
	if s.Settings.Off || !cache.Coalesces(method) || len(params) > cache.MaxParamsBytes {
		return ""
	}
	return cache.FlightKey(s, method, params)
}

// single is the cache's part in a request of one call, before it goes upstream: a hit or a shared answer is
// written and done is true; else the caller sends it upstream and calls finish with its reply.
type single struct {
	d      cache.Decision
	key    string // the flight's key ("" none)
	flight *cache.Flight[reply]
	result string // metrics.Cache… when the caller goes upstream: miss or skip
}

// cacheSingle looks the call up and joins or leads its flight. It writes a hit or shared answer and reports
// done; else it returns what finish needs.
func (pl *Plane) cacheSingle(ctx context.Context, w http.ResponseWriter, v *chainView, s cache.State, c jsonrpc.Call, start time.Time) (single, bool) {
	chain := s.Chain
	var sg single
	sg.d = cache.Decide(c.Method, c.Params, s)
	sg.result = metrics.CacheSkip
	if sg.d.Cacheable() {
		sg.result = metrics.CacheMiss
		if result, ok := pl.lookup(ctx, chain, sg.d); ok {
			pl.answer(w, v, c, http.StatusOK, answerWith(c.ID, result), metrics.OutcomeOK, metrics.CacheHit, start)
			return sg, true
		}
	}
	sg.key = flightKey(sg.d, c.Method, c.Params, s)
	for sg.key != "" {
		fl, leads := pl.flights.Join(sg.key)
		if leads {
			sg.flight = fl
			return sg, false
		}
		rep, ok := fl.Wait(ctx)
		if !ok { // this call's own time ran out while it waited: what it would have got alone
			pl.answer(w, v, c, jsonrpc.ErrNoUpstream.Status, jsonrpc.ErrNoUpstream.Body(c.ID), metrics.OutcomeNoUpstream, metrics.CacheShared, start)
			return sg, true
		}
		if rep.abandoned {
			continue // the leader went away without an answer: ask again, leading or joining the next flight
		}
		body, ok := withOwnID(rep.body, rep.id, c.ID)
		if !ok {
			break // nothing to share: go alone
		}
		if c.Method == "eth_blockNumber" {
			// The flight's leader may be a batch element, whose answer is the upstream's as it came: a single
			// eth_blockNumber never answers below the head this isolate served (monotonicHead).
			body = pl.monotonicHead(v, "", c.ID, body)
		}
		pl.answer(w, v, c, rep.status, body, rep.outcome, metrics.CacheShared, start)
		return sg, true
	}
	return sg, false
}

// finish stores the leader's answer when it may be kept and hands it to the flight's waiters.
func (pl *Plane) finish(ctx context.Context, chain string, sg single, rep reply) {
	if rep.answered && sg.d.Cacheable() && sg.d.Fits(len(rep.body), len(rep.id)) {
		if result, ok := resultOf(rep.body); ok {
			pl.store(ctx, chain, sg.d, result)
		}
	}
	if sg.flight != nil {
		rep.abandoned = !rep.answered && rep.outcome == metrics.OutcomeNoUpstream && ctx.Err() != nil
		pl.flights.Finish(sg.key, sg.flight, rep)
	}
}

// answer writes a single call's answer that did not go upstream itself (a hit, a shared answer) with its cache
// header, and counts it.
func (pl *Plane) answer(w http.ResponseWriter, v *chainView, c jsonrpc.Call, status int, body []byte, outcome, result string, start time.Time) {
	w.Header()[CacheHeader] = cacheHeaders[result]
	jsonrpc.WriteJSON(w, status, body)
	label := methods.Label(c.Method)
	v.mu.Lock()
	v.met.Request(label, outcome, pl.p.Now().Sub(start))
	v.met.CacheResult(label, result)
	v.mu.Unlock()
}

// PurgeCache empties this isolate's cached answers of chain ("" for every chain) at once; the chain object's new
// cache epoch (balance.Table.CacheEpoch) makes every other isolate's and the edge tier's unreachable.
func (pl *Plane) PurgeCache(chain string) { pl.mem.Purge(chain) }

// CacheBytes is what chain's answers take in this isolate's memory tier.
func (pl *Plane) CacheBytes(chain string) int64 { return pl.mem.HeldBy(chain) }

// batchPlan is the cache's part in a batch: each element found in the cache or in flight, and those to send.
type batchPlan struct {
	calls   []jsonrpc.Call
	answers [][]byte // per call: its answer element once known (nil: a notification, or not yet)
	dec     []cache.Decision
	keys    []string               // per call: the flight it leads or waits on ("" none)
	lead    []*cache.Flight[reply] // per call: the flight it leads
	wait    []*cache.Flight[reply] // per call: the flight it waits on
	result  []string               // per call: metrics.Cache…
	send    []int                  // the calls sent upstream, in order
}

// partial reports whether the batch sent upstream is not the client's own (elements came from the cache or from
// flights): its answer is then put together element by element.
func (p *batchPlan) partial() bool { return len(p.send) != len(p.calls) }

// cacheBatch plans a batch: elements found in the cache are answered, identical reads in flight are waited for
// (after this batch's own attempt), the others sent upstream. nil when the batch takes no part: the chain's cache
// is off, or two of its calls have one id (their answers could not be told apart).
func (pl *Plane) cacheBatch(ctx context.Context, s cache.State, req *jsonrpc.Request) *batchPlan {
	if s.Settings.Off {
		return nil
	}
	ids := make(map[string]bool, len(req.Calls))
	for _, c := range req.Calls {
		if c.Notification() {
			continue
		}
		k := idKey(c.ID)
		if ids[k] {
			return nil
		}
		ids[k] = true
	}
	n := len(req.Calls)
	p := &batchPlan{calls: req.Calls, answers: make([][]byte, n), dec: make([]cache.Decision, n), keys: make([]string, n),
		lead: make([]*cache.Flight[reply], n), wait: make([]*cache.Flight[reply], n), result: make([]string, n)}
	for i, c := range req.Calls {
		p.result[i] = metrics.CacheSkip
		if c.Notification() {
			p.send = append(p.send, i)
			continue
		}
		d := cache.Decide(c.Method, c.Params, s)
		p.dec[i] = d
		if d.Cacheable() {
			p.result[i] = metrics.CacheMiss
			if result, ok := pl.lookup(ctx, s.Chain, d); ok {
				p.answers[i], p.result[i] = answerWith(c.ID, result), metrics.CacheHit
				continue
			}
		}
		if key := flightKey(d, c.Method, c.Params, s); key != "" {
			fl, leads := pl.flights.Join(key)
			p.keys[i] = key
			if !leads {
				p.wait[i], p.result[i] = fl, metrics.CacheShared
				continue
			}
			p.lead[i] = fl
		}
		p.send = append(p.send, i)
	}
	return p
}

// sub is the batch of the calls p sends upstream, and its body.
func (p *batchPlan) sub() (*jsonrpc.Request, []byte) {
	calls := make([]jsonrpc.Call, len(p.send))
	for j, i := range p.send {
		calls[j] = p.calls[i]
	}
	return &jsonrpc.Request{Batch: true, Calls: calls}, encodeBatch(calls)
}

// distribute takes the upstream's answer to the calls sent (rep, nil when none were), stores what may be kept,
// hands each led flight its element, then waits for the flights this batch joined; alone sends one element by
// itself (one whose flight's leader went away without an answer).
func (pl *Plane) distribute(ctx context.Context, chain string, p *batchPlan, rep *reply, alone func(jsonrpc.Call) reply) {
	var elems map[string][]byte
	if rep != nil {
		if list, ok := jsonrpc.Array(rep.body); ok {
			elems = make(map[string][]byte, len(list))
			for _, e := range list {
				elems[elemID(e)] = e
			}
		}
	}
	for _, i := range p.send {
		c := p.calls[i]
		if c.Notification() {
			continue
		}
		e, ok := elems[idKey(c.ID)]
		el := reply{status: http.StatusOK, body: e, id: c.ID, outcome: metrics.OutcomeOK}
		if !ok { // no element for it (the whole batch failed): what the balancer answers a call nobody answered
			e = jsonrpc.ErrNoUpstream.Body(c.ID)
			el = reply{status: jsonrpc.ErrNoUpstream.Status, body: e, id: c.ID, outcome: metrics.OutcomeNoUpstream,
				abandoned: ctx.Err() != nil}
		} else if result, isResult := resultOf(e); isResult && retry.Element(e) == retry.OK {
			el.answered = true
			if p.dec[i].Cacheable() {
				pl.store(ctx, chain, p.dec[i], result)
			}
		} else {
			el.outcome = metrics.OutcomeUpstreamError
		}
		p.answers[i] = e
		if p.lead[i] != nil {
			pl.flights.Finish(p.keys[i], p.lead[i], el)
		}
	}
	for i, fl := range p.wait {
		if fl == nil {
			continue
		}
		c := p.calls[i]
		got, ok := fl.Wait(ctx)
		var body []byte
		if ok && !got.abandoned {
			body, ok = withOwnID(got.body, got.id, c.ID)
		}
		switch {
		case ok && body != nil:
			p.answers[i] = body
		case ctx.Err() != nil:
			p.answers[i] = jsonrpc.ErrNoUpstream.Body(c.ID)
		default: // its leader went away without an answer: this element asks alone
			p.answers[i] = alone(c).body
		}
	}
}

// joined is the batch answer: every element in the calls' order (notifications have none).
func (p *batchPlan) joined() []byte {
	var elems []json.RawMessage
	for _, a := range p.answers {
		if a != nil {
			elems = append(elems, a)
		}
	}
	return joinBatch(elems)
}
