// Package app is the balancer as one http.Handler plus an alarm handler: what the wasm main serves. It dispatches
// on the contract's role header to the Worker router or the Durable Objects (chain, upstream, subs, budget).
package app

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/auth"
	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/proxy"
)

// Name is the product name shown by GET /.
const Name = "evmlb"

// Version is the balancer's version, shown by GET /; the build may set it with -ldflags -X.
var Version = "0.1.0"

// App is the balancer. Make one per Go runtime with New; it is safe for concurrent use.
type App struct {
	p    platform.Platform
	auth auth.Basic
	// metricsToken is METRICS_TOKEN: a bearer token that may read /admin/metrics (and nothing else).
	metricsToken auth.Token
	// env is the configuration; cfgErr, when set, is answered to every chain and admin request.
	env       durable.Env
	cfgErr    error
	client    protocol.Client
	plane     *proxy.Plane
	chains    *durable.Chains
	upstreams *durable.Upstreams
	subs      *durable.Subs
	budgets   *durable.Budgets
	// configSource is "UPSTREAM_CONFIG", or "embedded default" when that is unset (GET / shows it).
	configSource string
	// started is when this Go runtime made the App; served counts the requests it was handed, every role.
	// /admin/stats shows both: a runtime kept for the isolate's life shows one start and a growing count.
	started time.Time
	served  atomic.Uint64
	// inflight is the request body bytes this runtime holds now (EVMLB_MAX_INFLIGHT_BYTES bounds it).
	inflight atomic.Int64
	// keys is CLIENT_KEYS (nil: unset, the chains are open to anyone); pool is this runtime's leases of budgets,
	// take its Take (a test replaces it).
	keys *clients.Keys
	pool *budget.Pool
	take func(ctx context.Context, name string, lim budget.Limit, n int) (ok bool, retryAfter time.Duration, day bool)
}

var _ http.Handler = (*App)(nil)

// New reads the configuration through p.Getenv once. A malformed configuration does not fail New: the App
// then answers every chain, admin and object request with ErrConfig naming the problem. An unset or blank
// UPSTREAM_CONFIG is not an error: the App serves config.Default and says so in one log line and in GET /.
func New(p platform.Platform) *App {
	a := &App{p: p, auth: auth.New(p.Getenv), metricsToken: auth.NewToken(p.Getenv, auth.EnvMetricsToken), client: protocol.Client{P: p}, configSource: config.EnvUpstreams, started: p.Now()}
	cfg, s, source, problems := config.Load(p.Getenv) // exactly what `evmlb validate` checks
	if source == config.SourceDefault {
		a.configSource = source
		p.Logf("%s is not set: serving the embedded default (chain ethereum over public endpoints)", config.EnvUpstreams)
	}
	var err error
	if len(problems) > 0 {
		err = problems[0].Err()
		p.Logf("configuration: %v", err)
		cfg = &config.Config{}
	}
	// CLIENT_KEYS is read like UPSTREAM_CONFIG: a malformed one is ErrConfig for every request, never an open
	// balancer. Its chains are checked against the configured ones when those are known.
	var known func(string) bool
	if err == nil {
		known = cfg.HasChain
	}
	keys, kps := clients.Parse(p.Getenv(clients.Env), known)
	if err == nil && len(kps) > 0 {
		err = kps[0].Err()
		p.Logf("configuration: %v", err)
	}
	a.keys = keys
	a.env = durable.Env{P: p, Config: cfg, Settings: s}
	a.cfgErr = err
	a.plane = proxy.New(p, cfg, s)
	a.chains = durable.NewChains(a.env)
	a.upstreams = durable.NewUpstreams(a.env)
	a.subs = durable.NewSubs(a.env, a.plane, a.serveCalls)
	a.subs.Admit = a.admitSocket
	a.budgets = durable.NewBudgets(a.env, a.resolveBudget)
	a.pool = a.newPool(p)
	a.plane.SetBudgets(proxy.Budgets{Pool: a.pool, Limit: upstreamBudget})
	a.take = a.pool.Take
	return a
}

// MaxBodyBytes is the largest client request body (EVMLB_MAX_BODY_BYTES): hosts do not read more.
func (a *App) MaxBodyBytes() int64 { return a.env.Settings.MaxBodyBytes }

// ServeHTTP answers a request the host hands over. A panic is recovered and answered with ErrInternal.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.served.Add(1)
	defer func() {
		if v := recover(); v != nil {
			a.p.Logf("panic serving %s %s: %v", r.Method, clients.RedactPath(r.URL.Path), v) // never a client key
			jsonrpc.ErrInternal.Write(w, nil)
		}
	}()
	role := r.Header.Get(contract.HeaderRole)
	switch {
	case role == contract.RoleWorker:
		a.worker(w, r)
	case a.cfgErr != nil && (role == contract.RoleChain || role == contract.RoleUpstream || role == contract.RoleSubs ||
		role == contract.RoleBudget):
		jsonrpc.ErrConfig.With(a.cfgErr.Error()).Write(w, nil)
	case role == contract.RoleChain:
		a.chains.ServeHTTP(w, r)
	case role == contract.RoleUpstream:
		a.upstreams.ServeHTTP(w, r)
	case role == contract.RoleSubs:
		a.subs.ServeHTTP(w, r)
	case role == contract.RoleBudget:
		a.budgets.ServeHTTP(w, r)
	default:
		jsonrpc.ErrInternal.With("unknown role").Write(w, nil)
	}
}

// Alarm runs the alarm of the Durable Object objectID of the role. An error asks the host to retry.
// With a malformed configuration an alarm does nothing and sets no next alarm: the chain objects start the
// checks again once a good configuration is deployed.
func (a *App) Alarm(ctx context.Context, role, objectID string, retryCount int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in %s alarm: %v", role, v)
		}
		if err != nil {
			a.p.Logf("alarm of %s object %s (retry %d): %v", role, objectID, retryCount, err)
		}
	}()
	switch {
	case a.cfgErr != nil:
		return nil
	case role == contract.RoleUpstream:
		return a.upstreams.Alarm(ctx, objectID)
	case role == contract.RoleChain:
		return nil // chain objects set no alarm
	case role == contract.RoleSubs:
		return a.subs.Alarm(ctx, objectID)
	case role == contract.RoleBudget:
		return nil // budget objects set no alarm
	}
	return fmt.Errorf("unknown role %q", role)
}

// Socket runs a message or close call of a subscription object's WebSocket (CONTRACT.md §7). A panic is
// recovered and logged; with a malformed configuration the call does nothing.
func (a *App) Socket(ctx context.Context, ev platform.SocketEvent) (err error) {
	a.served.Add(1)
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in a socket's %s call: %v", ev.Kind, v)
		}
		if err != nil {
			a.p.Logf("socket %s call of a subs object: %v", ev.Kind, err)
		}
	}()
	if a.cfgErr != nil {
		return nil
	}
	return a.subs.Socket(ctx, ev)
}
