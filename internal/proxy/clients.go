package proxy

import (
	"context"
)

// CountClient counts one request of a CLIENT_KEYS client on chain (evmlb_client_requests_total) into the chain's
// counts of this isolate, which go to the chain's object with its next exchange; one is scheduled when the
// counts would otherwise wait (a request refused before the data plane does not start one).
func (pl *Plane) CountClient(ctx context.Context, chain, client, outcome string) {
	v := pl.view(chain)
	v.mu.Lock()
	v.met.ClientRequest(client, outcome)
	// A chain this isolate has only refused requests of has no snapshot yet, so no exchange would ever carry
	// the counts: one starts in the background (at most one at a time), as a first request's would.
	cold := v.table == nil && !v.exchanging && v.cold == nil
	if cold {
		v.exchanging = true
	}
	v.mu.Unlock()
	if cold {
		pl.p.Background(ctx, pl.background(chain, v))
		return
	}
	pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
}
