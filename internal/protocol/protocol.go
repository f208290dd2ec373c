// Package protocol is what crosses between the Worker and the Durable Objects: their paths and headers, the
// snapshot and outcome types, and Client, the one place that speaks their wire protocol.
package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// Headers of the protocol between the worker and the objects (set by Go, never by clients: a host overwrites the
// role header on the worker entry, so a client cannot reach an object directly).
const (
	// HeaderName names the object: the chain for a Chain object, chain + "/" + name for an Upstream object, the
	// budget's name (budget.ClientName, budget.UpstreamName) for a Budget object.
	HeaderName = "x-evmlb-name"
)

// Paths the objects serve (all POST but /status and /stats).
const (
	PathReport  = "/report"  // Chain: an upstream's health report
	PathSync    = "/sync"    // Chain: store the configured upstream list, clear removed upstreams, start checks
	PathEnsure  = "/ensure"  // Upstream: start health checks if none is scheduled
	PathStart   = "/start"   // Upstream: run a health check now
	PathCheck   = "/check"   // Upstream: run a health check now and answer its report (the chain applies it)
	PathStatus  = "/status"  // Chain, Upstream, Budget: state as JSON
	PathStats   = "/stats"   // Upstream: per-method stats as JSON
	PathMetrics = "/metrics" // Chain: status and the Prometheus counts as JSON
	PathClear   = "/clear"   // Chain, Upstream, Budget: delete storage and alarm, forget memory
	PathPurge   = "/purge"   // Chain: move the cache epoch (persisted) and answer it (adminapi.CachePurge)
	PathLease   = "/lease"   // Budget: an isolate's lease (budget.Ask in, budget.Grant out)
)

// Client calls the objects through the host's namespaces.
type Client struct{ P platform.Platform }

func (c Client) call(ctx context.Context, ns platform.Namespace, name, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader // nil for no body: workerd refuses a GET Request with one, even empty
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, contract.ObjectURLBase+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderName, name)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return ns.Fetch(ctx, name, req)
}

// Chain calls path on the chain's object and decodes its JSON answer into out (nil: discard).
func (c Client) Chain(ctx context.Context, chain, method, path string, body []byte, out any) error {
	resp, err := c.call(ctx, c.P.Chains, chain, method, path, body)
	return decode(resp, err, out)
}

// Subs calls path on the chain's subscription object and decodes its JSON answer into out (nil: discard).
func (c Client) Subs(ctx context.Context, chain, method, path string, out any) error {
	if c.P.Subs == nil {
		return errors.New("no SUBS namespace")
	}
	resp, err := c.call(ctx, c.P.Subs, chain, method, path, nil)
	return decode(resp, err, out)
}

// Budget asks the budget's object (idFromName(ask.Name) in BUDGET) for a lease (POST /lease).
func (c Client) Budget(ctx context.Context, ask budget.Ask) (budget.Grant, error) {
	var g budget.Grant
	body, err := json.Marshal(ask)
	if err != nil {
		return g, err
	}
	err = c.budget(ctx, ask.Name, http.MethodPost, PathLease, body, &g)
	return g, err
}

// BudgetStatus reads the budget object name's view (GET /status).
func (c Client) BudgetStatus(ctx context.Context, name string) (budget.Status, error) {
	var st budget.Status
	err := c.budget(ctx, name, http.MethodGet, PathStatus, nil, &st)
	return st, err
}

// BudgetClear makes the budget object name forget everything, its day's count too (POST /clear).
func (c Client) BudgetClear(ctx context.Context, name string) error {
	return c.budget(ctx, name, http.MethodPost, PathClear, []byte("{}"), nil)
}

func (c Client) budget(ctx context.Context, name, method, path string, body []byte, out any) error {
	if c.P.Budgets == nil {
		return errors.New("no BUDGET namespace")
	}
	resp, err := c.call(ctx, c.P.Budgets, name, method, path, body)
	return decode(resp, err, out)
}

// Upstream calls path on the upstream object u and decodes its JSON answer into out (nil: discard).
func (c Client) Upstream(ctx context.Context, u, method, path string, out any) error {
	resp, err := c.call(ctx, c.P.Upstreams, u, method, path, nil)
	return decode(resp, err, out)
}

// decode reads an object's answer into out (nil: discard); an answer other than 200 is an error.
func decode(resp *http.Response, err error, out any) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("object answered HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
