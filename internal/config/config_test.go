package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const secretURL = "https://user:pw-s3cr3t@rpc.example.com:8545/v3/KEY-s3cr3t?apikey=s3cr3t#frag"

func TestParse(t *testing.T) {
	c, err := Parse(`[
		{"chain":"eth","name":"a","upstream":"` + secretURL + `"},
		{"chain":"polygon","name":"a","upstream":"http://127.0.0.1:1"},
		{"chain":"eth","name":"b.2","upstream":"http://h"}]`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Chains(), ","); got != "eth,polygon" {
		t.Errorf("chains %s", got)
	}
	if us := c.ChainUpstreams("eth"); len(us) != 2 || us[0].Name != "a" || us[1].Name != "b.2" || us[1].ID() != "eth/b.2" {
		t.Errorf("eth upstreams %+v", us)
	}
	if u, ok := c.Lookup("eth", "a"); !ok || u.URL != secretURL || u.Endpoint() != "https://rpc.example.com:8545" {
		t.Errorf("lookup %+v %v", u, ok)
	}
	if _, ok := c.Lookup("polygon", "b.2"); ok {
		t.Error("found b.2 in polygon")
	}
	if !c.HasChain("polygon") || c.HasChain("bsc") {
		t.Error("HasChain")
	}
}

func TestParseErrors(t *testing.T) {
	ok := `{"chain":"eth","name":"a","upstream":"` + secretURL + `"}`
	for _, tc := range []struct{ name, text, want string }{
		{"unset", "", "UPSTREAM_CONFIG is not set"},
		{"blank", "  \n", "UPSTREAM_CONFIG is not set"},
		{"syntax", `[{"chain":"eth",`, "invalid JSON near byte"},
		{"syntax inside secret", `[{"upstream":"` + secretURL + `"x}]`, "invalid JSON near byte"},
		{"object", `{"chain":"eth"}`, "unknown top-level field (allowed: chains, upstreams)"},
		{"number", `5`, "must be a JSON array"},
		{"string", `"` + secretURL + `"`, "must be a JSON array"},
		{"archive in the array form", `[{"chain":"eth","name":"a","upstream":"http://h","archive":true}]`, `entry 0: unknown field (allowed: chain, name, upstream)`},
		{"attempt_timeout in the array form", `[{"chain":"eth","name":"a","upstream":"http://h","attempt_timeout":"1s"}]`, `entry 0: unknown field (allowed: chain, name, upstream)`},
		{"upstream null", `[{"chain":"eth","name":"a","upstream":null}]`, `entry 0: field "upstream" must be a string`},
		{"empty", `[]`, "the array is empty"},
		{"entry not object", `[` + ok + `,"` + secretURL + `"]`, `entry 1: not an object`},
		{"entry null", `[null]`, `entry 0: not an object`},
		{"missing chain", `[{"name":"a","upstream":"` + secretURL + `"}]`, `entry 0: field "chain" is missing`},
		{"missing upstream", `[` + ok + `,{"chain":"eth","name":"b"}]`, `entry 1: field "upstream" is missing`},
		{"name not string", `[{"chain":"eth","name":5,"upstream":"` + secretURL + `"}]`, `entry 0: field "name" must be a string`},
		{"chain with slash", `[{"chain":"e/th","name":"a","upstream":"` + secretURL + `"}]`, `entry 0: field "chain" must be`},
		{"name empty", `[{"chain":"eth","name":"","upstream":"` + secretURL + `"}]`, `entry 0: field "name" must be`},
		{"chain admin", `[{"chain":"admin","name":"a","upstream":"` + secretURL + `"}]`, `"admin" is reserved`},
		{"unknown field", `[{"chain":"eth","name":"a","url":"` + secretURL + `","upstream":"http://h"}]`, `entry 0: unknown field`},
		{"relative url", `[{"chain":"eth","name":"a","upstream":"/v3/s3cr3t"}]`, `entry 0: field "upstream" must be an absolute http or https URL`},
		{"ws url", `[{"chain":"eth","name":"a","upstream":"wss://h/s3cr3t"}]`, `field "upstream" must be an absolute http or https URL`},
		{"bad url", `[{"chain":"eth","name":"a","upstream":"http://h/%zzs3cr3t"}]`, `field "upstream" must be`},
		{"duplicate", `[` + ok + `,` + ok + `]`, `entry 1: field "name": duplicate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "example.com") {
				t.Errorf("error %q shows a value", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		secretURL:                      "https://rpc.example.com:8545",
		"http://h":                     "http://h",
		"http://[::1]:80/p?q":          "http://[::1]:80",
		"/relative":                    "invalid-url",
		"http://h/%zz":                 "invalid-url",
		"http://u:p@h.example/a/b?c=d": "http://h.example",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want func(*Settings)
		err  string
	}{
		{name: "defaults", env: nil, want: func(*Settings) {}},
		{name: "all set", env: map[string]string{
			EnvHealthInterval: "2s", EnvAttemptTimeout: "150ms", EnvSnapshotTTL: "250ms", EnvMaxBodyBytes: "2048", EnvMaxInflightBytes: "2097152",
			EnvMaxResponseBytes: "4096", EnvCacheMemoryBytes: "3145728", EnvMaxBatch: "7", EnvWSMaxSockets: "9", EnvWSMaxSubscriptions: "3", EnvWSRate: "5", EnvDenyMethods: "admin_*", EnvCORSOrigins: "https://a.example, http://b.example:8080",
		}, want: func(s *Settings) {
			*s = Settings{HealthInterval: 2 * time.Second, AttemptTimeout: 150 * time.Millisecond, SnapshotTTL: 250 * time.Millisecond, MaxBodyBytes: 2048, MaxInflightBytes: 2 << 20, MaxResponseBytes: 4096, CacheMemoryBytes: 3 << 20, MaxBatch: 7, WSMaxSockets: 9, WSMaxSubscriptions: 3, WSRate: 5, DenyMethods: []string{"admin_*"},
				CORSOrigins: []string{"https://a.example", "http://b.example:8080"}}
		}},
		{name: "cors none", env: map[string]string{EnvCORSOrigins: "none"}, want: func(s *Settings) { s.CORSOrigins = []string{} }},
		{name: "cors origin with a path", env: map[string]string{EnvCORSOrigins: "https://a.example/x"}, err: EnvCORSOrigins},
		{name: "cors not a URL", env: map[string]string{EnvCORSOrigins: "a.example"}, err: EnvCORSOrigins},
		{name: "interval too short", env: map[string]string{EnvHealthInterval: "10ms"}, err: EnvHealthInterval},
		{name: "in-flight below the body limit", env: map[string]string{EnvMaxBodyBytes: "4194304", EnvMaxInflightBytes: "2097152"}, err: EnvMaxInflightBytes},
		{name: "snapshot ttl too long", env: map[string]string{EnvSnapshotTTL: "2m"}, err: EnvSnapshotTTL},
		{name: "timeout not duration", env: map[string]string{EnvAttemptTimeout: "10"}, err: EnvAttemptTimeout},
		{name: "body too small", env: map[string]string{EnvMaxBodyBytes: "10"}, err: EnvMaxBodyBytes},
		{name: "batch not number", env: map[string]string{EnvMaxBatch: "many"}, err: EnvMaxBatch},
		{name: "batch zero", env: map[string]string{EnvMaxBatch: "0"}, err: EnvMaxBatch},
		{name: "ws rate zero", env: map[string]string{EnvWSRate: "0"}, err: EnvWSRate},
		{name: "deny list", env: map[string]string{EnvDenyMethods: " admin_* ,eth_sendTransaction,debug_"}, want: func(s *Settings) {
			s.DenyMethods = []string{"admin_*", "eth_sendTransaction", "debug_"}
		}},
		{name: "deny none", env: map[string]string{EnvDenyMethods: "none"}, want: func(s *Settings) { s.DenyMethods = []string{} }},
		{name: "deny empty item", env: map[string]string{EnvDenyMethods: "admin_*,"}, err: EnvDenyMethods},
		{name: "deny inner star", env: map[string]string{EnvDenyMethods: "ad*min"}, err: EnvDenyMethods},
		{name: "deny lone star", env: map[string]string{EnvDenyMethods: "*"}, err: EnvDenyMethods},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSettings(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultSettings
			tc.want(&want)
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got %+v, want %+v", s, want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(`[{"chain":"eth","name":"a","upstream":"https://u:p@h/k?x=y"}]`)
	f.Add(`[{"chain":"eth","name":"a","upstream":"https://h"},{"chain":"eth","name":"a","upstream":"http://g"}]`)
	f.Add(`[{"chain":1}]`)
	f.Add(`[null, {}]`)
	f.Add(`{"chain":"eth"}`)
	f.Add(`{"upstreams":[{"chain":"eth","name":"a","upstream":"https://h/k","attempt_timeout":"5s"}]}`)
	f.Add(`{"chains":{"eth":{"chain_id":"0x1","max_lag_blocks":10,"stale_after":"60s","probe_share":0.05,"hedge_percentile":0.9,"deny_methods":[]}},"upstreams":[{"chain":"eth","name":"a","upstream":"http://h"}]}`)
	f.Add(`{"chains":{"https://u:p@h/k?x=y":{}},"upstreams":[{"chain":"eth","name":"a","upstream":"http://h"}]}`)
	f.Add(`{"chains":{"eth":{"deny_methods":["admin_*","x*y"]}},"upstreams":[{"chain":"eth","name":"a","upstream":"http://h"}]}`)
	f.Add(`{"chains":{"bsc":{}},"upstreams":[{"chain":"eth","name":"a","upstream":"http://h"}]}`)
	f.Add(`{"upstreams":null,"chains":[]}`)
	f.Add(Default)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		_, all := ParseAll(text)
		if (err == nil) != (len(all) == 0) || err != nil && err.Error() != all[0].Err().Error() {
			t.Fatalf("Parse %v, ParseAll %v", err, all)
		}
		for _, p := range all {
			if strings.Contains(p.String(), "://") {
				t.Fatalf("problem %q holds a URL", p)
			}
		}
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, EnvUpstreams) {
				t.Fatalf("error %q does not name %s", msg, EnvUpstreams)
			}
			// No value is ever quoted: no URL-looking text, no upstream string and no object key that is not a
			// chain name, of any length beyond the fixed words.
			var v any
			_ = json.Unmarshal([]byte(text), &v)
			for _, s := range secretsIn(v) {
				if len(s) >= 24 && strings.Contains(msg, s) {
					t.Fatalf("error %q quotes a value", msg)
				}
			}
			if strings.Contains(msg, "://") {
				t.Fatalf("error %q holds a URL", msg)
			}
			return
		}
		if len(c.Upstreams) == 0 {
			t.Fatal("valid config without upstreams")
		}
		for _, u := range c.Upstreams {
			if !chainRE.MatchString(u.Chain) || !nameRE.MatchString(u.Name) || u.Chain == "admin" {
				t.Fatalf("invalid names accepted: %q %q", u.Chain, u.Name)
			}
			if r := Redact(u.URL); r == "invalid-url" || strings.ContainsAny(r[strings.Index(r, "://")+3:], "/?#@") {
				t.Fatalf("Redact(valid URL) = %q", r)
			}
			if got, _ := c.Lookup(u.Chain, u.Name); got != u {
				t.Fatal("duplicate accepted")
			}
			if u.AttemptTimeout != 0 && (u.AttemptTimeout < 100*time.Millisecond || u.AttemptTimeout > 5*time.Minute) {
				t.Fatalf("attempt_timeout %v accepted", u.AttemptTimeout)
			}
		}
		for name, ch := range c.Chain {
			if !c.HasChain(name) {
				t.Fatalf("settings for chain %q without upstreams", name)
			}
			if ch.MaxLagBlocks > 10000 || ch.MaxAttempts > 10 || ch.ProbeShare > 0.5 || ch.ProbeShare < 0 ||
				(ch.HedgePercentile != 0 && (ch.HedgePercentile < 0.5 || ch.HedgePercentile > 0.99)) ||
				ch.RequestTimeout > 5*time.Minute || ch.HedgeMinDelay > 10*time.Second {
				t.Fatalf("out of range settings accepted: %+v", ch)
			}
			for _, p := range ch.DenyMethods {
				if !ValidPattern(p) {
					t.Fatalf("invalid deny pattern %q accepted", p)
				}
			}
		}
	})
}

// secretsIn lists what an error must never quote: every "upstream" string and every object key that is not a
// chain name, anywhere in v.
func secretsIn(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !chainRE.MatchString(k) {
				out = append(out, k)
			}
			if s, ok := x.(string); ok && k == "upstream" {
				out = append(out, s)
			}
			out = append(out, secretsIn(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, secretsIn(x)...)
		}
	}
	return out
}
