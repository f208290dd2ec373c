// Package adminapi is the JSON of the admin API that crosses packages: what the Durable Objects answer to the
// Worker's admin calls (ChainStatus, UpstreamStatus, UpstreamStats, SyncResult) and what the Worker serves on
// /admin/chains, /admin/upstreams, /admin/stats and /admin/init_upstreams from them, which `evmlb status` reads.
// Pure types: the objects (durable/) fill them, the Worker (worker/app) serves them, the CLI (host/internal/cli)
// decodes them, and none of these has to import another for it. Field names are the API: keep them.
//
// The dashboard's JSON (/admin/dashboard.json) and the runtime's (/admin/stats "runtime") stay in worker/app: only
// the Worker makes them and only the page reads them.
package adminapi

import (
	"time"

	"github.com/evmlb/evmlb/internal/stats"
)

// ChainStatus is a chain object's /status answer.
type ChainStatus struct {
	Chain string `json:"chain"`
	// BestHeight is the highest height that counts (balance.Table.Best): trusted and confirmed.
	BestHeight uint64 `json:"best_height"`
	// Head is the best height that counts, or the highest eth_blockNumber served if higher: eth_blockNumber
	// never answers less (until the floor yields; see balance.Table.Head).
	Head uint64 `json:"head"`
	// ChainID is the chain's verified chain id (configured, or most upstreams'); 0 while unknown.
	ChainID uint64 `json:"chain_id,omitempty"`
	// ChainIDUndecided says why the chain answers every request with an error (-32073) when its upstreams
	// disagree on the chain id and nothing breaks the tie (balance.Table.UndecidedReason); "" when they do not.
	ChainIDUndecided string `json:"chain_id_undecided,omitempty"`
	// Finalized is the chain's finalized block (balance.Table.Finalized): what at least two upstreams whose
	// heights count report, or the head minus finality_depth; 0 while unknown. CacheEpoch is the chain's cache
	// generation (balance.Table.CacheEpoch), moved by a purge or by finality going back.
	Finalized  uint64        `json:"finalized,omitempty"`
	CacheEpoch uint64        `json:"cache_epoch"`
	Upstreams  []UpstreamRow `json:"upstreams"`
}

// UpstreamRow is one upstream in the chain's routing table as admin shows it: what the table knows of it
// (balance.Upstream), with its state now. durable makes it from the table's row.
type UpstreamRow struct {
	Name          string    `json:"name"`
	Height        uint64    `json:"height"`
	HeightMovedAt time.Time `json:"height_moved_at"`
	ChainID       uint64    `json:"chain_id,omitempty"`
	Syncing       bool      `json:"syncing,omitempty"`
	ReportedAt    time.Time `json:"reported_at"`
	// LastError is the failure class (internal/retry) of its last failure.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at"`
	CooldownUntil time.Time `json:"cooldown_until"`
	Breaker       Breaker   `json:"breaker"`
	LatencyMS     float64   `json:"latency_ewma_ms"`
	ErrorRate     float64   `json:"error_rate_ewma"`
	Requests      uint64    `json:"requests"`
	// HeightAt is when Height was last reported by a successful check (zero: never; Height 0 is then unknown).
	HeightAt time.Time `json:"height_at,omitzero"`
	// Unserved is the claimed head the last check found it could not serve; 0: none.
	Unserved uint64 `json:"unserved,omitempty"`
	// Proven is the highest head its checks found it serving.
	Proven uint64 `json:"proven,omitempty"`
	// LeadSince is when its height became more than max_lag_blocks above every other trusted upstream's.
	LeadSince time.Time `json:"lead_since,omitzero"`
	// LastStatus is the HTTP status of LastError when a health check's answer had one (0: none known).
	LastStatus int `json:"last_http_status,omitempty"`
	// Finalized is the finalized block its last successful check reported (the "finalized" tag); 0: none.
	Finalized uint64 `json:"finalized,omitempty"`
	// Caps is what it proved it can and cannot serve (issue 20), proofs that expired left out.
	Caps Caps `json:"caps,omitzero"`
	// State is its routing state (balance.State: healthy, lagging, syncing, wrong_chain, …).
	State string `json:"state"`
	// Reason says why the upstream is out of rotation ("" when it is in).
	Reason string `json:"reason,omitempty"`
}

// Caps is what an upstream proved it can and cannot serve (balance.Caps): the methods it answered as not offered,
// each with when it is asked again; the block at and below which it lacks the state, and until when that holds;
// the block from which it served the state, and until when; archive: configured as an archive node.
type Caps struct {
	Archive         bool                 `json:"archive,omitempty"`
	Methods         map[string]time.Time `json:"lacks_methods,omitempty"`
	StateBelow      uint64               `json:"lacks_state_below,omitempty"`
	StateBelowUntil time.Time            `json:"lacks_state_until,omitzero"`
	StateFrom       uint64               `json:"has_state_from,omitempty"`
	StateFromUntil  time.Time            `json:"has_state_until,omitzero"`
}

// Breaker is an upstream's circuit breaker (balance.Breaker).
type Breaker struct {
	Failures  int       `json:"consecutive_failures"`
	OpenUntil time.Time `json:"open_until"`
}

// SyncResult is a chain object's /sync answer.
type SyncResult struct {
	Chain     string   `json:"chain"`
	Upstreams []string `json:"upstreams"`
	Removed   []string `json:"removed"`
}

// UpstreamHealth is what an upstream's health checks found.
type UpstreamHealth struct {
	OK             bool      `json:"ok"`
	Height         uint64    `json:"height"`
	ChainID        string    `json:"chain_id,omitempty"`
	LastCheck      time.Time `json:"last_check,omitzero"`
	LastOK         time.Time `json:"last_ok,omitzero"`
	LastErrorClass string    `json:"last_error_class,omitempty"`
	// Syncing is eth_syncing's verdict at the last check (false when the node does not offer the method).
	Syncing bool `json:"syncing,omitempty"`
	// Failures counts consecutive failed checks; the next check waits longer with each.
	Failures int `json:"consecutive_failures,omitempty"`
	// Unserved is the head the previous check found, which the upstream still claims but could not serve at the
	// last check (0: none).
	Unserved uint64 `json:"unserved,omitempty"`
	// Proven is the head the last check found the upstream able to serve; 0: not proven at that check.
	Proven uint64 `json:"proven,omitempty"`
	// Lacks is the block the chain asked for (its head floor) that the last check found missing; 0: none.
	Lacks uint64 `json:"lacks,omitempty"`
	// BatchOff is when the upstream refused a batch health check; checks go call by call for a while.
	BatchOff time.Time `json:"batch_off,omitzero"`
	// LastStatus is the HTTP status of the last check's answer when it failed with one (0: none came).
	LastStatus int `json:"last_http_status,omitempty"`
	// Finalized is the block the last check found at the "finalized" tag; 0: none. FinalizedHash is its hash,
	// which the next check compares with that upstream's block at the same number ("" when none).
	Finalized     uint64 `json:"finalized,omitempty"`
	FinalizedHash string `json:"finalized_hash,omitempty"`
	// Replaced is the finalized block an earlier check found that the last check found replaced (another hash,
	// or null): the chain's cache epoch moved (0: none).
	Replaced uint64 `json:"replaced,omitempty"`
	// StateProbeAt is when the last probe of how far back its state reaches was sent (issue 20; absent: never).
	StateProbeAt time.Time `json:"state_probe_at,omitzero"`
}

// UpstreamStatus is an upstream object's /status answer.
type UpstreamStatus struct {
	Chain    string `json:"chain"`
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	UpstreamHealth
	NextCheck time.Time `json:"next_check,omitzero"`
}

// UpstreamStats is an upstream object's /stats answer.
type UpstreamStats struct {
	Chain   string                `json:"chain"`
	Name    string                `json:"name"`
	Methods map[string]stats.View `json:"methods"`
}

// ChainSync is one chain's entry in the /admin/init_upstreams answer.
type ChainSync struct {
	SyncResult
	Error string `json:"error,omitempty"`
}

// ChainSummary is one chain's entry in /admin/chains.
type ChainSummary struct {
	Chain      string `json:"chain"`
	BestHeight uint64 `json:"best_height"`
	Upstreams  int    `json:"upstreams"`
	Healthy    int    `json:"healthy"`
	// Head is the best height that counts, or the highest eth_blockNumber served if higher; eth_blockNumber never
	// answers less until that floor yields to what every trusted upstream reports.
	Head uint64 `json:"head"`
	// ChainID is the chain's verified chain id (configured, or most upstreams'); 0 while unknown.
	ChainID uint64 `json:"chain_id,omitempty"`
	// ChainIDUndecided says why the chain answers every request with an error (-32073) when its upstreams
	// disagree on the chain id and nothing breaks the tie (balance.Table.UndecidedReason); "" when they do not.
	ChainIDUndecided string `json:"chain_id_undecided,omitempty"`
	// Finalized is the chain's finalized block (0: unknown) and CacheEpoch its cache generation (ChainStatus).
	Finalized  uint64 `json:"finalized,omitempty"`
	CacheEpoch uint64 `json:"cache_epoch"`
	// Table is the chain object's routing table.
	Table []UpstreamRow `json:"table"`
	// Sockets and Subscriptions are the chain's open WebSockets and their subscriptions; Follower what its
	// subscription object did (SubsStatus; absent when the object could not be asked).
	Sockets       int         `json:"sockets"`
	Subscriptions int         `json:"subscriptions"`
	Follower      *SubsStatus `json:"follower,omitempty"`
	Error         string      `json:"error,omitempty"`
}

// SubsCounts are a subscription object's counts since it began, kept in its storage.
type SubsCounts struct {
	Events   uint64 `json:"events"`   // notifications sent (one per socket and subscription)
	Reorgs   uint64 `json:"reorgs"`   // follower steps that removed blocks
	Deep     uint64 `json:"deep"`     // reorgs deeper than the kept chain (subs.Report.Deep)
	Skipped  uint64 `json:"skipped"`  // heights never sent (a gap longer than the kept chain)
	Dropped  uint64 `json:"dropped"`  // walks dropped because every upstream refused them
	HeadSkew uint64 `json:"disagree"` // alarms at which two upstreams gave the verified head different hashes
}

// SubsStatus is the /status answer (durable/subs.go): open sockets, subscriptions, and the counts.
type SubsStatus struct {
	Sockets       int        `json:"sockets"`
	Subscriptions int        `json:"subscriptions"`
	Tip           uint64     `json:"tip"` // the follower's last emitted height (0: not following)
	Counts        SubsCounts `json:"counts"`
}

// CachePurge is a chain object's /purge answer, and one chain's entry in the POST /admin/cache/purge answer: the
// chain's new cache epoch (0 with Error when its object could not be reached).
type CachePurge struct {
	Chain      string `json:"chain"`
	CacheEpoch uint64 `json:"cache_epoch"`
	Error      string `json:"error,omitempty"`
}

// UpstreamEntry is one upstream's entry in /admin/upstreams.
type UpstreamEntry struct {
	UpstreamStatus
	// State is the upstream's routing state in its chain's table (healthy, lagging, syncing, wrong_chain, …);
	// Reason says why it is out of rotation, when it is.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// StatsEntry is one upstream's entry in /admin/stats.
type StatsEntry struct {
	UpstreamStats
	Error string `json:"error,omitempty"`
}
