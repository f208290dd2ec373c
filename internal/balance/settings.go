// Package balance is the chain's routing table: what is known of each upstream (height, sync, chain id, live
// outcomes), which upstreams may serve a request, and in what order. Pure Go with an injected clock; the
// ChainDurableObject keeps one Table in memory and feeds it health reports and live outcomes.
package balance

import (
	"time"

	"github.com/evmlb/evmlb/internal/config"
)

// Settings are the routing thresholds of one chain. The zero value of a field means its default. Each field is
// the chain setting of its JSON name: its meaning, default and range are that row of config.ChainTable.
type Settings struct {
	// MaxLagBlocks: an upstream more than this many blocks behind the best is lagging (out of rotation).
	// (dshackle uses 6, eRPC 16.)
	MaxLagBlocks uint64 `json:"max_lag_blocks,omitempty"`
	// StaleAfter: an upstream whose head has not moved for this long while another's did is lagging.
	StaleAfter time.Duration `json:"stale_after,omitempty"`
	// ConfirmAfter: a trusted upstream's head more than MaxLagBlocks above every other upstream's counts only
	// when another upstream confirms it (comes within MaxLagBlocks), or the others' heads have stood still this long
	// while its own moved (they stalled); an upstream whose last height is older than this (down) no longer stands
	// against it. Blocks the upstream serves itself prove nothing (Table.leads).
	ConfirmAfter time.Duration `json:"confirm_after,omitempty"`
	// BreakerFailures: consecutive failures (live or health check) that open the circuit breaker.
	BreakerFailures int `json:"breaker_failures,omitempty"`
	// BreakerOpenFor: how long an open breaker keeps the upstream out before one probe is let through (half-open).
	BreakerOpenFor time.Duration `json:"breaker_open_for,omitempty"`
	// CooldownAfter429: how long an upstream that answered HTTP 429 gets no traffic (dshackle's default).
	CooldownAfter429 time.Duration `json:"cooldown_after_429,omitempty"`
	// ProbeShare: the share of requests that go first to a recovering (half-open) upstream.
	ProbeShare float64 `json:"probe_share,omitempty"`
	// ExpectedChainID: the chain id every upstream must serve; 0 means the majority of reported ids decides.
	ExpectedChainID uint64 `json:"chain_id,omitempty"`
	// FinalityDepth: when no upstream whose height counts reports a finalized block, the chain's is the head minus
	// this many blocks; 0: unset (finality is then unknown). See Table.Finalized.
	FinalityDepth uint64 `json:"finality_depth,omitempty"`
	// CapabilityTTL: how long what an upstream proved it cannot serve is kept (Caps).
	CapabilityTTL time.Duration `json:"capability_ttl,omitempty"`
}

// Defaults fills every zero field with its default (config.ChainDefaults) and clamps every field to its range
// in config.ChainTable, so that Settings made in code rather than parsed keep the same bounds.
func (s Settings) Defaults() Settings {
	d := SettingsOf(config.Chain{})
	if s.MaxLagBlocks == 0 {
		s.MaxLagBlocks = d.MaxLagBlocks
	}
	s.MaxLagBlocks = config.Clamp(config.ChainMaxLagBlocks, s.MaxLagBlocks)
	if s.StaleAfter <= 0 {
		s.StaleAfter = d.StaleAfter
	}
	s.StaleAfter = config.Clamp(config.ChainStaleAfter, s.StaleAfter)
	if s.ConfirmAfter <= 0 {
		s.ConfirmAfter = d.ConfirmAfter
	}
	s.ConfirmAfter = config.Clamp(config.ChainConfirmAfter, s.ConfirmAfter)
	if s.BreakerFailures <= 0 {
		s.BreakerFailures = d.BreakerFailures
	}
	s.BreakerFailures = config.Clamp(config.ChainBreakerFailures, s.BreakerFailures)
	if s.BreakerOpenFor <= 0 {
		s.BreakerOpenFor = d.BreakerOpenFor
	}
	s.BreakerOpenFor = config.Clamp(config.ChainBreakerOpenFor, s.BreakerOpenFor)
	if s.CooldownAfter429 <= 0 {
		s.CooldownAfter429 = d.CooldownAfter429
	}
	s.CooldownAfter429 = config.Clamp(config.ChainCooldownAfter429, s.CooldownAfter429)
	if s.ProbeShare <= 0 {
		s.ProbeShare = d.ProbeShare
	}
	s.ProbeShare = config.Clamp(config.ChainProbeShare, s.ProbeShare)
	s.FinalityDepth = config.Clamp(config.ChainFinalityDepth, s.FinalityDepth)
	if s.CapabilityTTL <= 0 {
		s.CapabilityTTL = d.CapabilityTTL
	}
	s.CapabilityTTL = config.Clamp(config.ChainCapabilityTTL, s.CapabilityTTL)
	return s
}

// PollDelay is the health-check interval of an upstream after failures consecutive failed checks: the base
// interval, doubled per failure, at most max.
func PollDelay(base time.Duration, failures int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}

// SettingsOf maps a chain's configured settings, defaults filled in, to the table's.
func SettingsOf(c config.Chain) Settings {
	c = c.WithDefaults()
	return Settings{
		MaxLagBlocks: c.MaxLagBlocks, StaleAfter: c.StaleAfter, ConfirmAfter: c.ConfirmAfter, BreakerFailures: c.BreakerFailures,
		BreakerOpenFor: c.BreakerOpenFor, CooldownAfter429: c.CooldownAfter429, ProbeShare: c.ProbeShare,
		ExpectedChainID: c.ChainID, FinalityDepth: c.FinalityDepth, CapabilityTTL: c.CapabilityTTL,
	}
}
