package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Settings are the balancer's tunables, read from EVMLB_* environment variables. An unset or empty variable
// takes the default; a value that does not parse or is out of range is a configuration error naming the variable.
type Settings struct {
	// HealthInterval (EVMLB_HEALTH_INTERVAL, a Go duration) is the time between two health checks of an upstream.
	// Default 5s; range 1s to 1h.
	HealthInterval time.Duration
	// AttemptTimeout (EVMLB_ATTEMPT_TIMEOUT, a Go duration) bounds one request to one upstream, reading the answer
	// included, and each health-check call. Default 10s; range 100ms to 5m.
	AttemptTimeout time.Duration
	// SnapshotTTL (EVMLB_SNAPSHOT_TTL, a Go duration) is how old a Worker isolate's snapshot of a chain's routing
	// table may grow before the isolate exchanges its outcomes for a fresh one, in the background. Default 1s;
	// range 100ms to 1m.
	SnapshotTTL time.Duration
	// MaxBodyBytes (EVMLB_MAX_BODY_BYTES) bounds a client's request body; beyond it the answer is 413.
	// Default 5 MiB (a blob transaction's hex fits); range 1 KiB to 100 MiB (Cloudflare's request limit).
	MaxBodyBytes int64
	// MaxInflightBytes (EVMLB_MAX_INFLIGHT_BYTES) bounds the request bodies a runtime holds at once: a request
	// over 64 KiB that would take it past the bound is refused with 503 (-32069) instead of growing the runtime's
	// memory, which never shrinks (an isolate has 128 MB). Default 24 MiB; range 1 MiB to 100 MiB, and at least
	// MaxBodyBytes.
	MaxInflightBytes int64
	// MaxResponseBytes (EVMLB_MAX_RESPONSE_BYTES) bounds an upstream's answer; a longer one is a failure of class
	// too_large and the next upstream is tried. Default 32 MiB; range 1 KiB to 100 MiB (an isolate has 128 MB).
	MaxResponseBytes int64
	// MaxBatch (EVMLB_MAX_BATCH) is the largest batch accepted. Default 100 (as proxyd); range 1 to 10000.
	MaxBatch int
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
	EnvHealthInterval   = "EVMLB_HEALTH_INTERVAL"
	EnvAttemptTimeout   = "EVMLB_ATTEMPT_TIMEOUT"
	EnvSnapshotTTL      = "EVMLB_SNAPSHOT_TTL"
	EnvMaxBodyBytes     = "EVMLB_MAX_BODY_BYTES"
	EnvMaxResponseBytes = "EVMLB_MAX_RESPONSE_BYTES"
	EnvMaxInflightBytes = "EVMLB_MAX_INFLIGHT_BYTES"
	EnvMaxBatch         = "EVMLB_MAX_BATCH"
	EnvDenyMethods      = "EVMLB_DENY_METHODS"
	EnvCORSOrigins      = "EVMLB_CORS_ORIGINS"
)

// DefaultSettings are the settings with every variable unset.
var DefaultSettings = Settings{
	HealthInterval:   5 * time.Second,
	AttemptTimeout:   10 * time.Second,
	SnapshotTTL:      time.Second,
	MaxBodyBytes:     5 << 20,
	MaxResponseBytes: 32 << 20,
	MaxInflightBytes: 24 << 20,
	MaxBatch:         100,
	DenyMethods:      DefaultDenyMethods,
	CORSOrigins:      []string{"*"},
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
// variable's name as its Path. A variable with a problem keeps its default in the Settings returned.
func LoadSettingsAll(getenv func(string) string) (Settings, []Problem) {
	s := DefaultSettings
	var ps []Problem
	bad := func(env, rule string) { ps = append(ps, Problem{Path: env, Msg: rule, text: env + " " + rule}) }
	for _, d := range []struct {
		env      string
		dst      *time.Duration
		min, max time.Duration
	}{
		{EnvHealthInterval, &s.HealthInterval, time.Second, time.Hour},
		{EnvAttemptTimeout, &s.AttemptTimeout, 100 * time.Millisecond, 5 * time.Minute},
		{EnvSnapshotTTL, &s.SnapshotTTL, 100 * time.Millisecond, time.Minute},
	} {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < d.min || x > d.max {
				bad(d.env, fmt.Sprintf("must be a duration from %v to %v", d.min, d.max))
				continue
			}
			*d.dst = x
		}
	}
	batch := int64(s.MaxBatch)
	sized := true // the byte limits all parsed: their relation can be checked
	for _, n := range []struct {
		env      string
		dst      *int64
		min, max int64
	}{
		{EnvMaxBodyBytes, &s.MaxBodyBytes, 1 << 10, 100 << 20},
		{EnvMaxResponseBytes, &s.MaxResponseBytes, 1 << 10, 100 << 20},
		{EnvMaxInflightBytes, &s.MaxInflightBytes, 1 << 20, 100 << 20},
		{EnvMaxBatch, &batch, 1, 10000},
	} {
		if v := getenv(n.env); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < n.min || x > n.max {
				bad(n.env, fmt.Sprintf("must be an integer from %d to %d", n.min, n.max))
				sized = sized && n.env == EnvMaxBatch
				continue
			}
			*n.dst = x
		}
	}
	s.MaxBatch = int(batch)
	if sized && s.MaxInflightBytes < s.MaxBodyBytes {
		bad(EnvMaxInflightBytes, "must be at least "+EnvMaxBodyBytes)
	}
	if v := getenv(EnvDenyMethods); v != "" {
		if d, ok := parseDenyEnv(v); ok {
			s.DenyMethods = d
		} else {
			bad(EnvDenyMethods, "must be none or a comma-separated list of method names, each optionally ending in *")
		}
	}
	if v := getenv(EnvCORSOrigins); v != "" {
		if o, ok := parseOrigins(v); ok {
			s.CORSOrigins = o
		} else {
			bad(EnvCORSOrigins, "must be *, none, or a comma-separated list of origins (scheme://host[:port])")
		}
	}
	return s, ps
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
