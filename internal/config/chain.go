package config

import "time"

// Chain holds one chain's routing settings, from the richer (object) form of UPSTREAM_CONFIG. The zero value of a
// field means "the default", ChainDefaults, filled in by WithDefaults; the array form yields zero values.
// Parse accepts each field only within its row's range in ChainTable (the key in parentheses; durations are Go
// duration strings such as "30s"); a field left out keeps the zero value, so an explicit 0 is refused where 0
// means the default. Defaults and ranges are written in ChainTable only.
type Chain struct {
	// ChainID is the chain id every upstream must serve (eth_chainId); 0: the majority of upstreams decides.
	// (chain_id)
	ChainID uint64
	// MaxLagBlocks: an upstream this many blocks behind the best is out of rotation. (max_lag_blocks)
	MaxLagBlocks uint64
	// StaleAfter: an upstream whose head has not moved for this long while another's did is out. (stale_after)
	StaleAfter time.Duration
	// ConfirmAfter: an upstream whose head is more than MaxLagBlocks above every other's is believed only once the
	// others' heads stood still this long while its own moved (they stalled); an upstream down this long no longer
	// stands against it. (confirm_after)
	ConfirmAfter time.Duration
	// BreakerFailures: consecutive failures that open an upstream's circuit breaker. (breaker_failures)
	BreakerFailures int
	// BreakerOpenFor: how long an open breaker keeps its upstream out before a probe. (breaker_open_for)
	BreakerOpenFor time.Duration
	// CooldownAfter429: how long an upstream that answered HTTP 429 gets no traffic. (cooldown_after_429)
	CooldownAfter429 time.Duration
	// ProbeShare: share of requests sent first to a recovering upstream. (probe_share)
	ProbeShare float64
	// MaxAttempts: upstreams tried per request at most. (max_attempts)
	MaxAttempts int
	// RequestTimeout bounds a request across all its attempts. (request_timeout)
	RequestTimeout time.Duration
	// HedgePercentile: for reads, when the first attempt has not answered after this percentile of recent
	// latencies, a second attempt starts on the next upstream; the first good answer wins. 0: off.
	// (hedge_percentile)
	HedgePercentile float64
	// HedgeMinDelay is the least wait before a hedge. (hedge_min_delay)
	HedgeMinDelay time.Duration
	// DenyMethods, when set, replaces the default deny list for this chain (see DefaultDenyMethods): patterns
	// (see MatchMethod); the empty array [] denies nothing. nil: not set. (deny_methods)
	DenyMethods []string
	// AllowCustomTracers lets debug_trace* calls run a tracer given as JavaScript code (CustomTracer); false, the
	// default, refuses them with ErrMethodDenied. (allow_custom_tracers)
	AllowCustomTracers bool
	// FinalityDepth: when no upstream reports a finalized block (the "finalized" tag), the chain's finalized block
	// is the head minus this many blocks; 0: unset, finality is then unknown. (finality_depth)
	FinalityDepth uint64
	// CacheOff turns the answer cache and the coalescing of identical reads off for this chain. (cache: false)
	CacheOff bool
	// CacheFinalizedTTL, CacheRealtimeTTL and CacheHashTTL are how long a cached answer of each kind is kept
	// (internal/cache). (cache_finalized_ttl, cache_realtime_ttl, cache_hash_ttl)
	CacheFinalizedTTL, CacheRealtimeTTL, CacheHashTTL time.Duration
	// CacheMaxAnswerBytes is the largest answer cached. (cache_max_answer_bytes)
	CacheMaxAnswerBytes int64
	// LogsMaxRange is the widest eth_getLogs range split into pieces. (logs_max_range)
	LogsMaxRange uint64
	// LogsMaxAnswerBytes is the largest merged answer of a split eth_getLogs. (logs_max_answer_bytes)
	LogsMaxAnswerBytes int64
	// CapabilityTTL is how long what an upstream proved it cannot serve is kept (internal/balance, Caps).
	// (capability_ttl)
	CapabilityTTL time.Duration
	// BroadcastWrites: eth_sendRawTransaction goes to every upstream in rotation at once (internal/proxy's
	// broadcast.go). nil: on when the chain has more than one upstream (Broadcast). (broadcast_writes)
	BroadcastWrites *bool
	// SubscriptionPoll is how often the chain's subscription object looks for new blocks while it has
	// subscriptions (durable/subs.go). (subscription_poll)
	SubscriptionPoll time.Duration
}

// Broadcast reports whether the chain broadcasts raw transactions, given how many upstreams it has: its
// broadcast_writes when set, else whether it has more than one.
func (c Chain) Broadcast(upstreams int) bool {
	if c.BroadcastWrites != nil {
		return *c.BroadcastWrites
	}
	return upstreams > 1
}

// ChainDefaults holds the default of every chain setting, read from ChainTable. internal/balance and
// internal/proxy fill a zero field from it (WithDefaults). HedgePercentile's default is 0 (off), ChainID's none.
var ChainDefaults = Chain{
	MaxLagBlocks:     uint64(ChainMaxLagBlocks.DefaultInt()),
	StaleAfter:       ChainStaleAfter.DefaultDuration(),
	ConfirmAfter:     ChainConfirmAfter.DefaultDuration(),
	BreakerFailures:  int(ChainBreakerFailures.DefaultInt()),
	BreakerOpenFor:   ChainBreakerOpenFor.DefaultDuration(),
	CooldownAfter429: ChainCooldownAfter429.DefaultDuration(),
	ProbeShare:       ChainProbeShare.DefaultNumber(),
	MaxAttempts:      int(ChainMaxAttempts.DefaultInt()),
	RequestTimeout:   ChainRequestTimeout.DefaultDuration(),
	HedgePercentile:  ChainHedgePercentile.DefaultNumber(),
	HedgeMinDelay:    ChainHedgeMinDelay.DefaultDuration(),

	CacheFinalizedTTL:   ChainCacheFinalizedTTL.DefaultDuration(),
	CacheRealtimeTTL:    ChainCacheRealtimeTTL.DefaultDuration(),
	CacheHashTTL:        ChainCacheHashTTL.DefaultDuration(),
	CacheMaxAnswerBytes: ChainCacheMaxAnswerBytes.DefaultInt(),
	LogsMaxRange:        uint64(ChainLogsMaxRange.DefaultInt()),
	LogsMaxAnswerBytes:  ChainLogsMaxAnswerBytes.DefaultInt(),
	CapabilityTTL:       ChainCapabilityTTL.DefaultDuration(),
	SubscriptionPoll:    ChainSubscriptionPoll.DefaultDuration(),
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
	fill(&c.CacheFinalizedTTL, d.CacheFinalizedTTL)
	fill(&c.CacheRealtimeTTL, d.CacheRealtimeTTL)
	fill(&c.CacheHashTTL, d.CacheHashTTL)
	fill(&c.CapabilityTTL, d.CapabilityTTL)
	fill(&c.SubscriptionPoll, d.SubscriptionPoll)
	if c.CacheMaxAnswerBytes <= 0 {
		c.CacheMaxAnswerBytes = d.CacheMaxAnswerBytes
	}
	if c.LogsMaxRange == 0 {
		c.LogsMaxRange = d.LogsMaxRange
	}
	if c.LogsMaxAnswerBytes <= 0 {
		c.LogsMaxAnswerBytes = d.LogsMaxAnswerBytes
	}
	return c
}

// ChainSettings returns the settings of chain (the zero Chain when none are configured).
func (c *Config) ChainSettings(chain string) Chain {
	if c.Chain == nil {
		return Chain{}
	}
	return c.Chain[chain]
}
