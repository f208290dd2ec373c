package proxy

import (
	"context"
	"testing"

	"github.com/evmlb/evmlb/internal/metrics"
)

// TestCountClient: a client's counts go with the exchanges; on a chain this isolate has no snapshot of yet (only
// refused requests so far) the count starts the first exchange itself, in the background.
func TestCountClient(t *testing.T) {
	r := newRig(t, "")
	r.plane.CountClient(context.Background(), "eth", metrics.ClientUnknown, metrics.ClientUnauthorized)
	r.host.Wait()
	got := r.obj.exchanges()
	if len(got) != 1 || got[0].Metrics == nil || got[0].Metrics.Clients[metrics.ClientUnknown][metrics.ClientUnauthorized] != 1 {
		t.Fatalf("a cold chain's count: exchanges %+v", got)
	}
	// With a snapshot: counted, and carried by the next exchange.
	r.plane.CountClient(context.Background(), "eth", "app", metrics.ClientOK)
	r.plane.CountClient(context.Background(), "eth", "app", metrics.ClientOK)
	ex := r.report()
	if ex.Metrics == nil || ex.Metrics.Clients["app"][metrics.ClientOK] != 2 || ex.Metrics.Clients[metrics.ClientUnknown] != nil {
		t.Errorf("warm: %+v", ex.Metrics)
	}
	// A request served after the cold exchange routes from its snapshot: no exchange on its path.
	before := r.plane.Counters()
	r.serve(read)
	if after := r.plane.Counters(); after.ObjectCallsOnPath != before.ObjectCallsOnPath {
		t.Errorf("object calls on path %d → %d", before.ObjectCallsOnPath, after.ObjectCallsOnPath)
	}
}
