package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Settings are the balancer's tunables, read from EVMLB_* environment variables. An unset or empty variable
// takes the default; a value that does not parse or is out of range is a configuration error naming the variable.
// Each field's variable, default and range are its row of TuningTable, and written there only.
type Settings struct {
	// HealthInterval (EVMLB_HEALTH_INTERVAL, a Go duration) is the time between two health checks of an upstream.
	HealthInterval time.Duration
	// AttemptTimeout (EVMLB_ATTEMPT_TIMEOUT, a Go duration) bounds one request to one upstream, reading the answer
	// included, and each health-check call.
	AttemptTimeout time.Duration
	// SnapshotTTL (EVMLB_SNAPSHOT_TTL, a Go duration) is how old a Worker isolate's snapshot of a chain's routing
	// table may grow before the isolate exchanges its outcomes for a fresh one, in the background.
	SnapshotTTL time.Duration
	// MaxBodyBytes (EVMLB_MAX_BODY_BYTES) bounds a client's request body; beyond it the answer is 413. The default
	// fits a blob transaction's hex; the maximum is Cloudflare's request limit.
	MaxBodyBytes int64
	// MaxInflightBytes (EVMLB_MAX_INFLIGHT_BYTES) bounds the request bodies a runtime holds at once: a request
	// over 64 KiB that would take it past the bound is refused with 503 (-32069) instead of growing the runtime's
	// memory, which never shrinks (an isolate has 128 MB). At least MaxBodyBytes.
	MaxInflightBytes int64
	// MaxResponseBytes (EVMLB_MAX_RESPONSE_BYTES) bounds an upstream's answer; a longer one is a failure of class
	// too_large and the next upstream is tried (an isolate has 128 MB).
	MaxResponseBytes int64
	// CacheMemoryBytes (EVMLB_CACHE_MEMORY_BYTES) bounds the answers a runtime keeps in its memory, the answer
	// cache's first tier (internal/cache.Memory), every chain together.
	CacheMemoryBytes int64
	// MaxBatch (EVMLB_MAX_BATCH) is the largest batch accepted (the default is proxyd's).
	MaxBatch int
	// WSMaxSockets (EVMLB_WS_MAX_SOCKETS) bounds the open WebSockets of one chain's subscription object;
	// WSMaxSubscriptions (EVMLB_WS_MAX_SUBSCRIPTIONS) the subscriptions of one socket; WSRate (EVMLB_WS_RATE) the
	// messages per second one socket may send (bursts of twice as many).
	WSMaxSockets, WSMaxSubscriptions, WSRate int
	// DenyMethods (EVMLB_DENY_METHODS) are the methods refused on every chain whose deny_methods is not set: a
	// comma-separated list of patterns (see MatchMethod; spaces around a pattern are ignored), or "none" to deny
	// nothing. It replaces the default list, DefaultDenyMethods, entirely. nil means DefaultDenyMethods.
	DenyMethods []string
	// CORSOrigins (EVMLB_CORS_ORIGINS) are the browser origins allowed to call the chain endpoints: "*" (the
	// default: an RPC URL is meant for dapps in any page), a comma-separated list of origins such as
	// https://app.example.org, or none (no CORS headers). The admin API never answers cross-origin.
	CORSOrigins []string
}

// Environment variables of the settings.
const (
	EnvHealthInterval     = "EVMLB_HEALTH_INTERVAL"
	EnvAttemptTimeout     = "EVMLB_ATTEMPT_TIMEOUT"
	EnvSnapshotTTL        = "EVMLB_SNAPSHOT_TTL"
	EnvMaxBodyBytes       = "EVMLB_MAX_BODY_BYTES"
	EnvMaxResponseBytes   = "EVMLB_MAX_RESPONSE_BYTES"
	EnvMaxInflightBytes   = "EVMLB_MAX_INFLIGHT_BYTES"
	EnvMaxBatch           = "EVMLB_MAX_BATCH"
	EnvCacheMemoryBytes   = "EVMLB_CACHE_MEMORY_BYTES"
	EnvWSMaxSockets       = "EVMLB_WS_MAX_SOCKETS"
	EnvWSMaxSubscriptions = "EVMLB_WS_MAX_SUBSCRIPTIONS"
	EnvWSRate             = "EVMLB_WS_RATE"
	EnvDenyMethods        = "EVMLB_DENY_METHODS"
	EnvCORSOrigins        = "EVMLB_CORS_ORIGINS"
)

// DefaultSettings are the settings with every variable unset: TuningTable's defaults.
var DefaultSettings = Settings{
	HealthInterval:     TuningHealthInterval.DefaultDuration(),
	AttemptTimeout:     TuningAttemptTimeout.DefaultDuration(),
	SnapshotTTL:        TuningSnapshotTTL.DefaultDuration(),
	MaxBodyBytes:       TuningMaxBodyBytes.DefaultInt(),
	MaxResponseBytes:   TuningMaxResponseBytes.DefaultInt(),
	MaxInflightBytes:   TuningMaxInflightBytes.DefaultInt(),
	CacheMemoryBytes:   TuningCacheMemoryBytes.DefaultInt(),
	MaxBatch:           int(TuningMaxBatch.DefaultInt()),
	WSMaxSockets:       int(TuningWSMaxSockets.DefaultInt()),
	WSMaxSubscriptions: int(TuningWSMaxSubscriptions.DefaultInt()),
	WSRate:             int(TuningWSRate.DefaultInt()),
	DenyMethods:        DefaultDenyMethods,
	CORSOrigins:        []string{"*"},
}

// LoadSettings reads the settings through getenv. Its error is the first of the problems LoadSettingsAll finds.
func LoadSettings(getenv func(string) string) (Settings, error) {
	s, ps := LoadSettingsAll(getenv)
	if len(ps) > 0 {
		return s, ps[0].Err()
	}
	return s, nil
}

// LoadSettingsAll reads the settings through getenv as LoadSettings does, returning every problem, each with the
// variable's name as its Path: first the numbers' in TuningTable's order, then their relations (AtLeast), then
// the lists'. A variable with a problem keeps its default in the Settings returned.
func LoadSettingsAll(getenv func(string) string) (Settings, []Problem) {
	s := DefaultSettings
	var ps []Problem
	bad := func(env, rule string) { ps = append(ps, Problem{Path: env, Msg: rule, text: env + " " + rule}) }
	batch := int64(s.MaxBatch)
	wsSockets, wsSubs, wsRate := int64(s.WSMaxSockets), int64(s.WSMaxSubscriptions), int64(s.WSRate)
	numbers := map[*Setting]any{ // where each number goes: a *time.Duration or an *int64
		TuningHealthInterval: &s.HealthInterval, TuningAttemptTimeout: &s.AttemptTimeout, TuningSnapshotTTL: &s.SnapshotTTL,
		TuningMaxBodyBytes: &s.MaxBodyBytes, TuningMaxResponseBytes: &s.MaxResponseBytes,
		TuningMaxInflightBytes: &s.MaxInflightBytes, TuningCacheMemoryBytes: &s.CacheMemoryBytes, TuningMaxBatch: &batch,
		TuningWSMaxSockets: &wsSockets, TuningWSMaxSubscriptions: &wsSubs, TuningWSRate: &wsRate,
	}
	read := map[string]bool{} // the numbers that read, or kept their default
	for _, t := range TuningTable {
		dst := numbers[t]
		if dst == nil {
			continue
		}
		v := getenv(t.Name)
		read[t.Name] = true
		if v == "" {
			continue
		}
		ok := false
		switch dst := dst.(type) {
		case *time.Duration:
			x, err := time.ParseDuration(v)
			if ok = err == nil && x == Clamp(t, x); ok {
				*dst = x
			}
		case *int64:
			x, err := strconv.ParseInt(v, 10, 64)
			if ok = err == nil && x == Clamp(t, x); ok {
				*dst = x
			}
		}
		if !ok {
			bad(t.Name, t.rule())
			read[t.Name] = false
		}
	}
	s.MaxBatch = int(batch)
	s.WSMaxSockets, s.WSMaxSubscriptions, s.WSRate = int(wsSockets), int(wsSubs), int(wsRate)
	value := func(t *Setting) int64 { // a number read, as an integer (a duration in nanoseconds)
		switch dst := numbers[t].(type) {
		case *time.Duration:
			return int64(*dst)
		case *int64:
			return *dst
		}
		return 0
	}
	for _, t := range TuningTable {
		if t.AtLeast == "" || !read[t.Name] || !read[t.AtLeast] {
			continue // a value that did not read is reported already
		}
		if other := settingNamed(TuningTable, t.AtLeast); value(t) < value(other) {
			bad(t.Name, "must be at least "+t.AtLeast)
		}
	}
	if v := getenv(EnvDenyMethods); v != "" {
		if d, ok := parseDenyEnv(v); ok {
			s.DenyMethods = d
		} else {
			bad(EnvDenyMethods, TuningDenyMethods.rule())
		}
	}
	if v := getenv(EnvCORSOrigins); v != "" {
		if o, ok := parseOrigins(v); ok {
			s.CORSOrigins = o
		} else {
			bad(EnvCORSOrigins, TuningCORSOrigins.rule())
		}
	}
	return s, ps
}

// settingNamed is the row of table named name (nil if none).
func settingNamed(table []*Setting, name string) *Setting {
	for _, t := range table {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// parseDenyEnv reads EVMLB_DENY_METHODS: "none" is the empty (non-nil) list.
func parseDenyEnv(v string) ([]string, bool) {
	if strings.TrimSpace(v) == "none" {
		return []string{}, true
	}
	var d []string
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		if !ValidPattern(p) {
			return nil, false
		}
		d = append(d, p)
	}
	return d, true
}

// parseOrigins reads EVMLB_CORS_ORIGINS: "*", "none" (an empty list), or origins like https://app.example.org.
func parseOrigins(v string) ([]string, bool) {
	v = strings.TrimSpace(v)
	switch v {
	case "*":
		return []string{"*"}, true
	case "none":
		return []string{}, true
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return nil, false
		}
		out = append(out, o)
	}
	return out, len(out) > 0
}

// AllowOrigin returns the Access-Control-Allow-Origin value for a request from origin, or "" when none applies.
func (s Settings) AllowOrigin(origin string) string {
	for _, o := range s.CORSOrigins {
		if o == "*" {
			return "*"
		}
		if origin != "" && strings.EqualFold(o, origin) {
			return o
		}
	}
	return ""
}
