package durable

import (
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
)

// storedRow is an upstream's row of the table as the chain object stores it (key keyRowPrefix + name): everything
// the table knows of it, so that an object evicted and loaded again routes as before. Its JSON names are those
// rows were stored under when the table's own type was stored as it was: rows already in storage load as they are
// (TestStoredRowOfOldLoads). The table's row (balance.Upstream), the snapshot's (protocol.Row) and admin's
// (adminapi.UpstreamRow) are types of their own; storedRowOf and row are the only conversions.
type storedRow struct {
	Name          string        `json:"name"`
	Height        uint64        `json:"height"`
	HeightMovedAt time.Time     `json:"height_moved_at"`
	ChainID       uint64        `json:"chain_id,omitempty"`
	Syncing       bool          `json:"syncing,omitempty"`
	ReportedAt    time.Time     `json:"reported_at"`
	LastError     retry.Class   `json:"last_error,omitempty"`
	LastErrorAt   time.Time     `json:"last_error_at"`
	CooldownUntil time.Time     `json:"cooldown_until"`
	Breaker       storedBreaker `json:"breaker"`
	LatencyMS     float64       `json:"latency_ewma_ms"`
	ErrorRate     float64       `json:"error_rate_ewma"`
	Requests      uint64        `json:"requests"`
	HeightAt      time.Time     `json:"height_at,omitzero"`
	Unserved      uint64        `json:"unserved,omitempty"`
	Proven        uint64        `json:"proven,omitempty"`
	LeadSince     time.Time     `json:"lead_since,omitzero"`
	LastStatus    int           `json:"last_http_status,omitempty"`
	Finalized     uint64        `json:"finalized,omitempty"`
	// Caps (issue 20) is stored so that an evicted object does not learn it all again; its archive is the
	// configuration's, set again as the table loads (Chains.setArchive).
	Caps protocol.Caps `json:"caps,omitzero"`
}

type storedBreaker struct {
	Failures  int       `json:"consecutive_failures"`
	OpenUntil time.Time `json:"open_until"`
}

func storedRowOf(u balance.Upstream) storedRow {
	return storedRow{
		Name: u.Name, Height: u.Height, HeightMovedAt: u.HeightMovedAt, ChainID: u.ChainID, Syncing: u.Syncing,
		ReportedAt: u.ReportedAt, LastError: u.LastError, LastErrorAt: u.LastErrorAt, CooldownUntil: u.CooldownUntil,
		Breaker:   storedBreaker{Failures: u.Breaker.Failures, OpenUntil: u.Breaker.OpenUntil},
		LatencyMS: u.LatencyMS, ErrorRate: u.ErrorRate, Requests: u.Requests, HeightAt: u.HeightAt,
		Unserved: u.Unserved, Proven: u.Proven, LeadSince: u.LeadSince, LastStatus: u.LastStatus, Finalized: u.Finalized,
		Caps: protocol.CapsOf(u.Caps, time.Time{}),
	}
}

func (r storedRow) row() balance.Upstream {
	return balance.Upstream{
		Name: r.Name, Height: r.Height, HeightMovedAt: r.HeightMovedAt, ChainID: r.ChainID, Syncing: r.Syncing,
		ReportedAt: r.ReportedAt, LastError: r.LastError, LastErrorAt: r.LastErrorAt, CooldownUntil: r.CooldownUntil,
		Breaker:   balance.Breaker{Failures: r.Breaker.Failures, OpenUntil: r.Breaker.OpenUntil},
		LatencyMS: r.LatencyMS, ErrorRate: r.ErrorRate, Requests: r.Requests, HeightAt: r.HeightAt,
		Unserved: r.Unserved, Proven: r.Proven, LeadSince: r.LeadSince, LastStatus: r.LastStatus, Finalized: r.Finalized,
		Caps: r.Caps.Balance(),
	}
}

// rowView is the table's row of an upstream as admin shows it, with its state and reason now.
func rowView(u balance.Upstream, state balance.State, reason string, now time.Time) adminapi.UpstreamRow {
	return adminapi.UpstreamRow{
		Name: u.Name, Height: u.Height, HeightMovedAt: u.HeightMovedAt, ChainID: u.ChainID, Syncing: u.Syncing,
		ReportedAt: u.ReportedAt, LastError: string(u.LastError), LastErrorAt: u.LastErrorAt, CooldownUntil: u.CooldownUntil,
		Breaker:   adminapi.Breaker{Failures: u.Breaker.Failures, OpenUntil: u.Breaker.OpenUntil},
		LatencyMS: u.LatencyMS, ErrorRate: u.ErrorRate, Requests: u.Requests, HeightAt: u.HeightAt,
		Unserved: u.Unserved, Proven: u.Proven, LeadSince: u.LeadSince, LastStatus: u.LastStatus, Finalized: u.Finalized,
		Caps:  adminapi.Caps(protocol.CapsOf(u.Caps, now)),
		State: string(state), Reason: reason,
	}
}

// view is the stored health as admin shows it.
func (h health) view() adminapi.UpstreamHealth {
	return adminapi.UpstreamHealth{
		OK: h.OK, Height: h.Height, ChainID: h.ChainID, LastCheck: h.LastCheck, LastOK: h.LastOK,
		LastErrorClass: h.LastErrorClass, Syncing: h.Syncing, Failures: h.Failures, Unserved: h.Unserved,
		Proven: h.Proven, Lacks: h.Lacks, BatchOff: h.BatchOff, LastStatus: h.LastStatus, Finalized: h.Finalized,
		FinalizedHash: h.FinalizedHash, Replaced: h.Replaced, StateProbeAt: h.StateProbeAt,
	}
}
