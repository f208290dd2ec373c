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
	// MaxBatch (EVMLB_MAX_BATCH) is the largest batch accepted (the default is proxyd's).
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

// DefaultSettings are the settings with every variable unset: TuningTable's defaults.
var DefaultSettings = Settings{
	HealthInterval:   TuningHealthInterval.DefaultDuration(),
	AttemptTimeout:   TuningAttemptTimeout.DefaultDuration(),
	SnapshotTTL:      TuningSnapshotTTL.DefaultDuration(),
	MaxBodyBytes:     TuningMaxBodyBytes.DefaultInt(),
	MaxResponseBytes: TuningMaxResponseBytes.DefaultInt(),
	MaxInflightBytes: TuningMaxInflightBytes.DefaultInt(),
	MaxBatch:         int(TuningMaxBatch.DefaultInt()),
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
// variable's name as its Path, in TuningTable's order. A variable with a problem keeps its default in the
// Settings returned.
func LoadSettingsAll(getenv func(string) string) (Settings, []Problem) {
	s := DefaultSettings
	var ps []Problem
	bad := func(env, rule string) { ps = append(ps, Problem{Path: env, Msg: rule, text: env + " " + rule}) }
	batch := int64(s.MaxBatch)
	numbers := map[*Setting]any{ // where each number goes: a *time.Duration or an *int64
		TuningHealthInterval: &s.HealthInterval, TuningAttemptTimeout: &s.AttemptTimeout, TuningSnapshotTTL: &s.SnapshotTTL,
		TuningMaxBodyBytes: &s.MaxBodyBytes, TuningMaxResponseBytes: &s.MaxResponseBytes,
		TuningMaxInflightBytes: &s.MaxInflightBytes, TuningMaxBatch: &batch,
	}
	read := map[string]int64{} // the numbers, by variable, for AtLeast
	failed := map[string]bool{}
	checked := false
	for _, t := range TuningTable {
		if t.Kind == Patterns || t.Kind == Origins {
			if !checked {
				checked = true
				atLeast(numbers, read, failed, bad)
			}
		}
		v := getenv(t.Name)
		switch dst := numbers[t].(type) {
		case *time.Duration:
			read[t.Name] = int64(*dst)
			if v == "" {
				continue
			}
			x, err := time.ParseDuration(v)
			if err != nil || x < t.MinDuration() || x > t.MaxDuration() {
				bad(t.Name, t.rule())
				failed[t.Name] = true
				continue
			}
			*dst, read[t.Name] = x, int64(x)
		case *int64:
			read[t.Name] = *dst
			if v == "" {
				continue
			}
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x != Clamp(t, x) {
				bad(t.Name, t.rule())
				failed[t.Name] = true
				continue
			}
			*dst, read[t.Name] = x, x
		}
		if v == "" {
			continue
		}
		switch t {
		case TuningDenyMethods:
			if d, ok := parseDenyEnv(v); ok {
				s.DenyMethods = d
			} else {
				bad(t.Name, t.rule())
			}
		case TuningCORSOrigins:
			if o, ok := parseOrigins(v); ok {
				s.CORSOrigins = o
			} else {
				bad(t.Name, t.rule())
			}
		}
	}
	s.MaxBatch = int(batch)
	return s, ps
}

// atLeast checks the AtLeast relations of the numbers read, when both sides read (a value that did not read is
// reported already).
func atLeast(numbers map[*Setting]any, read map[string]int64, failed map[string]bool, bad func(env, rule string)) {
	for _, t := range TuningTable {
		if t.AtLeast == "" || numbers[t] == nil || failed[t.Name] || failed[t.AtLeast] {
			continue
		}
		if read[t.Name] < read[t.AtLeast] {
			bad(t.Name, "must be at least "+t.AtLeast)
		}
	}
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
