package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/retry"
)

// What a chain's subscription follower (durable/subs.go, issue 21) takes from the data plane: the verified head
// and the upstreams in rotation from the same snapshot the requests route by, and one batch sent to one of them
// with the plane's target (timeout, answer bound) and its outcome counted like a request's.

// Rotation is the chain's verified head height (balance.Table.Best: the best height that counts) and its upstreams
// in routing order for a read at the head, the ones in rotation first (primary of them). ok is false when no
// snapshot could be had.
func (pl *Plane) Rotation(ctx context.Context, chain string) (head uint64, ups []string, primary int, ok bool) {
	v := pl.view(chain)
	now := pl.p.Now()
	if pl.ensure(ctx, chain, v, now) {
		now = pl.p.Now()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table == nil {
		return 0, nil, 0, false
	}
	ups, primary, _ = v.table.RouteSkips("eth_getBlockByNumber", blockref.Ref{Kind: blockref.Latest}, now)
	return v.table.Best(), ups, primary, true
}

// ErrFollow is the error of a follower's batch that an upstream did not answer as asked.
var ErrFollow = errors.New("proxy: the upstream did not answer the batch")

// Batch sends calls as one JSON-RPC batch to upstream up of chain and returns the answers by call index: the
// upstream's answer must answer every call (ids and shape); an element's own JSON-RPC error is its answer. Its
// outcome goes into the isolate's table and the next report, as a request's attempt does.
func (pl *Plane) Batch(ctx context.Context, chain, up string, calls []jsonrpc.Call) ([][]byte, error) {
	v := pl.view(chain)
	body := encodeBatch(calls)
	req := &jsonrpc.Request{Batch: true, Calls: calls}
	r := &request{chain: chain, req: req, body: body, v: v, ups: pl.byName[chain], want: expect(true, calls)}
	o := pl.attempt(ctx, r, up, body, r.want)
	pl.maybeExchange(ctx, chain, v, o.class != retry.OK, pl.p.Now())
	if o.class != retry.OK || o.body == nil {
		return nil, fmt.Errorf("%w: %s", ErrFollow, o.class)
	}
	return splitBatch(o.body, calls)
}

// splitBatch puts each element of a batch answer at the index of the call whose id it carries.
func splitBatch(answer []byte, calls []jsonrpc.Call) ([][]byte, error) {
	elems, ok := jsonrpc.Array(answer)
	if !ok {
		return nil, fmt.Errorf("%w: not an array", ErrFollow)
	}
	out := make([][]byte, len(calls))
	for _, e := range elems {
		f, ok := jsonrpc.Fields(e, "id")
		if !ok {
			continue
		}
		id := f[0]
		for i, c := range calls {
			if out[i] == nil && string(c.ID) == string(id) {
				out[i] = e
				break
			}
		}
	}
	for i := range out {
		if out[i] == nil {
			return nil, fmt.Errorf("%w: no answer to call %d", ErrFollow, i)
		}
	}
	return out, nil
}
