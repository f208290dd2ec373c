package proxy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/sha3"

	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/metrics"
	"github.com/evmlb/evmlb/internal/retry"
)

// Transactions broadcast (issue 20, README "Transactions broadcast"). With the chain's broadcast_writes (on by
// default when it has more than one upstream), a single eth_sendRawTransaction is sent at once to every upstream in
// rotation, each exactly once, and never again to any. The client's answer is the transaction's hash, keccak-256 of
// the raw bytes, at the first upstream that takes it: one that answers that hash, or says the transaction is
// already in its pool ("already known" and kin), or says "nonce too low" and then finds the transaction by its hash.
// An upstream that answers another hash is at fault (retry.WrongHash) and its answer is never passed on. With no
// upstream taking it, the client gets the first error an upstream answered (the transaction's own fault: too low
// a fee, no funds), else the balancer's error. The attempts still running when the answer is written go on in the
// background (platform Background), so that every live upstream gets the transaction and every outcome counts.
//
// In a batch, each such call is taken out and broadcast alone (broadcastBatch), its answer put back in place, when
// the batch takes the cache's part (the chain's cache on, no id twice: batchPlan). Anything else that is a write (a
// notification, params that are not a 0x-hex string holding a transaction, a batch the cache takes no part in) goes
// the way of every write: one upstream, the next only when the write never left.

// The results of one upstream's attempt at a broadcast, as evmlb_broadcast_total counts them.
const (
	BroadcastAccepted  = "accepted"   // the upstream answered the transaction's hash
	BroadcastKnown     = "known"      // already in its pool or chain: "already known", or "nonce too low" and found
	BroadcastRejected  = "rejected"   // a JSON-RPC error: the transaction's fault (fee, funds, nonce of another)
	BroadcastFailed    = "failed"     // no answer (refused, dropped, timed out, HTTP error, not JSON-RPC)
	BroadcastWrongHash = "wrong_hash" // another hash than the transaction's (retry.WrongHash)
)

// alreadyKnown are lower-case fragments of the errors by which nodes say they hold this very transaction (by its
// hash) already: go-ethereum and Erigon "already known", older go-ethereum "known transaction: <hash>", Besu "Known
// transaction", OpenEthereum "Transaction with the same hash was already imported.", Nethermind "AlreadyKnown",
// Cosmos EVM chains "tx already exists in cache", and pools that say it is already in the mempool.
var alreadyKnown = []string{
	"already known", "known transaction", "already imported", "alreadyknown", "tx already exists in cache",
	"already in mempool", "already in the mempool", "already in pool", "already in the txpool",
}

// nonceUsed are lower-case fragments of the errors by which nodes say the sender's nonce was used already: by this
// transaction (it was mined, or sent through another way) or by another one. It counts as this transaction taken
// only when the same upstream then finds it by its hash (knownTx).
var nonceUsed = []string{"nonce too low", "oldnonce", "nonce has already been used", "nonce is too low"}

// hasFragment reports whether the lower-case m holds one of the fragments.
func hasFragment(m string, fragments []string) bool {
	for _, f := range fragments {
		if strings.Contains(m, f) {
			return true
		}
	}
	return false
}

// rawTransaction is the bytes of a single eth_sendRawTransaction's transaction when req is one to broadcast on
// chain: the chain broadcasts (broadcasts) and req is one call that rawCall takes.
func (pl *Plane) rawTransaction(chain string, req *jsonrpc.Request) ([]byte, bool) {
	if req.Batch || len(req.Calls) != 1 || !pl.broadcasts(chain) {
		return nil, false
	}
	return rawCall(req.Calls[0])
}

// broadcasts reports whether chain broadcasts raw transactions: its broadcast_writes, by default whether it has
// more than one upstream.
func (pl *Plane) broadcasts(chain string) bool {
	return pl.cfg.ChainSettings(chain).Broadcast(len(pl.byName[chain]))
}

// rawCall is the transaction of c when c is an eth_sendRawTransaction to broadcast: it has an id, and its first
// param is a 0x-hex string holding what looks like a transaction (looksLikeTx).
func rawCall(c jsonrpc.Call) ([]byte, bool) {
	if c.Method != "eth_sendRawTransaction" || c.Notification() {
		return nil, false
	}
	return decodeRawTx(c.Params)
}

// decodeRawTx reads params, a JSON array whose first element is a 0x-hex string, into the transaction's bytes.
func decodeRawTx(params json.RawMessage) ([]byte, bool) {
	var ps []json.RawMessage
	if json.Unmarshal(params, &ps) != nil || len(ps) == 0 {
		return nil, false
	}
	s, ok := jsonrpc.String(ps[0])
	if !ok || len(s) < 2 || (s[:2] != "0x" && s[:2] != "0X") {
		return nil, false
	}
	raw, err := hex.DecodeString(s[2:])
	if err != nil || !looksLikeTx(raw) {
		return nil, false
	}
	return raw, true
}

// looksLikeTx reports whether raw has the shape of a signed transaction's encoding: an RLP list (a legacy
// transaction), or a type byte below 0x80 followed by an RLP list (EIP-2718). Anything else is no transaction a
// node would take: it goes to one upstream, whose error the client gets.
func looksLikeTx(raw []byte) bool {
	switch {
	case len(raw) == 0:
		return false
	case raw[0] >= 0xc0:
		return true
	}
	return raw[0] < 0x80 && len(raw) > 1 && raw[1] >= 0xc0
}

// TxHash is a transaction's hash: keccak-256 of its raw bytes, as 0x and 64 lower-case hex digits.
func TxHash(raw []byte) string {
	h := sha3.NewLegacyKeccak256()
	h.Write(raw)
	return "0x" + hex.EncodeToString(h.Sum(nil))
}

// hashJudge is the class of an answer to the broadcast of the transaction whose hash is hash: WrongHash when its
// result is anything but a string naming that hash (sameHash: a number, an object, null, another hash), or when the
// answer cannot be read (nested deeper than jsonrpc.MaxDepth: neither the hash nor an error is shown), else OK (an
// error is judged by broadcastOne).
func hashJudge(hash string) func([]byte) retry.Class {
	return func(answer []byte) retry.Class {
		f, ok := jsonrpc.Fields(answer, "result")
		switch {
		case !ok:
			return retry.WrongHash
		case f[0] == nil:
			return retry.OK // an error answer
		}
		if s, ok := jsonrpc.String(f[0]); ok && sameHash(s, hash) {
			return retry.OK
		}
		return retry.WrongHash
	}
}

// sameHash reports whether s, an upstream's string, names hash (TxHash's form): the same 64 hex digits in any case,
// with or without 0x. The client always gets hash itself; an upstream's spelling of it proves it took the
// transaction all the same.
func sameHash(s, hash string) bool {
	if len(s) == len(hash) && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	return strings.EqualFold(s, hash[2:])
}

// txResult is how one upstream took a broadcast transaction.
type txResult struct {
	result string // Broadcast…
	o      outcome
}

// broadcastOne sends the transaction of r (whose hash is hash) to up, once, and says how it was taken.
func (pl *Plane) broadcastOne(ctx context.Context, r *request, up, hash string) txResult {
	o := pl.attempt(ctx, r, up, r.body, r.want)
	res := txResult{result: BroadcastFailed, o: o}
	switch {
	case o.class == retry.WrongHash:
		res.result = BroadcastWrongHash
	case o.body == nil:
	default:
		f, ok := jsonrpc.Fields(o.body, "result", "error")
		switch {
		case !ok:
		case f[0] != nil && o.class == retry.OK: // the hash (hashJudge)
			res.result = BroadcastAccepted
		case f[1] != nil:
			res.result = BroadcastRejected
			if m, ok := jsonrpc.Fields(f[1], "message"); ok && m[0] != nil {
				msg, _ := jsonrpc.String(m[0])
				msg = strings.ToLower(msg)
				if hasFragment(msg, alreadyKnown) || (hasFragment(msg, nonceUsed) && pl.knownTx(ctx, r, up, hash)) {
					res.result = BroadcastKnown
				}
			}
		}
	}
	r.v.count(func(m *metrics.Chain) { m.BroadcastResult(up, res.result) })
	return res
}

// knownTx reports whether up finds the transaction whose hash is hash (eth_getTransactionByHash answers it, with
// that hash): after a "nonce too low", whether the nonce was used by this transaction. Anything else is no: a
// failure, an answer over the response bound, one that is not JSON-RPC or not the answer to this call (its id), an
// error, a result that is not an object, an object without that hash, one nested deeper than jsonrpc.MaxDepth.
func (pl *Plane) knownTx(ctx context.Context, r *request, up, hash string) bool {
	u, ok := r.ups[up]
	if !ok {
		return false
	}
	res := forward.Do(ctx, pl.target(u), []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":["`+hash+`"]}`))
	if res.Class != retry.OK {
		return false
	}
	if c, _ := retry.AnswerOf(res.Body, retry.Expect{IDs: []json.RawMessage{json.RawMessage("1")}}); c == retry.NonJSON || c == retry.BadAnswer {
		return false
	}
	f, ok := jsonrpc.Fields(res.Body, "result")
	if !ok || f[0] == nil {
		return false
	}
	h, ok := jsonrpc.Fields(f[0], "hash")
	if !ok || h[0] == nil {
		return false
	}
	s, ok := jsonrpc.String(h[0])
	return ok && sameHash(s, hash)
}

// broadcast answers req, a single eth_sendRawTransaction of raw (rawTransaction), by sending it to every upstream in
// rotation at once (see the top of this file).
func (pl *Plane) broadcast(ctx context.Context, w http.ResponseWriter, chain string, v *chainView, req *jsonrpc.Request, body, raw []byte, pol Policy, start, now time.Time) {
	rep := pl.broadcastCall(ctx, chain, v, req, body, raw, pol, now)
	w.Header()[CacheHeader] = cacheHeaders[metrics.CacheSkip] // a write: never cached nor shared
	jsonrpc.WriteJSON(w, rep.status, rep.body)
	end := pl.p.Now()
	label := methodLabel(req)
	v.mu.Lock()
	v.met.Request(label, rep.outcome, end.Sub(start))
	v.met.CacheResult(label, metrics.CacheSkip)
	v.mu.Unlock()
	pl.maybeExchange(ctx, chain, v, rep.failed, end)
}

// broadcastBatch broadcasts the raw transactions of a batch (rawCall) that p would send upstream, when chain
// broadcasts: each is taken out of the calls sent and answered by its own broadcast, all at once; the batch's
// other calls go as before.
func (pl *Plane) broadcastBatch(ctx context.Context, chain string, v *chainView, p *batchPlan, pol Policy) {
	if !pl.broadcasts(chain) {
		return
	}
	var wg sync.WaitGroup
	send := p.send[:0:0]
	for _, i := range p.send {
		c := p.calls[i]
		raw, ok := rawCall(c)
		if !ok || p.lead[i] != nil || p.wait[i] != nil { // a write never leads nor joins a flight
			send = append(send, i)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			one := encodeBatch([]jsonrpc.Call{c})
			rep := pl.broadcastCall(ctx, chain, v, &jsonrpc.Request{Calls: []jsonrpc.Call{c}}, one[1:len(one)-1], raw, pol, pl.p.Now())
			p.answers[i] = rep.body
		}()
	}
	wg.Wait()
	p.send = send
}

// broadcastCall broadcasts raw, the transaction of req's one call (whose bytes are body), and makes its answer.
func (pl *Plane) broadcastCall(ctx context.Context, chain string, v *chainView, req *jsonrpc.Request, body, raw []byte, pol Policy, now time.Time) reply {
	hash := TxHash(raw)
	r, _, _ := pl.prepare(chain, v, req, body, pol, now)
	r.judge = hashJudge(hash)
	var cands []string
	v.mu.Lock()
	if v.table != nil {
		// Every upstream in rotation; when none is, those out of it, as a request would fall back to them.
		if cands = v.table.Candidates(r.ref, now); len(cands) == 0 {
			cands = v.table.Fallback(r.ref, now)
		}
	} else {
		cands = pl.names(chain)
	}
	v.mu.Unlock()
	// The attempts outlive the answer: their context is not the request's (canceled when Serve returns), but one
	// of the same call (its values: workerd's I/O context) bounded by request_timeout, and the call waits for them
	// as background work. They start here, not inside Background, so that they run even if it declined.
	sendCtx, cancel := pl.p.WithTimeout(context.WithoutCancel(ctx), pol.RequestTimeout)
	results := make(chan txResult, len(cands))
	var wg sync.WaitGroup
	for _, up := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- pl.broadcastOne(sendCtx, r, up, hash)
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(results)
	}()
	pl.p.Background(ctx, func(context.Context) { wg.Wait() })
	return broadcastReply(ctx, req.Calls[0].ID, hash, results)
}

// broadcastReply is the client's answer to a broadcast of the transaction whose hash is hash, from the upstreams'
// results as they come: the hash at the first that took it; else, once all ended (or ctx did), the first error an
// upstream answered that is the transaction's own (class OK), else the first other error answered, else the
// balancer's error: 502 -32071 when the transaction may have reached an upstream, 503 -32070 when it reached none.
func broadcastReply(ctx context.Context, id json.RawMessage, hash string, results <-chan txResult) reply {
	var own, other *outcome
	var lost retry.Class // a failure after which the transaction may have arrived
	failed := false
	for done := false; !done; {
		var res txResult
		var ok bool
		select {
		case res, ok = <-results:
			if !ok {
				done = true
				continue
			}
		case <-ctx.Done():
			if lost == "" {
				lost = retry.Timeout
			}
			done = true
			continue
		}
		switch res.result {
		case BroadcastAccepted, BroadcastKnown:
			return reply{status: http.StatusOK, outcome: metrics.OutcomeOK, failed: failed, id: id,
				body: []byte(`{"jsonrpc":"2.0","id":` + string(jsonrpc.IDOrNull(id)) + `,"result":"` + hash + `"}`)}
		case BroadcastRejected:
			o := res.o
			if o.nullID {
				o.body = ownID(id, o.body)
			}
			if o.class == retry.OK && own == nil {
				own = &o
			} else if o.class != retry.OK && other == nil {
				other = &o
			}
			failed = failed || o.class != retry.OK
		default:
			failed = failed || res.o.class != retry.Canceled
			if c := res.o.class; lost == "" && c != retry.Canceled && c != retry.NoAttempt && !retry.Lookup(c).WriteSafe {
				lost = c
			}
		}
	}
	if own != nil { // an answer, as a single attempt's would be (upstream)
		return reply{status: own.status, body: own.body, outcome: metrics.OutcomeOK, failed: failed, id: id}
	}
	if other != nil {
		return reply{status: other.status, body: other.body, outcome: metrics.OutcomeUpstreamError, failed: failed, id: id}
	}
	if lost != "" {
		e := jsonrpc.ErrUpstreamFailed.With(string(lost) + "; a write is not sent twice")
		return reply{status: e.Status, body: e.Body(id), outcome: metrics.OutcomeFailed, failed: failed, id: id}
	}
	return reply{status: jsonrpc.ErrNoUpstream.Status, body: jsonrpc.ErrNoUpstream.Body(id), outcome: metrics.OutcomeNoUpstream, failed: failed, id: id}
}
