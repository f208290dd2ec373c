package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// Waiting on what the balancer shows, not on the clock: a test that needs something to have happened (a health
// check, counts reaching storage) polls the admin view that shows it, bounded by waitLimit, and fails saying what
// never came.

// waitLimit bounds every wait of this file: generous, so that a slow machine is not a failure; what is waited for
// comes within a few health intervals (1 s in the tests).
const waitLimit = 30 * time.Second

// waitPoll is how often a wait looks again; well under EVMLB_HEALTH_INTERVAL (1 s), so that waitChecks sees every
// check.
const waitPoll = 100 * time.Millisecond

// waitAdmin polls GET path of inst (basic auth as admin with password) until done holds of its body; past
// waitLimit it fails t with what was awaited, the last answer and the host's log. It returns the body that
// satisfied done. client may be nil (http.DefaultClient).
func waitAdmin(ctx context.Context, t testing.TB, client *http.Client, inst *target.Instance, password, path, what string, done func(body []byte) bool) []byte {
	t.Helper()
	var last string
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(waitPoll) {
		r, err := rpc.Do(ctx, client, http.MethodGet, inst.URL+path, nil, map[string]string{"Authorization": basic("admin", password)})
		switch {
		case err != nil:
			last = err.Error()
		case r.Status != http.StatusOK:
			last = fmt.Sprintf("%d %s", r.Status, rpc.Trunc(r.Body, 2000))
		case done(r.Body):
			return r.Body
		default:
			last = rpc.Trunc(r.Body, 2000)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last GET %s: %s\n--- %s log ---\n%s", waitLimit, what, path, last, inst.Host, inst.Logs())
			return nil
		}
	}
}

// waitAdmin is the package's waitAdmin for a scenario's balancer.
func (b *Balancer) waitAdmin(path, what string, done func(body []byte) bool) []byte {
	b.s.Helper()
	return waitAdmin(b.s.Ctx, b.s.T, b.s.client, b.Inst, b.s.Password, path, what, done)
}

// waitChecks waits until every upstream of inst has completed n more successful health checks than it had when
// the wait began, as /admin/upstreams shows them: each check sets its upstream's last_check, and the view is read
// every waitPoll, far more often than checks come (EVMLB_HEALTH_INTERVAL), so each distinct last_check with ok is
// one check seen. The chain must be awake (a request sent): health checks start with its first request.
func waitChecks(ctx context.Context, t testing.TB, inst *target.Instance, password string, n int) {
	t.Helper()
	base := map[string]time.Time{}          // last_check when the wait began
	seen := map[string]map[time.Time]bool{} // successful checks since
	first := true
	what := fmt.Sprintf("%d successful health checks of every upstream", n)
	waitAdmin(ctx, t, nil, inst, password, "/admin/upstreams", what, func(body []byte) bool {
		var doc struct {
			Upstreams []struct {
				Name      string    `json:"name"`
				OK        bool      `json:"ok"`
				LastCheck time.Time `json:"last_check"`
			} `json:"upstreams"`
		}
		if json.Unmarshal(body, &doc) != nil || len(doc.Upstreams) == 0 {
			return false
		}
		all := true
		for _, u := range doc.Upstreams {
			if first {
				base[u.Name] = u.LastCheck
				seen[u.Name] = map[time.Time]bool{}
			}
			if u.OK && u.LastCheck.After(base[u.Name]) {
				seen[u.Name][u.LastCheck] = true
			}
			all = all && len(seen[u.Name]) >= n
		}
		first = false
		return all
	})
}

// chainRequests is the sum of the requests column of chain's routing table in an /admin/chains body: the live
// requests the chain object has heard of from the isolates' exchanges. -1 when the chain is not there.
func chainRequests(body []byte, chain string) int {
	var doc struct {
		Chains []struct {
			Chain string `json:"chain"`
			Table []struct {
				Requests int `json:"requests"`
			} `json:"table"`
		} `json:"chains"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return -1
	}
	for _, c := range doc.Chains {
		if c.Chain == chain {
			sum := 0
			for _, r := range c.Table {
				sum += r.Requests
			}
			return sum
		}
	}
	return -1
}

// methodCount is the count of method in upstream's entry of an /admin/stats body (what its object stored and what
// the chain object holds for it); 0 when absent.
func methodCount(body []byte, upstream, method string) uint64 {
	var doc struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Methods map[string]struct {
				Count uint64 `json:"count"`
			} `json:"methods"`
		} `json:"upstreams"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return 0
	}
	for _, u := range doc.Upstreams {
		if u.Name == upstream {
			return u.Methods[method].Count
		}
	}
	return 0
}
