package durable

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/routing"
)

// Storage keys of a Chain object.
const (
	keyUpstreams = "upstreams" // JSON array of the upstream names stored by the last sync
	keyRowPrefix = "up:"       // + name: the routing.State of that upstream
)

// ClassObject is the failure class of an Upstream object that could not be reached or answered other than
// with the provider's answer or a failure class.
const ClassObject retry.Class = "object_error"

// Chains serves every ChainDurableObject instance of the runtime.
type Chains struct {
	env    Env
	client Client
	objs   *registry[chain]
}

// NewChains makes the Chain objects' handler.
func NewChains(env Env) *Chains {
	return &Chains{env: env, client: Client{env.P}, objs: newRegistry(func(string) *chain { return &chain{} })}
}

var _ http.Handler = (*Chains)(nil)

// chain is one instance's memory: the routing table, loaded from storage on first use.
type chain struct {
	mu      sync.Mutex
	table   *routing.Table // nil until loaded
	ensured bool           // the upstream objects were asked to /ensure by this instance
}

// ChainStatus is the /status answer.
type ChainStatus struct {
	Chain      string          `json:"chain"`
	BestHeight uint64          `json:"best_height"`
	Upstreams  []routing.State `json:"upstreams"`
}

// SyncResult is the /sync answer.
type SyncResult struct {
	Chain     string   `json:"chain"`
	Upstreams []string `json:"upstreams"`
	Removed   []string `json:"removed"`
}

func (cs *Chains) names(chain string) []string {
	var names []string
	for _, u := range cs.env.Config.ChainUpstreams(chain) {
		names = append(names, u.Name)
	}
	return names
}

// load builds the table from the configuration and the rows in storage, once per instance.
func (cs *Chains) load(ctx context.Context, o *chain, st platform.Storage, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.table != nil {
		return nil
	}
	kv, err := st.List(ctx, keyRowPrefix)
	if err != nil {
		return err
	}
	saved := map[string]routing.State{}
	for k, v := range kv {
		var s routing.State
		if json.Unmarshal([]byte(v), &s) == nil {
			saved[strings.TrimPrefix(k, keyRowPrefix)] = s
		}
	}
	o.table = routing.NewTable(cs.names(name), saved)
	return nil
}

// ServeHTTP serves the object named by the contract's object header; the chain's name comes in HeaderName.
func (cs *Chains) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, name := r.Header.Get(contract.HeaderObject), r.Header.Get(HeaderName)
	if !cs.env.Config.HasChain(name) {
		jsonrpc.ErrUnknownChain.Write(w, nil)
		return
	}
	st := cs.env.P.StorageFor(id)
	if st == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	o := cs.objs.get(id, r.Header.Get(contract.HeaderInstance))
	if err := cs.load(r.Context(), o, st, name); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	switch r.URL.Path {
	case PathRPC:
		cs.rpc(w, r, o, st, name)
	case PathReport:
		cs.report(w, r, o, st, name)
	case PathStatus:
		o.mu.Lock()
		s := ChainStatus{Chain: name, BestHeight: o.table.Best(), Upstreams: o.table.Rows()}
		o.mu.Unlock()
		writeJSON(w, s)
	case PathSync:
		cs.sync(w, r, o, st, name)
	case PathClear:
		cs.objs.forget(id)
		if err := st.DeleteAll(r.Context()); err != nil {
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
		writeJSON(w, struct{}{})
	default:
		jsonrpc.ErrNotFound.Write(w, nil)
	}
}

// rpc tries the upstreams in the table's order until one answers; each failure marks its upstream unhealthy.
// A request holding a write goes to the next upstream only when retry's table says the write never left.
func (cs *Chains) rpc(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		jsonrpc.ErrInternal.With("reading the request").Write(w, nil)
		return
	}
	o.mu.Lock()
	ensure := !o.ensured
	o.ensured = true
	order := o.table.Order()
	o.mu.Unlock()
	if ensure {
		cs.fanOut(ctx, name, order, PathEnsure)
	}
	var methods []string // parsed on the first failure only
	for _, up := range order {
		resp, class := cs.attempt(ctx, name+"/"+up, body)
		if class == retry.OK {
			defer resp.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return
		}
		if class == forward.Canceled || ctx.Err() != nil {
			break // the client went away: blame no one
		}
		cs.env.P.Logf("chain %s: upstream %s failed (%s)", name, up, class)
		o.mu.Lock()
		row, _ := o.table.Fail(up, string(class), cs.env.P.Now())
		o.mu.Unlock()
		cs.saveRow(ctx, st, name, row)
		if methods == nil {
			methods = jsonrpc.Methods(body)
		}
		for _, m := range methods {
			if !retry.Retryable(m, class) {
				req, _ := jsonrpc.Parse(body, len(body))
				jsonrpc.ErrUpstreamFailed.With(string(class)+"; "+m+" is not sent twice").Write(w, req)
				return
			}
		}
	}
	req, _ := jsonrpc.Parse(body, len(body)) // only the ids are needed; the worker validated the body
	jsonrpc.ErrNoUpstream.Write(w, req)
}

// attempt sends body to the upstream object u and returns its answer (to be closed by the caller) when the
// class is retry.OK, else the failure class.
func (cs *Chains) attempt(ctx context.Context, u string, body []byte) (*http.Response, retry.Class) {
	resp, err := cs.client.UpstreamRPC(ctx, u, body)
	if err != nil {
		return nil, ClassObject
	}
	class := retry.Class(resp.Header.Get(HeaderFailure))
	if class == retry.OK && resp.StatusCode/100 != 2 {
		class = ClassObject
	}
	if class != retry.OK {
		resp.Body.Close()
		return nil, class
	}
	return resp, retry.OK
}

func (cs *Chains) saveRow(ctx context.Context, st platform.Storage, chain string, row routing.State) {
	b, _ := json.Marshal(row)
	if err := st.Put(ctx, map[string]string{keyRowPrefix + row.Name: string(b)}); err != nil {
		cs.env.P.Logf("chain %s: storage: %v", chain, err)
	}
}

func (cs *Chains) report(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var rep routing.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		jsonrpc.ErrInvalidRequest.With("report").Write(w, nil)
		return
	}
	o.mu.Lock()
	row, ok := o.table.Report(rep)
	o.mu.Unlock()
	if ok {
		cs.saveRow(r.Context(), st, name, row)
	}
	writeJSON(w, struct{}{})
}

// sync stores the configured list, drops the rows and objects of upstreams no longer configured, and starts
// the health checks of the configured ones now.
func (cs *Chains) sync(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	ctx := r.Context()
	names := cs.names(name)
	var old []string
	if v, ok, err := st.Get(ctx, keyUpstreams); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &old)
	}
	var removed []string
	for _, n := range old {
		if !slices.Contains(names, n) {
			removed = append(removed, n)
		}
	}
	list, _ := json.Marshal(names)
	err := st.Put(ctx, map[string]string{keyUpstreams: string(list)})
	if err == nil && len(removed) > 0 {
		keys := make([]string, len(removed))
		for i, n := range removed {
			keys[i] = keyRowPrefix + n
		}
		err = st.Delete(ctx, keys...)
	}
	if err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	o.mu.Lock()
	o.ensured = true
	o.mu.Unlock()
	cs.fanOut(ctx, name, removed, PathClear)
	cs.fanOut(ctx, name, names, PathStart)
	writeJSON(w, SyncResult{Chain: name, Upstreams: names, Removed: removed})
}

// fanOut calls path on the named upstream objects of the chain concurrently; failures are logged.
func (cs *Chains) fanOut(ctx context.Context, chain string, names []string, path string) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() {
			if err := cs.client.Upstream(ctx, chain+"/"+n, http.MethodPost, path, nil); err != nil {
				cs.env.P.Logf("chain %s: %s of upstream %s: %v", chain, path, n, err)
			}
		})
	}
	wg.Wait()
}
