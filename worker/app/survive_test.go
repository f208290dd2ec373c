package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/protocol"
)

// upstreamCalls is the upstream's eth_call count in /admin/stats (its object's, plus the chain's pending and
// handed counts the object has not stored).
func (h *harness) upstreamCalls(name string) uint64 {
	h.t.Helper()
	var s struct{ Upstreams []adminapi.StatsEntry }
	h.admin(http.MethodGet, "/admin/stats", &s)
	for _, u := range s.Upstreams {
		if u.Name == name {
			return u.Methods["eth_call"].Count
		}
	}
	h.t.Fatalf("no %s in %+v", name, s)
	return 0
}

// Counts handed from the chain object to an upstream's object survive a lost answer (or an object evicted before
// it stored them): the chain keeps them until the upstream's next report acknowledges them, and hands them again
// with what came since; none is counted twice, and a new runtime finds them all. /admin/stats counts each of
// them once all along: handed and not stored, handed and stored but not yet acknowledged, and after a restart before
// any health check (e2e's state-survives-restart stops the host in that window).
func TestStatsSurviveLostHandover(t *testing.T) {
	a := evmtest.NewNode(t, "a", 1, 100)
	h := started(t, nil, upstream{"eth", "a", a.URL})
	for range 7 {
		h.post("eth", rpcBody)
	}
	h.app.plane.Flush(context.Background())

	// A report whose answer never reaches the upstream's object.
	client := protocol.Client{P: h.host.Platform()}
	rep, _ := json.Marshal(durable.Report{Name: "a", At: h.host.Clock().Now(), Height: 100})
	var lost durable.ReportAnswer
	if err := client.Chain(context.Background(), "eth", http.MethodPost, protocol.PathReport, rep, &lost); err != nil {
		t.Fatal(err)
	}
	if lost.Seq != 1 || lost.Methods["eth_call"].Count != 7 {
		t.Fatalf("handover %+v", lost)
	}
	if got := h.upstreamCalls("a"); got != 7 {
		t.Errorf("handed and not stored: eth_call count %d, want 7", got)
	}
	for range 3 {
		h.post("eth", rpcBody)
	}
	h.app.plane.Flush(context.Background())
	// The chain object is evicted meanwhile (a new runtime: memory gone, storage kept).
	h.restartApp()
	if got := h.upstreamCalls("a"); got != 10 {
		t.Errorf("after a new runtime, before any check: eth_call count %d, want 10", got)
	}
	// The health checks report (one every EVMLB_HEALTH_INTERVAL, 5 s): the first hands everything over again, the
	// next acknowledges it. Seconds apart, /admin/stats also reads between the two.
	for i := range 15 {
		h.checks(time.Second)
		if got := h.upstreamCalls("a"); got != 10 {
			t.Errorf("%d s after the restart: eth_call count %d, want 10", i+1, got)
		}
	}
	if v, _, _ := h.host.Storage("upstream", "eth/a").Get(context.Background(), "stats_seq"); v == "" {
		t.Error("no handover stored")
	}
	if got := h.upstreamCalls("a"); got != 10 {
		t.Errorf("eth_call count %d, want 10", got)
	}
	h.restartApp()
	if got := h.upstreamCalls("a"); got != 10 {
		t.Errorf("after a new runtime: eth_call count %d, want 10", got)
	}
}
