package config

import (
	"reflect"
	"strings"
	"testing"
)

// ParseAll reports every problem with its JSON path, never a value; Parse's error is the first one's.
func TestParseAllEveryProblem(t *testing.T) {
	text := `{"chains": {
		"eth": {"max_lag_blocks": 0, "stale_after": "1ms", "bogus": 1},
		"gone": {},
		"` + secretURL + `": {}
	}, "upstreams": [
		{"chain": "eth", "name": "a", "upstream": "` + secretURL + `"},
		{"chain": "eth", "name": "a", "upstream": "https://h"},
		{"chain": "eth", "name": "b", "upstream": "ftp://` + "s3cr3t" + `", "attempt_timeout": "1ms"},
		{"chain": "admin", "upstream": 5, "x": 1, "y": 2},
		"` + secretURL + `"
	]}`
	c, ps := ParseAll(text)
	if c != nil {
		t.Fatal("config returned with problems")
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
		if strings.Contains(p.String(), "s3cr3t") || strings.Contains(p.String(), "example.com") {
			t.Errorf("problem %q shows a value", p)
		}
	}
	want := []string{
		`$.upstreams[1].name: duplicate name within its chain`,
		`$.upstreams[2].upstream: must be an absolute http or https URL`,
		`$.upstreams[2].attempt_timeout: must be a duration string from 100ms to 5m`,
		`$.upstreams[3]: 2 unknown fields (allowed: chain, name, upstream, attempt_timeout, max_logs_range, max_logs_results, archive, max_rps, max_burst, max_per_day)`,
		`$.upstreams[3].name: is missing`,
		`$.upstreams[3].upstream: must be a string`,
		`$.upstreams[3].chain: "admin" is reserved`,
		`$.upstreams[4]: not an object`,
		`$.chains.eth: unknown field (allowed: chain_id, max_lag_blocks, stale_after, confirm_after, breaker_failures, breaker_open_for, cooldown_after_429, probe_share, max_attempts, request_timeout, hedge_percentile, hedge_min_delay, deny_methods, allow_custom_tracers, finality_depth, cache, cache_finalized_ttl, cache_realtime_ttl, cache_hash_ttl, cache_max_answer_bytes, logs_max_range, logs_max_answer_bytes, capability_ttl, broadcast_writes, subscription_poll)`,
		`$.chains.eth.max_lag_blocks: must be an integer from 1 to 10000`,
		`$.chains.eth.stale_after: must be a duration string from 1s to 1h`,
		`$.chains.gone: no upstream serves this chain`,
		`$.chains: a chain name must be 1 to 64 of A-Z a-z 0-9 _ -`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := Parse(text); err == nil || err.Error() != `UPSTREAM_CONFIG: upstreams entry 1: field "name": duplicate name within its chain` {
		t.Errorf("Parse: %v", err)
	}
}

func TestParseAllArrayAndSyntax(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{``, `$: is empty (UPSTREAM_CONFIG is not set)`},
		{`[{"chain":"eth",`, `$: invalid JSON near byte 16`},
		{`5`, `$: must be a JSON array of {"chain","name","upstream"} objects, or an object {"chains","upstreams"}`},
		{`[{"chain":"e/th","name":"a","upstream":"https://h","attempt_timeout":"1s"}]`,
			"$[0]: unknown field (allowed: chain, name, upstream)\n$[0].chain: must be 1 to 64 of A-Z a-z 0-9 _ -"},
		{`{"upstreams":null,"chains":{"eth":{}}}`, `$.upstreams: must be an array of {"chain","name","upstream"} objects`},
	} {
		_, ps := ParseAll(tc.text)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, "\n") != tc.want {
			t.Errorf("%s: %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestLoadSettingsAll(t *testing.T) {
	env := map[string]string{EnvHealthInterval: "fast", EnvMaxBatch: "0", EnvMaxBodyBytes: "4194304", EnvMaxInflightBytes: "2097152", EnvCORSOrigins: "x"}
	s, ps := LoadSettingsAll(func(k string) string { return env[k] })
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	want := []string{
		"EVMLB_HEALTH_INTERVAL: must be a duration from 1s to 1h0m0s",
		"EVMLB_MAX_BATCH: must be an integer from 1 to 10000",
		"EVMLB_MAX_INFLIGHT_BYTES: must be at least EVMLB_MAX_BODY_BYTES",
		"EVMLB_CORS_ORIGINS: must be *, none, or a comma-separated list of origins (scheme://host[:port])",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q", got)
	}
	if s.HealthInterval != DefaultSettings.HealthInterval {
		t.Errorf("a bad variable did not keep its default")
	}
	if _, err := LoadSettings(func(k string) string { return env[k] }); err == nil || err.Error() != "EVMLB_HEALTH_INTERVAL must be a duration from 1s to 1h0m0s" {
		t.Errorf("LoadSettings: %v", err)
	}
}

func TestLoad(t *testing.T) {
	c, _, source, ps := Load(func(string) string { return "" })
	if c == nil || source != SourceDefault || len(ps) != 0 || c.Chains()[0] != "ethereum" {
		t.Errorf("unset: %v %q %v", c, source, ps)
	}
	env := map[string]string{EnvUpstreams: `[{"chain":"eth","name":"a"}]`, EnvMaxBatch: "x"}
	c, _, source, ps = Load(func(k string) string { return env[k] })
	if c != nil || source != EnvUpstreams || len(ps) != 2 || ps[0].Path != "$[0].upstream" || ps[1].Path != EnvMaxBatch {
		t.Errorf("bad: %v %q %v", c, source, ps)
	}
}
