package durable

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/stats"
)

// Storage keys of an Upstream object.
const (
	keyName   = "name"      // chain + "/" + name, so that alarms know who they are
	keyHealth = "health"    // health JSON
	keyStats  = "stats"     // stats.Stats JSON
	keySeq    = "stats_seq" // the last handover of counts from the chain stored in keyStats (ReportAnswer.Seq)
)

// Upstreams serves every UpstreamDurableObject instance of the runtime.
type Upstreams struct {
	env    Env
	client protocol.Client
	objs   *registry[upstream]
}

// NewUpstreams makes the Upstream objects' handler.
func NewUpstreams(env Env) *Upstreams {
	return &Upstreams{env: env, client: protocol.Client{P: env.P}, objs: newRegistry(func(string) *upstream { return &upstream{} })}
}

var _ http.Handler = (*Upstreams)(nil)

// health is what an upstream's health checks found, as stored (keyHealth); admin shows it as
// adminapi.UpstreamHealth (health.view).
type health struct {
	OK             bool      `json:"ok"`
	Height         uint64    `json:"height"`
	ChainID        string    `json:"chain_id,omitempty"`
	LastCheck      time.Time `json:"last_check,omitzero"`
	LastOK         time.Time `json:"last_ok,omitzero"`
	LastErrorClass string    `json:"last_error_class,omitempty"`
	// LastStatus is the HTTP status of the last check's answer when it failed with one (0: none came).
	LastStatus int `json:"last_http_status,omitempty"`
	// Syncing is eth_syncing's verdict at the last check (false when the node does not offer the method).
	Syncing bool `json:"syncing,omitempty"`
	// Failures counts consecutive failed checks; the next check waits longer with each (see balance.PollDelay).
	Failures int `json:"consecutive_failures,omitempty"`
	// Unserved is the head the previous check found, which the upstream still claims but could not serve at the
	// last check (0: none).
	Unserved uint64 `json:"unserved,omitempty"`
	// Proven is the head the last check found the upstream able to serve (the previous head, or on a first check
	// the one it got); 0: not proven at that check.
	Proven uint64 `json:"proven,omitempty"`
	// Lacks is the block the chain asked for (its head floor) that the last check found missing (0: none).
	Lacks uint64 `json:"lacks,omitempty"`
	// BatchOff is when the upstream refused a batch health check; checks go call by call for a while.
	BatchOff time.Time `json:"batch_off,omitzero"`
	// Finalized is the block the last check found at the "finalized" tag (0: none; issue 19).
	Finalized uint64 `json:"finalized,omitempty"`
	// FinalizedHash is that block's hash ("" when none or unknown): the next check asks the block at Finalized
	// again and compares (healthcheck.Batch's final).
	FinalizedHash string `json:"finalized_hash,omitempty"`
	// Replaced is the block the last check found replaced: an earlier check's finalized block that the upstream
	// now answers with another hash, or null (0: none; reported to the chain, which moves its cache epoch).
	Replaced uint64 `json:"replaced,omitempty"`
	// StateProbeAt is when the last state probe was sent (issue 20; zero: never): the next is due capability_ttl
	// later.
	StateProbeAt time.Time `json:"state_probe_at,omitzero"`
}

// upstream is one instance's memory, loaded from storage on first use.
type upstream struct {
	mu     sync.Mutex
	loaded bool
	ident  string // chain + "/" + name, "" until known
	health health
	stats  stats.Stats
	seq    uint64 // the last handover stored (keySeq)
	ask    uint64 // the block the chain asked the next check to ask for (ReportAnswer.Ask); memory only
}

// load reads the instance's storage once; name (from the caller's header, "" on alarms) is stored if none is.
func (o *upstream) load(ctx context.Context, st platform.Storage, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.loaded {
		kv, err := st.List(ctx, "")
		if err != nil {
			return err
		}
		o.ident = kv[keyName]
		if v := kv[keyHealth]; v != "" {
			_ = json.Unmarshal([]byte(v), &o.health) // a damaged value starts afresh
		}
		o.stats, _ = stats.Parse(kv[keyStats])
		o.seq, _ = strconv.ParseUint(kv[keySeq], 10, 64)
		o.loaded = true
	}
	if o.ident == "" && name != "" {
		if err := st.Put(ctx, map[string]string{keyName: name}); err != nil {
			return err
		}
		o.ident = name
	}
	return nil
}

// config finds the object's upstream in the configuration.
func (o *upstream) config(c *config.Config) (config.Upstream, bool) {
	o.mu.Lock()
	ident := o.ident
	o.mu.Unlock()
	chain, name, _ := strings.Cut(ident, "/")
	return c.Lookup(chain, name)
}

func (us *Upstreams) target(u config.Upstream) forward.Target {
	s := us.env.Settings
	timeout := s.AttemptTimeout
	if u.AttemptTimeout > 0 {
		timeout = u.AttemptTimeout
	}
	return forward.Target{Post: us.env.P.Post, URL: u.URL, Timeout: timeout, MaxBytes: s.MaxResponseBytes, Now: us.env.P.Now}
}

// ServeHTTP serves the object named by the contract's object header.
func (us *Upstreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(contract.HeaderObject)
	st := us.env.P.StorageFor(id)
	if st == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	o := us.objs.get(id, r.Header.Get(contract.HeaderInstance))
	if err := o.load(r.Context(), st, r.Header.Get(protocol.HeaderName)); err != nil {
		us.env.P.Logf("upstream object: storage: %v", err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	switch r.URL.Path {
	case protocol.PathEnsure, protocol.PathStart:
		us.schedule(w, r, st, r.URL.Path == protocol.PathStart)
	case protocol.PathCheck:
		rep, _, err := us.runCheck(r.Context(), id, false) // a first check a client's request waits for: no state probe
		if err != nil {
			us.env.P.Logf("upstream object: check: %v", err)
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
		writeJSON(w, rep)
	case protocol.PathStatus:
		us.status(w, r, o, st)
	case protocol.PathStats:
		us.statsOf(w, o)
	case protocol.PathClear:
		us.clear(w, r.Context(), id, st)
	default:
		jsonrpc.ErrNotFound.Write(w, nil)
	}
}

// schedule sets the alarm to now: always with force (/start), else only when none is set (/ensure).
func (us *Upstreams) schedule(w http.ResponseWriter, r *http.Request, st platform.Storage, force bool) {
	_, set, err := st.GetAlarm(r.Context())
	if err == nil && (force || !set) {
		err = st.SetAlarm(r.Context(), us.env.P.Now())
	}
	if err != nil {
		us.env.P.Logf("upstream object: alarm: %v", err)
		jsonrpc.ErrInternal.With("alarm").Write(w, nil)
		return
	}
	writeJSON(w, struct{}{})
}

func (us *Upstreams) status(w http.ResponseWriter, r *http.Request, o *upstream, st platform.Storage) {
	next, _, err := st.GetAlarm(r.Context())
	if err != nil {
		jsonrpc.ErrInternal.With("alarm").Write(w, nil)
		return
	}
	u, _ := o.config(us.env.Config)
	o.mu.Lock()
	s := adminapi.UpstreamStatus{Chain: u.Chain, Name: u.Name, UpstreamHealth: o.health.view(), NextCheck: next}
	o.mu.Unlock()
	if u.URL != "" {
		s.Endpoint = u.Endpoint()
	}
	writeJSON(w, s)
}

// UpstreamStats is an Upstream object's /stats answer: its stored statistics, and the number of the last handover
// of counts from the chain they include (keySeq), which tells which of the chain's handed counts (ChainStats) they
// include.
type UpstreamStats struct {
	adminapi.UpstreamStats
	Seq uint64 `json:"seq,omitempty"`
}

func (us *Upstreams) statsOf(w http.ResponseWriter, o *upstream) {
	o.mu.Lock()
	defer o.mu.Unlock()
	chain, name, _ := strings.Cut(o.ident, "/")
	writeJSON(w, UpstreamStats{UpstreamStats: adminapi.UpstreamStats{Chain: chain, Name: name, Methods: o.stats.Views()}, Seq: o.seq})
}

func (us *Upstreams) clear(w http.ResponseWriter, ctx context.Context, id string, st platform.Storage) {
	if err := us.clearObject(ctx, id, st); err != nil {
		us.env.P.Logf("upstream object: clear: %v", err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	writeJSON(w, struct{}{})
}

func (us *Upstreams) clearObject(ctx context.Context, id string, st platform.Storage) error {
	us.objs.forget(id)
	if err := st.DeleteAlarm(ctx); err != nil {
		return err
	}
	return st.DeleteAll(ctx)
}
