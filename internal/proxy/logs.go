package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/logsplit"
	"github.com/evmlb/evmlb/internal/metrics"
)

// eth_getLogs over any range (issue 20): a single eth_getLogs call over a range of block numbers goes whole to an
// upstream that never refused one; a refusal the providers' table reads (internal/logsplit) teaches that
// upstream's width, and the range is then asked in pieces, at most logsConcurrency at a time, each through the
// usual attempts (prepare, upstream), and the pieces' results merged in block and log order, byte for byte.
// The cache and the flights see only the client's call (Serve): the merged answer is stored and shared as an
// unsplit one would be; the pieces are never cached.
// The chain's logs_max_range bounds the range split, and logs_max_answer_bytes the merged answer (-32074 beyond).
const (
	logsMaxPieces   = 10_000 // upstream calls one split request may make at most (-32074)
	logsConcurrency = 4      // pieces in flight at once
)

// logsSpan is the range of a request that is one eth_getLogs call over block numbers (no tags, no blockHash).
func logsSpan(req *jsonrpc.Request) (logsplit.Span, bool) {
	if req.Batch || len(req.Calls) != 1 || req.Calls[0].Method != "eth_getLogs" || req.Calls[0].Notification() {
		return logsplit.Span{}, false
	}
	return logsplit.Range(req.Calls[0].Params)
}

// refusalOf reads an upstream's answer as an eth_getLogs refusal of its size.
func refusalOf(answer []byte) (logsplit.Refusal, bool) {
	if answer == nil {
		return logsplit.Refusal{}, false
	}
	f, ok := jsonrpc.Fields(answer, "error")
	if !ok || f[0] == nil {
		return logsplit.Refusal{}, false
	}
	e, ok := jsonrpc.Fields(f[0], "code", "message")
	if !ok {
		return logsplit.Refusal{}, false
	}
	var code int64
	if e[0] != nil {
		_ = json.Unmarshal(e[0], &code)
	}
	msg, _ := jsonrpc.String(e[1])
	return logsplit.Read(code, msg)
}

// isLogsRefusal: the answer of an upstream to r is an eth_getLogs refusal of its size: an answer (class OK), not
// the upstream's failure (Infura's -32005 would be Overloaded, dRPC's "not supported" Unsupported).
func isLogsRefusal(r *request, answer []byte) bool {
	if _, ok := logsSpan(r.req); !ok {
		return false
	}
	_, ok := refusalOf(answer)
	return ok
}

// logsLimits is what the upstream up of chain is known to take: its settings and what it taught.
func (pl *Plane) logsLimits(chain string, v *chainView, up string) logsplit.Limits {
	u := pl.byName[chain][up]
	l := logsplit.Limits{Range: u.MaxLogsRange, Results: u.MaxLogsResults}
	v.mu.Lock()
	l.Learned = v.logsWidth[up]
	v.mu.Unlock()
	return l
}

// learnLogs keeps the width up's refusal ref of span taught, when narrower than what it taught before. Only a
// refusal of too many blocks teaches a width: a cap on logs is not one in blocks (the logs per block are the
// filter's and the range's), so a results refusal refines that piece alone; kept, the width of one dense range
// would cut every later range, however sparse, into as many pieces.
func (pl *Plane) learnLogs(v *chainView, up string, span logsplit.Span, ref logsplit.Refusal) {
	if ref.Kind != logsplit.TooManyBlocks {
		return
	}
	w := logsplit.Learn(span, ref)
	if w == 0 || up == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.logsWidth == nil {
		v.logsWidth = map[string]uint64{}
	}
	if old := v.logsWidth[up]; old == 0 || w < old {
		v.logsWidth[up] = w
	}
}

// logsWidth is the width pieces are cut to for the candidates cands: the narrowest any of them is known to take,
// 0 when none is known to have a cap (the range goes whole).
func (pl *Plane) logsWidth(chain string, v *chainView, cands []string) uint64 {
	var w uint64
	for _, up := range cands {
		if l := pl.logsLimits(chain, v, up); l.Splits() {
			if lw := l.Width(); lw > 0 && (w == 0 || lw < w) {
				w = lw
			}
		}
	}
	return w
}

// serveLogs answers r, one eth_getLogs call over span: whole when no candidate is known to cap it, in pieces
// when one is or when the whole range was refused.
func (pl *Plane) serveLogs(ctx context.Context, r *request, cands []string, hedge time.Duration, pol Policy, span logsplit.Span) reply {
	c := r.req.Calls[0]
	maxRange := pl.cfg.ChainSettings(r.chain).WithDefaults().LogsMaxRange
	width := pl.logsWidth(r.chain, r.v, cands)
	if width == 0 || width >= span.Len() {
		rep := pl.upstream(ctx, r, cands, hedge)
		ref, ok := refusalOf(rep.body)
		if !ok {
			return rep
		}
		rep.answered = false // a refusal is never stored
		pl.learnLogs(r.v, rep.up, span, ref)
		if span.Len() > maxRange {
			return logsTooLarge(c, "the range is over logs_max_range, "+strconv.FormatUint(maxRange, 10)+" blocks")
		}
		pieces, err := logsplit.Refine(span, ref, logsMaxPieces)
		if err != nil {
			return logsTooLarge(c, "more than "+strconv.Itoa(logsMaxPieces)+" pieces")
		}
		if pieces == nil {
			return rep // one block refused: the refusal is the answer
		}
		return pl.splitLogs(ctx, r, pol, pieces, 1)
	}
	if span.Len() > maxRange {
		return logsTooLarge(c, "the range is over logs_max_range, "+strconv.FormatUint(maxRange, 10)+" blocks")
	}
	pieces, err := logsplit.Pieces(span, width, logsMaxPieces)
	if err != nil {
		return logsTooLarge(c, "more than "+strconv.Itoa(logsMaxPieces)+" pieces")
	}
	return pl.splitLogs(ctx, r, pol, pieces, 0)
}

func logsTooLarge(c jsonrpc.Call, detail string) reply {
	e := jsonrpc.ErrLogsTooLarge.With(detail)
	return reply{status: e.Status, body: e.Body(c.ID), outcome: metrics.OutcomeUpstreamError, id: c.ID}
}

// logsPiece is one piece's answer: the call with span's range, through the usual attempts, the k-th piece asked
// starting at the k-th upstream in rotation, so that pieces in flight at once go to different upstreams.
func (pl *Plane) logsPiece(ctx context.Context, r *request, pol Policy, span logsplit.Span, k int) reply {
	c := r.req.Calls[0]
	params, ok := logsplit.WithSpan(c.Params, span)
	if !ok {
		e := jsonrpc.ErrInternal.With("eth_getLogs piece")
		return reply{status: e.Status, body: e.Body(c.ID), outcome: metrics.OutcomeNoUpstream, id: c.ID}
	}
	sub := jsonrpc.Call{ID: c.ID, Method: c.Method, Params: params}
	one := encodeBatch([]jsonrpc.Call{sub})
	pr, cands, hedge := pl.prepare(r.chain, r.v, &jsonrpc.Request{Calls: []jsonrpc.Call{sub}}, one[1:len(one)-1], pol, pl.p.Now())
	if n := min(pr.primary, len(cands)); n > 1 { // the k-th piece starts at the k-th upstream in rotation
		first := slices.Clone(cands[:n])
		for i := range n {
			cands[i] = first[(i+k)%n]
		}
	}
	return pl.upstream(ctx, pr, cands, hedge)
}

// splitLogs asks pieces (in block order, covering the client's range once) at most logsConcurrency at a time,
// cuts again a piece an upstream refuses, and merges the results as soon as the pieces before them are in: only
// the results that arrived ahead of their turn are held apart, and those and the merged bytes together stay
// within logs_max_answer_bytes. calls is the upstream calls made already. The first piece that fails ends the
// request with that piece's answer: no partial answer is ever given.
func (pl *Plane) splitLogs(ctx context.Context, r *request, pol Policy, pending []logsplit.Span, calls int) reply {
	c := r.req.Calls[0]
	maxBytes := pl.cfg.ChainSettings(r.chain).WithDefaults().LogsMaxAnswerBytes
	type piece struct {
		span   logsplit.Span
		result []byte
	}
	m := logsplit.NewMerger(int(maxBytes))
	ahead := map[uint64]piece{} // results in before their turn, by first block
	next := pending[0].From     // the first block not merged yet
	held := int64(0)            // the bytes of ahead
	tooLarge := func() reply {
		return logsTooLarge(c, "the merged answer is over logs_max_answer_bytes, "+strconv.FormatInt(maxBytes, 10)+" bytes")
	}
	r.v.count(func(m *metrics.Chain) { m.LogsSplits++ })
	for len(pending) > 0 {
		n := min(logsConcurrency, len(pending))
		round := pending[:n:n]
		pending = pending[n:]
		calls += n
		if calls > logsMaxPieces {
			return logsTooLarge(c, "more than "+strconv.Itoa(logsMaxPieces)+" pieces")
		}
		reps := make([]reply, n)
		var wg sync.WaitGroup
		for i, s := range round {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[i] = pl.logsPiece(ctx, r, pol, s, calls-n+i)
			}()
		}
		wg.Wait()
		r.v.count(func(m *metrics.Chain) { m.LogsPieces += uint64(n) })
		for i, rep := range reps {
			if ref, ok := refusalOf(rep.body); ok {
				pl.learnLogs(r.v, rep.up, round[i], ref)
				more, err := logsplit.Refine(round[i], ref, logsMaxPieces-calls)
				if err != nil {
					return logsTooLarge(c, "more than "+strconv.Itoa(logsMaxPieces)+" pieces")
				}
				if more == nil {
					rep.answered = false
					return rep // one block refused: the refusal is the answer
				}
				pending = append(pending, more...)
				continue
			}
			result, ok := resultOf(rep.body)
			if !rep.answered || !ok {
				return rep
			}
			ahead[round[i].From] = piece{round[i], result}
			held += int64(len(result))
			for p, ok := ahead[next]; ok; p, ok = ahead[next] {
				delete(ahead, next)
				held -= int64(len(p.result))
				if err := m.Add(p.span, p.result); err != nil {
					if errors.Is(err, logsplit.ErrTooLarge) {
						return tooLarge()
					}
					e := jsonrpc.ErrNoUpstream.With("an upstream answered a piece of the range with logs not of it")
					return reply{status: e.Status, body: e.Body(c.ID), outcome: metrics.OutcomeNoUpstream, failed: true, id: c.ID}
				}
				next = p.span.To + 1
			}
			if held+int64(m.Len()) > maxBytes {
				return tooLarge()
			}
		}
	}
	if len(ahead) > 0 { // cannot be: the pieces cover the range once
		e := jsonrpc.ErrInternal.With("eth_getLogs pieces left unmerged")
		return reply{status: e.Status, body: e.Body(c.ID), outcome: metrics.OutcomeNoUpstream, id: c.ID}
	}
	// The answer written once at its size, around the pieces' logs (answerWith's envelope, without a copy of the
	// merged result first).
	prefix := append(append([]byte(`{"jsonrpc":"2.0","id":`), jsonrpc.IDOrNull(c.ID)...), `,"result":`...)
	return reply{status: http.StatusOK, body: m.Answer(prefix, []byte("}")), outcome: metrics.OutcomeOK,
		answered: true, id: c.ID}
}

// LogsWidths is what each upstream of chain taught of the eth_getLogs width it takes (for admin and tests).
func (pl *Plane) LogsWidths(chain string) map[string]uint64 {
	v := pl.view(chain)
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]uint64{}
	for up, w := range v.logsWidth {
		out[up] = w
	}
	return out
}
