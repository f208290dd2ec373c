package durable

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
)

// firstCheckWait bounds how long a chain's first request waits for its upstreams' first health checks; once one
// has reported, the others get firstCheckGrace more (a hung upstream then costs the first request that, not 2 s).
// firstExchangeWait bounds the exchange that waits for them: the checks, and a second to answer.
//
// They are fixed, not settings: they bound one wait of a new deployment's first requests, which an operator
// has no reason to tune; README.md states them ("How requests are routed").
const (
	firstCheckWait    = 2 * time.Second
	firstCheckGrace   = 250 * time.Millisecond
	firstExchangeWait = firstCheckWait + time.Second
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
			if err := cs.client.Upstream(ctx, name+"/"+n, http.MethodPost, protocol.PathCheck, &rep); err == nil && rep.Name == n {
				reps <- rep
				return
			}
			reps <- Report{} // not in time, or failed: the alarm set by the check (or /ensure) takes over
		}()
	}
	var got, learned []string
	var grace <-chan struct{} // after the first report, the others get firstCheckGrace
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
			grace = cs.env.P.After(ctx, firstCheckGrace)
		}
		o.mu.Lock()
		o.table.Report(rep.Name, rep.row())
		learned = append(learned, o.takeProbes(rep)...)
		o.mu.Unlock()
		got = append(got, rep.Name)
	}
	if len(got) < len(names) {
		cs.fanOut(context.WithoutCancel(ctx), name, names, protocol.PathEnsure) // whoever did not answer gets an alarm
	}
	for _, n := range learned { // a state probe kept from an earlier report, applied now
		if !slices.Contains(got, n) {
			got = append(got, n)
		}
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
