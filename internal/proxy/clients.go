package proxy

import (
	"context"

	"github.com/evmlb/evmlb/internal/metrics"
)

// CountClient counts one request of a CLIENT_KEYS client on chain (evmlb_client_requests_total) into the chain's
// counts of this isolate, which go to the chain's object with its next exchange; one is scheduled when the
// counts would otherwise wait (a request refused before the data plane does not start one).
func (pl *Plane) CountClient(ctx context.Context, chain, client, outcome string) {
	v := pl.view(chain)
	v.count(func(m *metrics.Chain) { m.ClientRequest(client, outcome) })
	pl.maybeExchange(ctx, chain, v, false, pl.p.Now())
}
