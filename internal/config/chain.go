package config

import "time"

// Chain holds one chain's routing settings, from the richer (object) form of UPSTREAM_CONFIG. The zero value of a
// field means "the default", ChainDefaults, filled in by WithDefaults; the array form yields zero values.
// Parse accepts each field only within the range its doc gives (key in parentheses; durations are Go duration
// strings such as "30s"); a field left out keeps the zero value, so an explicit 0 is refused where 0 means the
// default.
type Chain struct {
	// ChainID is the chain id every upstream must serve (eth_chainId); 0: the majority of upstreams decides.
	// (chain_id) 1 to 2^64-1, a JSON number or a decimal or 0x-hex string.
	ChainID uint64
	// MaxLagBlocks: an upstream this many blocks behind the best is out of rotation. 0: default (10).
	// (max_lag_blocks) 1 to 10000.
	MaxLagBlocks uint64
	// StaleAfter: an upstream whose head has not moved for this long while another's did is out. 0: default (60s).
	// (stale_after) 1s to 1h.
	StaleAfter time.Duration
	// ConfirmAfter: an upstream whose head is more than MaxLagBlocks above every other's is believed after its lead
	// held this long while its head moved, unless another upstream confirmed it first. 0: default (60s).
	// (confirm_after) 1s to 1h.
	ConfirmAfter time.Duration
	// BreakerFailures: consecutive failures that open an upstream's circuit breaker. 0: default (5).
	// (breaker_failures) 1 to 1000.
	BreakerFailures int
	// BreakerOpenFor: how long an open breaker keeps its upstream out before a probe. 0: default (30s).
	// (breaker_open_for) 1s to 1h.
	BreakerOpenFor time.Duration
	// CooldownAfter429: how long an upstream that answered HTTP 429 gets no traffic. 0: default (60s).
	// (cooldown_after_429) 1s to 1h.
	CooldownAfter429 time.Duration
	// ProbeShare: share of requests sent first to a recovering upstream. 0: default (0.05).
	// (probe_share) above 0, at most 0.5.
	ProbeShare float64
	// MaxAttempts: upstreams tried per request at most. 0: default (3).
	// (max_attempts) 1 to 10.
	MaxAttempts int
	// RequestTimeout bounds a request across all its attempts. 0: default (30s).
	// (request_timeout) 1s to 5m.
	RequestTimeout time.Duration
	// HedgePercentile: for reads, when the first attempt has not answered after this percentile of recent
	// latencies (0.5–0.99), a second attempt starts on the next upstream; the first good answer wins. 0: off.
	// (hedge_percentile) 0, or 0.5 to 0.99.
	HedgePercentile float64
	// HedgeMinDelay is the least wait before a hedge. 0: default (50ms).
	// (hedge_min_delay) 1ms to 10s.
	HedgeMinDelay time.Duration
	// DenyMethods, when set, replaces the default deny list for this chain (see DefaultDenyMethods).
	// (deny_methods) an array of patterns (see MatchMethod); the empty array [] denies nothing. nil: not set.
	DenyMethods []string
}

// ChainDefaults holds the default of every chain setting: the one place they are written. internal/balance and
// internal/proxy fill a zero field from it (WithDefaults). HedgePercentile's default is 0 (off), ChainID's none.
var ChainDefaults = Chain{
	MaxLagBlocks: 10, StaleAfter: 60 * time.Second, ConfirmAfter: 60 * time.Second, BreakerFailures: 5,
	BreakerOpenFor: 30 * time.Second, CooldownAfter429: 60 * time.Second, ProbeShare: 0.05, MaxAttempts: 3,
	RequestTimeout: 30 * time.Second, HedgeMinDelay: 50 * time.Millisecond,
}

// WithDefaults returns c with every zero field set from ChainDefaults.
func (c Chain) WithDefaults() Chain {
	d := ChainDefaults
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.MaxLagBlocks == 0 {
		c.MaxLagBlocks = d.MaxLagBlocks
	}
	fill(&c.StaleAfter, d.StaleAfter)
	fill(&c.ConfirmAfter, d.ConfirmAfter)
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = d.BreakerFailures
	}
	fill(&c.BreakerOpenFor, d.BreakerOpenFor)
	fill(&c.CooldownAfter429, d.CooldownAfter429)
	if c.ProbeShare <= 0 {
		c.ProbeShare = d.ProbeShare
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	fill(&c.RequestTimeout, d.RequestTimeout)
	fill(&c.HedgeMinDelay, d.HedgeMinDelay)
	return c
}

// ChainSettings returns the settings of chain (the zero Chain when none are configured).
func (c *Config) ChainSettings(chain string) Chain {
	if c.Chain == nil {
		return Chain{}
	}
	return c.Chain[chain]
}
