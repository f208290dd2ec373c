package proxy

import (
	"context"
)

// CountClient counts one request of a CLIENT_KEYS client on chain (evmlb_client_requests_total) into the chain's
// counts of this isolate, which go to the chain's object with its next exchange. The request was refused before
// the data plane, or is about to enter it: it never waits here.
//
// A chain this isolate has only refused requests of has no snapshot yet, so no exchange would ever carry its
// counts: its first exchange then runs in the background (concurrent first requests wait for it, as for a
// first request's own: ensure).
func (pl *Plane) CountClient(ctx context.Context, chain, client, outcome string) {
	v := pl.view(chain)
	v.mu.Lock()
	v.met.ClientRequest(client, outcome)
	var cold chan struct{}
	if v.table == nil && v.cold == nil && !v.exchanging {
		cold = make(chan struct{})
		v.cold = cold
	}
	v.mu.Unlock()
	if cold == nil {
		pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
		return
	}
	pl.p.Background(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		pl.exchange(ctx, chain, v)
		v.mu.Lock()
		close(cold)
		v.cold = nil
		v.mu.Unlock()
	})
}
