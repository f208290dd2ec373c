package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file is the settings table: every chain setting of the object form of UPSTREAM_CONFIG, the per-upstream
// attempt_timeout and every EVMLB_* variable, each with its name, default, range and the line README.md gives it.
// Parsing (parseChain, parseEntry, LoadSettingsAll), the defaults (ChainDefaults, DefaultSettings) and
// internal/balance's clamps (Settings.Defaults) all read their numbers from here, and readme_test.go holds
// README.md's chain settings and Tuning tables to ChainTable and TuningTable.

// Kind is how a setting's value is written.
type Kind uint8

// The kinds of settings.
const (
	Integer  Kind = iota + 1 // a JSON integer (no fraction, no exponent); in a variable, a decimal integer
	Bytes                    // an Integer counting bytes; the table writes its bounds as "5 MiB", "1 KiB"
	Duration                 // a Go duration string ("30s"), a JSON string in UPSTREAM_CONFIG
	Number                   // a JSON number
	ChainIDs                 // a chain id: a JSON number, or a decimal or 0x-hex string
	Patterns                 // a list of method patterns (MatchMethod)
	Origins                  // a list of browser origins
	Boolean                  // true or false
)

// Setting is one row of the settings table. Default, Min and Max are written as README.md writes them ("60s",
// "10", "5 MiB", "0.05") and read once, when the package starts; a row that does not read panics then, so that
// every test of every package that imports config catches it.
type Setting struct {
	// Name is the setting's key in UPSTREAM_CONFIG, or its environment variable (EVMLB_…).
	Name string
	Kind Kind
	// Default is the value a setting left out takes ("" when it has none of its kind: see DefaultDoc).
	Default string
	// Min and Max bound an Integer, Bytes, Duration or Number value, both included.
	Min, Max string
	// AboveMin: the value must be above Min, not equal to it (probe_share).
	AboveMin bool
	// Off: 0 is also accepted, and turns the feature off (hedge_percentile).
	Off bool
	// AtLeast names another setting of the same table this one may not be below (EVMLB_MAX_INFLIGHT_BYTES).
	AtLeast string
	// Rule, when set, is the rule a bad value's error states; else it is written from the kind and the range.
	Rule string
	// DefaultDoc and RangeDoc, when set, are README.md's default and range cells; else they are written from
	// Default, Min and Max.
	DefaultDoc, RangeDoc string
	// Doc is README.md's meaning cell.
	Doc string

	def, min, max float64 // Default, Min and Max read: a Duration's in nanoseconds
}

// The chain settings: the fields of a "chains" entry of the object form. The zero value of a Chain field means
// its Default (Chain.WithDefaults).
var (
	ChainChainID = row(Setting{Name: "chain_id", Kind: ChainIDs,
		Rule:       "must be a chain id from 1 to 2^64-1: a JSON number, or a decimal or 0x-hex string",
		DefaultDoc: "none", RangeDoc: "1 to 2^64-1, number or `\"0x1\"` / `\"1\"`",
		Doc: "the chain id every upstream must serve; without it a strict majority of the upstreams decides, and a split with none verified before refuses every request (-32073)"})
	ChainMaxLagBlocks = row(Setting{Name: "max_lag_blocks", Kind: Integer, Default: "10", Min: "1", Max: "10000",
		Doc: "an upstream this many blocks behind the best is out of rotation"})
	ChainStaleAfter = row(Setting{Name: "stale_after", Kind: Duration, Default: "60s", Min: "1s", Max: "1h",
		Doc: "an upstream whose head has not moved for this long while another's did is out; also how long every upstream must stay below the served head before it yields, when nothing proves it wrong sooner"})
	ChainConfirmAfter = row(Setting{Name: "confirm_after", Kind: Duration, Default: "60s", Min: "1s", Max: "1h",
		Doc: "a head more than `max_lag_blocks` above every other upstream's is believed only once the others' heads have stood still this long while it moved; an upstream down this long no longer stands against it"})
	ChainBreakerFailures = row(Setting{Name: "breaker_failures", Kind: Integer, Default: "5", Min: "1", Max: "1000",
		Doc: "consecutive failures that open an upstream's circuit breaker"})
	ChainBreakerOpenFor = row(Setting{Name: "breaker_open_for", Kind: Duration, Default: "30s", Min: "1s", Max: "1h",
		Doc: "how long an open breaker keeps its upstream out before a probe"})
	ChainCooldownAfter429 = row(Setting{Name: "cooldown_after_429", Kind: Duration, Default: "60s", Min: "1s", Max: "1h",
		Doc: "how long an upstream that answered HTTP 429 gets no traffic"})
	ChainProbeShare = row(Setting{Name: "probe_share", Kind: Number, Default: "0.05", Min: "0", Max: "0.5", AboveMin: true,
		Doc: "share of requests sent first to a recovering upstream"})
	ChainMaxAttempts = row(Setting{Name: "max_attempts", Kind: Integer, Default: "3", Min: "1", Max: "10",
		Doc: "upstreams tried per request at most"})
	ChainRequestTimeout = row(Setting{Name: "request_timeout", Kind: Duration, Default: "30s", Min: "1s", Max: "5m",
		Doc: "bound on a request across all its attempts"})
	ChainHedgePercentile = row(Setting{Name: "hedge_percentile", Kind: Number, Default: "0", Min: "0.5", Max: "0.99", Off: true,
		Doc: "a read not answered after this latency percentile is also sent to the next upstream"})
	ChainHedgeMinDelay = row(Setting{Name: "hedge_min_delay", Kind: Duration, Default: "50ms", Min: "1ms", Max: "10s",
		Doc: "least wait before a hedge"})
	ChainDenyMethods = row(Setting{Name: "deny_methods", Kind: Patterns,
		Rule:       "must be an array of method names, each optionally ending in *",
		DefaultDoc: "`" + EnvDenyMethods + "`", RangeDoc: "patterns",
		Doc: "replaces the deny list for this chain; `[]` denies nothing"})
	ChainAllowCustomTracers = row(Setting{Name: "allow_custom_tracers", Kind: Boolean,
		Rule: "must be true or false", DefaultDoc: "`false`", RangeDoc: "`true` or `false`",
		Doc: "allows `debug_trace*` calls whose `tracer` is JavaScript code rather than a built-in tracer's name (denied by default: such code can crash a node)"})
	ChainFinalityDepth = row(Setting{Name: "finality_depth", Kind: Integer, Default: "0", Min: "0", Max: "100000",
		DefaultDoc: "0 (unset)",
		Doc:        "for chains whose nodes lack the `finalized` tag: the chain's finalized block is the head minus this many blocks when no upstream reports one; 0: finality is then unknown"})
	ChainCache = row(Setting{Name: "cache", Kind: Boolean,
		Rule: "must be true or false", DefaultDoc: "`true`", RangeDoc: "`true` or `false`",
		Doc: "keeps answers the cache's table allows (\"The answer cache\") and sends concurrent identical reads upstream once; `false` sends every call upstream"})
	ChainCacheFinalizedTTL = row(Setting{Name: "cache_finalized_ttl", Kind: Duration, Default: "1h", Min: "1s", Max: "168h",
		Doc: "how long an answer about a block at or below the chain's finalized block is kept"})
	ChainCacheRealtimeTTL = row(Setting{Name: "cache_realtime_ttl", Kind: Duration, Default: "2s", Min: "100ms", Max: "1m",
		Doc: "how long a fee estimate (`eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_blobBaseFee`, `eth_feeHistory` at `latest`) is kept at most, in the isolate's memory only; a new head ends it sooner"})
	ChainCacheHashTTL = row(Setting{Name: "cache_hash_ttl", Kind: Duration, Default: "1h", Min: "1s", Max: "168h",
		Doc: "how long an answer looked up by hash is kept, once the block holding it is finalized"})
	ChainCacheMaxAnswerBytes = row(Setting{Name: "cache_max_answer_bytes", Kind: Bytes, Default: "1 MiB", Min: "1 KiB", Max: "32 MiB",
		Doc: "largest answer kept (its `result`); a larger one is sent upstream every time"})
	ChainLogsMaxRange = row(Setting{Name: "logs_max_range", Kind: Integer, Default: "1000000", Min: "1", Max: "1000000000",
		Doc: "widest `eth_getLogs` range (blocks) the balancer splits into pieces when an upstream caps it; a wider one is refused with -32074"})
	ChainLogsMaxAnswerBytes = row(Setting{Name: "logs_max_answer_bytes", Kind: Bytes, Default: "32 MiB", Min: "1 KiB", Max: "100 MiB",
		Doc: "largest merged answer of a split `eth_getLogs` (its `result`); a larger one is refused with -32074"})
	ChainCapabilityTTL = row(Setting{Name: "capability_ttl", Kind: Duration, Default: "10m", Min: "1s", Max: "168h",
		Doc: "how long what an upstream proved it cannot serve (a method it does not offer, the state below a block) keeps requests of it away from that upstream before it is asked again"})
	ChainBroadcastWrites = row(Setting{Name: "broadcast_writes", Kind: Boolean,
		Rule: "must be true or false", DefaultDoc: "`true` with more than one upstream", RangeDoc: "`true` or `false`",
		Doc: "sends an `eth_sendRawTransaction` to every upstream in rotation at once, answers the transaction's hash at the first that takes it (\"Transactions broadcast\"); `false` sends it to one upstream, as other writes"})
	ChainSubscriptionPoll = row(Setting{Name: "subscription_poll", Kind: Duration, Default: "1s", Min: "1s", Max: "1m",
		Doc: "while a WebSocket subscription of the chain exists, how often its subscription object looks for new blocks (\"WebSocket subscriptions\"); about the block time, or less"})
)

// ChainTable is every chain setting, in the order the README lists them and errors are reported.
var ChainTable = []*Setting{
	ChainChainID, ChainMaxLagBlocks, ChainStaleAfter, ChainConfirmAfter, ChainBreakerFailures, ChainBreakerOpenFor,
	ChainCooldownAfter429, ChainProbeShare, ChainMaxAttempts, ChainRequestTimeout, ChainHedgePercentile,
	ChainHedgeMinDelay, ChainDenyMethods, ChainAllowCustomTracers, ChainFinalityDepth, ChainCache, ChainCacheFinalizedTTL,
	ChainCacheRealtimeTTL, ChainCacheHashTTL, ChainCacheMaxAnswerBytes, ChainLogsMaxRange, ChainLogsMaxAnswerBytes,
	ChainCapabilityTTL, ChainBroadcastWrites, ChainSubscriptionPoll,
}

// The tuning settings, EVMLB_* environment variables (see Settings for what each bounds).
var (
	TuningHealthInterval = row(Setting{Name: EnvHealthInterval, Kind: Duration, Default: "5s", Min: "1s", Max: "1h",
		Doc: "time between two health checks of an upstream"})
	TuningAttemptTimeout = row(Setting{Name: EnvAttemptTimeout, Kind: Duration, Default: "10s", Min: "100ms", Max: "5m",
		Doc: "bound on one request to one upstream, and on each health-check call"})
	TuningSnapshotTTL = row(Setting{Name: EnvSnapshotTTL, Kind: Duration, Default: "1s", Min: "100ms", Max: "1m",
		Doc: "how old a Worker isolate's snapshot of a chain's table may grow before it exchanges its outcomes for a fresh one (in the background)"})
	TuningMaxBodyBytes = row(Setting{Name: EnvMaxBodyBytes, Kind: Bytes, Default: "5 MiB", Min: "1 KiB", Max: "100 MiB",
		Doc: "largest client request body (beyond: 413)"})
	TuningMaxResponseBytes = row(Setting{Name: EnvMaxResponseBytes, Kind: Bytes, Default: "32 MiB", Min: "1 KiB", Max: "100 MiB",
		Doc: "largest upstream answer (beyond: the next upstream is tried)"})
	TuningMaxInflightBytes = row(Setting{Name: EnvMaxInflightBytes, Kind: Bytes, Default: "24 MiB", Min: "1 MiB", Max: "100 MiB", AtLeast: EnvMaxBodyBytes,
		Doc: "request bodies one runtime holds at once: a body over 64 KiB that would pass it is refused with 503 (-32069) rather than growing memory that never shrinks"})
	TuningCacheMemoryBytes = row(Setting{Name: EnvCacheMemoryBytes, Kind: Bytes, Default: "16 MiB", Min: "1 MiB", Max: "512 MiB",
		Doc: "answers one runtime keeps in its memory (the cache's first tier, every chain together), least recently used dropped first; an answer over an eighth of it is not kept there (an isolate has 128 MB, and its memory never shrinks)"})
	TuningMaxBatch = row(Setting{Name: EnvMaxBatch, Kind: Integer, Default: "100", Min: "1", Max: "10000",
		Doc: "largest batch accepted"})
	TuningWSMaxSockets = row(Setting{Name: EnvWSMaxSockets, Kind: Integer, Default: "10000", Min: "1", Max: "32768",
		Doc: "open WebSockets per chain (its subscription object); one more is refused with 503 (-32077)"})
	TuningWSMaxSubscriptions = row(Setting{Name: EnvWSMaxSubscriptions, Kind: Integer, Default: "32", Min: "1", Max: "1000",
		Doc: "subscriptions one WebSocket may hold (beyond: -32075); all of them together must fit 16,000 bytes (beyond: -32076)"})
	TuningWSRate = row(Setting{Name: EnvWSRate, Kind: Integer, Default: "20", Min: "1", Max: "10000",
		Doc: "messages per second one WebSocket may send, in bursts of up to twice as many; a message beyond is answered -32005"})
	TuningDenyMethods = row(Setting{Name: EnvDenyMethods, Kind: Patterns,
		Rule:       "must be none or a comma-separated list of method names, each optionally ending in *",
		DefaultDoc: "the list above", RangeDoc: "comma-separated patterns, or `none`",
		Doc: "methods refused on every chain without its own `deny_methods`"})
	TuningCORSOrigins = row(Setting{Name: EnvCORSOrigins, Kind: Origins,
		Rule:       "must be *, none, or a comma-separated list of origins (scheme://host[:port])",
		DefaultDoc: "`*`", RangeDoc: "`*`, `none`, or comma-separated origins (`https://app.example.org`)",
		Doc: "browser origins allowed to call `POST /{chain}` (preflight `OPTIONS` answered 204); the admin API never answers cross-origin"})
)

// SmallBodyBytes is the size below which a request body is always admitted, whatever EVMLB_MAX_INFLIGHT_BYTES:
// that bound is for large bodies, and nearly every request is small. Fixed, not a setting: README.md states it in
// EVMLB_MAX_INFLIGHT_BYTES's line (a test holds the two together).
const SmallBodyBytes = 64 << 10

// TuningTable is every EVMLB_* setting, in the order the README lists them and errors are reported: the numbers
// first (their relations, AtLeast, are checked once all are read), then the lists.
var TuningTable = []*Setting{
	TuningHealthInterval, TuningAttemptTimeout, TuningSnapshotTTL, TuningMaxBodyBytes, TuningMaxResponseBytes,
	TuningMaxInflightBytes, TuningCacheMemoryBytes, TuningMaxBatch, TuningWSMaxSockets, TuningWSMaxSubscriptions,
	TuningWSRate, TuningDenyMethods, TuningCORSOrigins,
}

// UpstreamAttemptTimeout is an upstreams entry's attempt_timeout (object form only), which replaces
// EVMLB_ATTEMPT_TIMEOUT for that upstream: it has that variable's range, and no default of its own.
var UpstreamAttemptTimeout = row(Setting{Name: "attempt_timeout", Kind: Duration,
	Min: TuningAttemptTimeout.Min, Max: TuningAttemptTimeout.Max})

// UpstreamMaxLogsRange and UpstreamMaxLogsResults are an upstreams entry's eth_getLogs limits (object form only):
// a range wider than max_logs_range is split before it is sent; max_logs_results lets the upstream's refusals
// of too many results split the range (issue 20). Neither has a default: an upstream without them is sent every
// range whole until it refuses one.
var (
	UpstreamMaxLogsRange   = row(Setting{Name: "max_logs_range", Kind: Integer, Min: "1", Max: "100000000"})
	UpstreamMaxLogsResults = row(Setting{Name: "max_logs_results", Kind: Integer, Min: "1", Max: "100000000"})
)

// UpstreamMaxRPS, UpstreamMaxBurst and UpstreamMaxPerDay are an upstreams entry's request budget (object form
// only, issue 22): requests per second sent to the provider across the whole deployment, the burst above that
// rate (default: max_rps), and requests per UTC day. None has a default: an upstream without them has no budget.
var (
	UpstreamMaxRPS    = row(Setting{Name: "max_rps", Kind: Integer, Min: "1", Max: "1000000"})
	UpstreamMaxBurst  = row(Setting{Name: "max_burst", Kind: Integer, Min: "1", Max: "1000000"})
	UpstreamMaxPerDay = row(Setting{Name: "max_per_day", Kind: Integer, Min: "1", Max: "1000000000000"})
)

// upstreamOption are the object form's optional fields of an upstreams entry.
var upstreamOption = map[string]bool{"attempt_timeout": true, "max_logs_range": true, "max_logs_results": true, "archive": true,
	"max_rps": true, "max_burst": true, "max_per_day": true}

// UpstreamArchive is an upstreams entry's archive (object form only): true promises the state at every block, so
// reads of old state go to it first and nothing learned of its state is kept (internal/balance, Caps).
var UpstreamArchive = row(Setting{Name: "archive", Kind: Boolean,
	Rule: "must be true or false", DefaultDoc: "`false`", RangeDoc: "`true` or `false`"})

// row reads s's Default, Min and Max; a row that does not read is a bug of this file.
func row(s Setting) *Setting {
	read := func(what, v string) float64 {
		if v == "" {
			return 0
		}
		x, err := readValue(s.Kind, v)
		if err != nil {
			panic(fmt.Sprintf("config: setting %s: %s %q: %v", s.Name, what, v, err))
		}
		return x
	}
	s.def, s.min, s.max = read("default", s.Default), read("min", s.Min), read("max", s.Max)
	return &s
}

// readValue reads a value of the table as written there.
func readValue(k Kind, v string) (float64, error) {
	switch k {
	case Duration:
		d, err := time.ParseDuration(v)
		return float64(d), err
	case Bytes:
		n, unit, _ := strings.Cut(v, " ")
		x, err := strconv.ParseInt(n, 10, 64)
		shift, ok := map[string]uint{"": 0, "KiB": 10, "MiB": 20}[unit]
		if err == nil && !ok {
			err = fmt.Errorf("unit %q is not KiB or MiB", unit)
		}
		return float64(x << shift), err
	case Integer:
		x, err := strconv.ParseInt(v, 10, 64)
		return float64(x), err
	case Number:
		return strconv.ParseFloat(v, 64)
	}
	return 0, fmt.Errorf("a setting of this kind has no number")
}

// DefaultInt is the default of an Integer or Bytes setting.
func (s *Setting) DefaultInt() int64 { return int64(s.def) }

// DefaultDuration is the default of a Duration setting.
func (s *Setting) DefaultDuration() time.Duration { return time.Duration(s.def) }

// DefaultNumber is the default of a Number setting.
func (s *Setting) DefaultNumber() float64 { return s.def }

// MinDuration and MaxDuration are the bounds of a Duration setting.
func (s *Setting) MinDuration() time.Duration { return time.Duration(s.min) }

// MaxDuration: see MinDuration.
func (s *Setting) MaxDuration() time.Duration { return time.Duration(s.max) }

// Clamp returns v within s's range (a Duration's in nanoseconds), for code that takes settings not through
// Parse (internal/balance's Settings).
func Clamp[T ~int | ~int64 | ~uint64 | ~float64](s *Setting, v T) T {
	return min(max(v, T(s.min)), T(s.max))
}

// isEnv reports whether s is an EVMLB_* variable (errors word their rules for the environment's text).
func (s *Setting) isEnv() bool { return strings.HasPrefix(s.Name, "EVMLB_") }

// rule is what a bad value's error says of s: "must be …".
func (s *Setting) rule() string {
	if s.Rule != "" {
		return s.Rule
	}
	if s.isEnv() {
		switch s.Kind {
		case Duration:
			return fmt.Sprintf("must be a duration from %v to %v", time.Duration(s.min), time.Duration(s.max))
		case Integer, Bytes:
			return fmt.Sprintf("must be an integer from %d to %d", int64(s.min), int64(s.max))
		}
	}
	switch {
	case s.Kind == Duration:
		return "must be a duration string from " + s.Min + " to " + s.Max
	case s.Kind == Number && s.AboveMin:
		return "must be a number above " + s.Min + " and at most " + s.Max
	case s.Kind == Number && s.Off:
		return "must be 0 (off) or a number from " + s.Min + " to " + s.Max
	case s.Kind == Number:
		return "must be a number from " + s.Min + " to " + s.Max
	}
	return "must be an integer from " + s.Min + " to " + s.Max
}

// DefaultCell is the setting's default as README.md's tables write it.
func (s *Setting) DefaultCell() string {
	switch {
	case s.DefaultDoc != "":
		return s.DefaultDoc
	case s.Kind == Duration:
		return "`" + s.Default + "`"
	case s.Off && s.def == 0:
		return s.Default + " (off)"
	}
	return s.Default
}

// RangeCell is the setting's range as README.md's tables write it.
func (s *Setting) RangeCell() string {
	var r string
	switch {
	case s.RangeDoc != "":
		r = s.RangeDoc
	case s.AboveMin:
		r = "above " + s.Min + ", at most " + s.Max
	case s.Off:
		r = "0, or " + s.Min + " to " + s.Max
	default:
		r = s.Min + " to " + s.Max
	}
	if s.AtLeast != "" {
		r += ", at least `" + s.AtLeast + "`"
	}
	return r
}

// duration decodes a JSON string holding a Go duration within s's range.
func (s *Setting) duration(r []byte) (time.Duration, bool) {
	return durationIn(r, time.Duration(s.min), time.Duration(s.max))
}

// integer decodes a JSON integer within s's range.
func (s *Setting) integer(r []byte) (int64, bool) { return integerIn(r, int64(s.min), int64(s.max)) }

// number decodes a JSON number within s's range (above Min when AboveMin; 0 also when Off).
func (s *Setting) number(r []byte) (float64, bool) {
	x, ok := number(r)
	switch {
	case !ok:
		return x, false
	case s.Off && x == 0:
		return x, true
	case s.AboveMin:
		return x, x > s.min && x <= s.max
	}
	return x, x >= s.min && x <= s.max
}
