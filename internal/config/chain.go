package config

import "time"

// Chain holds one chain's routing settings, from the richer (object) form of UPSTREAM_CONFIG. The zero value of a
// field means "the default", which internal/balance documents and fills in; the array form yields zero values.
type Chain struct {
	// ChainID is the chain id every upstream must serve (eth_chainId); 0: the majority of upstreams decides.
	ChainID uint64
	// MaxLagBlocks: an upstream this many blocks behind the best is out of rotation. 0: default (10).
	MaxLagBlocks uint64
	// StaleAfter: an upstream whose head has not moved for this long while another's did is out. 0: default (60s).
	StaleAfter time.Duration
	// BreakerFailures: consecutive failures that open an upstream's circuit breaker. 0: default (5).
	BreakerFailures int
	// BreakerOpenFor: how long an open breaker keeps its upstream out before a probe. 0: default (30s).
	BreakerOpenFor time.Duration
	// CooldownAfter429: how long an upstream that answered HTTP 429 gets no traffic. 0: default (60s).
	CooldownAfter429 time.Duration
	// ProbeShare: share of requests sent first to a recovering upstream. 0: default (0.05).
	ProbeShare float64
	// MaxAttempts: upstreams tried per request at most. 0: default (3).
	MaxAttempts int
	// RequestTimeout bounds a request across all its attempts. 0: default (30s).
	RequestTimeout time.Duration
	// HedgePercentile: for reads, when the first attempt has not answered after this percentile of recent
	// latencies (0.5–0.99), a second attempt starts on the next upstream; the first good answer wins. 0: off.
	HedgePercentile float64
	// HedgeMinDelay is the least wait before a hedge. 0: default (50ms).
	HedgeMinDelay time.Duration
	// DenyMethods, when set, replaces the default deny list for this chain (see DefaultDenyMethods).
	DenyMethods []string
}

// ChainSettings returns the settings of chain (the zero Chain when none are configured).
func (c *Config) ChainSettings(chain string) Chain {
	if c.Chain == nil {
		return Chain{}
	}
	return c.Chain[chain]
}
