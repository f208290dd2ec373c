package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// objectWith is an object-form config with one upstream of chain eth (its URL holds secrets) and the given
// "chains" value ("" leaves the key out).
func objectWith(chains string) string {
	s := `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `"}]`
	if chains != "" {
		s += `,"chains":` + chains
	}
	return s + "}"
}

func TestParseObject(t *testing.T) {
	c, err := Parse(`{
		"chains": {"ethereum": {"chain_id": 1, "max_lag_blocks": 10, "stale_after": "60s", "confirm_after": "90s", "breaker_failures": 5,
			"breaker_open_for": "30s", "cooldown_after_429": "60s", "probe_share": 0.05, "max_attempts": 3,
			"request_timeout": "30s", "hedge_percentile": 0.9, "hedge_min_delay": "50ms",
			"deny_methods": ["admin_*", "debug_setHead"]},
			"base": {"chain_id": "0x2105", "deny_methods": []}},
		"upstreams": [
			{"chain": "ethereum", "name": "a", "upstream": "` + secretURL + `", "attempt_timeout": "5s"},
			{"chain": "ethereum", "name": "b", "upstream": "http://h", "max_logs_range": 2000, "max_logs_results": 10000, "archive": true},
			{"chain": "base", "name": "a", "upstream": "http://g", "max_rps": 20, "max_burst": 40, "max_per_day": 100000},
			{"chain": "polygon", "name": "a", "upstream": "http://p"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Chains(), ","); got != "ethereum,base,polygon" {
		t.Errorf("chains %s", got)
	}
	want := Chain{
		ChainID: 1, MaxLagBlocks: 10, StaleAfter: time.Minute, ConfirmAfter: 90 * time.Second, BreakerFailures: 5, BreakerOpenFor: 30 * time.Second,
		CooldownAfter429: time.Minute, ProbeShare: 0.05, MaxAttempts: 3, RequestTimeout: 30 * time.Second,
		HedgePercentile: 0.9, HedgeMinDelay: 50 * time.Millisecond, DenyMethods: []string{"admin_*", "debug_setHead"},
	}
	if got := c.ChainSettings("ethereum"); !reflect.DeepEqual(got, want) {
		t.Errorf("ethereum settings %+v, want %+v", got, want)
	}
	if got := c.ChainSettings("base"); got.ChainID != 0x2105 || got.DenyMethods == nil || len(got.DenyMethods) != 0 {
		t.Errorf("base settings %+v (deny_methods [] must be an empty, non-nil list)", got)
	}
	if got := c.ChainSettings("polygon"); !reflect.DeepEqual(got, Chain{}) {
		t.Errorf("polygon settings %+v, want zero", got)
	}
	if u, _ := c.Lookup("ethereum", "a"); u.AttemptTimeout != 5*time.Second || u.URL != secretURL {
		t.Errorf("upstream a %+v", u)
	}
	if u, _ := c.Lookup("ethereum", "a"); u.Archive {
		t.Errorf("upstream a is no archive: %+v", u)
	}
	if u, _ := c.Lookup("ethereum", "b"); u.AttemptTimeout != 0 || u.MaxLogsRange != 2000 || u.MaxLogsResults != 10000 || !u.Archive {
		t.Errorf("upstream b %+v", u)
	}
	if u, _ := c.Lookup("base", "a"); u.MaxRPS != 20 || u.MaxBurst != 40 || u.MaxPerDay != 100000 || !u.HasBudget() {
		t.Errorf("upstream base/a's budget %+v", u)
	}
	if u, _ := c.Lookup("ethereum", "b"); u.HasBudget() {
		t.Errorf("upstream ethereum/b has no budget: %+v", u)
	}
	// The array form and the object form with only "upstreams" mean the same.
	arr, err := Parse(`[{"chain":"eth","name":"a","upstream":"` + secretURL + `"}]`)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := Parse(objectWith(""))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(arr, obj) {
		t.Errorf("array %+v, object %+v", arr, obj)
	}
}

func TestParseChainID(t *testing.T) {
	for in, want := range map[string]uint64{
		`1`: 1, `"1"`: 1, `"0x1"`: 1, `"0X2105"`: 0x2105, `"0xa4b1"`: 42161, `18446744073709551615`: 1<<64 - 1,
	} {
		c, err := Parse(objectWith(`{"eth":{"chain_id":` + in + `}}`))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := c.ChainSettings("eth").ChainID; got != want {
			t.Errorf("%s: %d, want %d", in, got, want)
		}
	}
	for _, in := range []string{`0`, `"0x0"`, `-1`, `1.5`, `1e3`, `"0x"`, `"x1"`, `"+1"`, `" 1"`, `"0x1_0"`, `18446744073709551616`, `null`, `true`, `[1]`} {
		if _, err := Parse(objectWith(`{"eth":{"chain_id":` + in + `}}`)); err == nil || !strings.Contains(err.Error(), `chains "eth": field "chain_id" must be`) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestParseObjectRanges(t *testing.T) {
	for _, tc := range []struct {
		field      string
		good, bad  []string
		wantInRule string
	}{
		{"max_lag_blocks", []string{`1`, `10000`}, []string{`0`, `10001`, `-1`, `1.5`, `"10"`}, "from 1 to 10000"},
		{"stale_after", []string{`"1s"`, `"1h"`, `"90s"`}, []string{`"999ms"`, `"61m"`, `60`, `"60"`, `""`, `null`}, "from 1s to 1h"},
		{"confirm_after", []string{`"1s"`, `"1h"`}, []string{`"999ms"`, `"61m"`, `0`, `null`}, "from 1s to 1h"},
		{"breaker_failures", []string{`1`, `1000`}, []string{`0`, `1001`}, "from 1 to 1000"},
		{"breaker_open_for", []string{`"1s"`, `"1h"`}, []string{`"0s"`, `"2h"`}, "from 1s to 1h"},
		{"cooldown_after_429", []string{`"1s"`, `"1h"`}, []string{`"500ms"`, `"1h1s"`}, "from 1s to 1h"},
		{"probe_share", []string{`0.001`, `0.5`, `5e-2`}, []string{`0`, `0.51`, `-0.1`, `"0.1"`}, "above 0 and at most 0.5"},
		{"max_attempts", []string{`1`, `10`}, []string{`0`, `11`}, "from 1 to 10"},
		{"request_timeout", []string{`"1s"`, `"5m"`}, []string{`"999ms"`, `"5m1s"`}, "from 1s to 5m"},
		{"hedge_percentile", []string{`0`, `0.5`, `0.99`}, []string{`0.49`, `0.995`, `1`, `-0.5`}, "0 (off) or a number from 0.5 to 0.99"},
		{"hedge_min_delay", []string{`"1ms"`, `"10s"`}, []string{`"0s"`, `"11s"`, `"-1ms"`}, "from 1ms to 10s"},
		{"deny_methods", []string{`[]`, `["admin_*","eth_sendTransaction"]`}, []string{`null`, `"admin_*"`, `["*"]`, `["a*b"]`, `["admin_**"]`, `[""]`, `[1]`, `["admin peers"]`}, "array of method names"},
	} {
		for _, v := range tc.good {
			if _, err := Parse(objectWith(`{"eth":{"` + tc.field + `":` + v + `}}`)); err != nil {
				t.Errorf("%s %s: %v", tc.field, v, err)
			}
		}
		for _, v := range tc.bad {
			_, err := Parse(objectWith(`{"eth":{"` + tc.field + `":` + v + `}}`))
			want := `UPSTREAM_CONFIG: chains "eth": field "` + tc.field + `" `
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.wantInRule) {
				t.Errorf("%s %s: error %v, want %q … %q", tc.field, v, err, want, tc.wantInRule)
			}
		}
	}
}

func TestParseObjectErrors(t *testing.T) {
	up := `{"chain":"eth","name":"a","upstream":"` + secretURL + `"}`
	for _, tc := range []struct{ name, text, want string }{
		{"syntax", `{"upstreams":[` + up, "invalid JSON near byte"},
		{"empty object", `{}`, `UPSTREAM_CONFIG: field "upstreams" is missing`},
		{"unknown top-level key", `{"upstreams":[` + up + `],"` + secretURL + `":1}`, "unknown top-level field"},
		{"upstreams not array", `{"upstreams":` + up + `}`, `field "upstreams" must be an array`},
		{"upstreams null", `{"upstreams":null}`, `field "upstreams" must be an array`},
		{"upstreams empty", `{"upstreams":[]}`, "the upstreams array is empty"},
		{"entry unknown key", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","url":"` + secretURL + `"}]}`, `upstreams entry 0: unknown field (allowed: chain, name, upstream, attempt_timeout, max_logs_range, max_logs_results, archive, max_rps, max_burst, max_per_day)`},
		{"entry missing name", `{"upstreams":[` + up + `,{"chain":"eth","upstream":"` + secretURL + `"}]}`, `upstreams entry 1: field "name" is missing`},
		{"entry duplicate", `{"upstreams":[` + up + `,` + up + `]}`, `upstreams entry 1: field "name": duplicate`},
		{"entry bad url", `{"upstreams":[{"chain":"eth","name":"a","upstream":"ftp://h/s3cr3t"}]}`, `upstreams entry 0: field "upstream" must be an absolute`},
		{"max_logs_range 0", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_logs_range":0}]}`, `upstreams entry 0: field "max_logs_range" must be an integer from 1 to 100000000`},
		{"max_logs_results string", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_logs_results":"5"}]}`, `upstreams entry 0: field "max_logs_results" must be an integer from 1 to 100000000`},
		{"max_rps 0", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_rps":0}]}`, `upstreams entry 0: field "max_rps" must be an integer from 1 to 1000000`},
		{"max_rps fraction", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_rps":2.5}]}`, `field "max_rps" must be an integer from 1 to 1000000`},
		{"max_burst without max_rps", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_burst":5}]}`, `upstreams entry 0: field "max_burst" needs max_rps`},
		{"max_per_day too big", `{"upstreams":[{"chain":"eth","name":"a","upstream":"http://h","max_per_day":1000000000001}]}`, `field "max_per_day" must be an integer from 1 to 1000000000000`},
		{"max_rps in the array form", `[{"chain":"eth","name":"a","upstream":"http://h","max_rps":5}]`, `unknown field`},
		{"max_logs_range in the array form", `[{"chain":"eth","name":"a","upstream":"http://h","max_logs_range":5}]`, `unknown field`},
		{"attempt_timeout too short", `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `","attempt_timeout":"99ms"}]}`, `upstreams entry 0: field "attempt_timeout" must be a duration string from 100ms to 5m`},
		{"attempt_timeout too long", `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `","attempt_timeout":"6m"}]}`, `field "attempt_timeout" must be`},
		{"archive a string", `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `","archive":"true"}]}`, `upstreams entry 0: field "archive" must be true or false`},
		{"archive a number", `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `","archive":1}]}`, `field "archive" must be true or false`},
		{"attempt_timeout number", `{"upstreams":[{"chain":"eth","name":"a","upstream":"` + secretURL + `","attempt_timeout":5}]}`, `field "attempt_timeout" must be`},
		{"chains not object", objectWith(`[]`), `field "chains" must be an object`},
		{"chains null", objectWith(`null`), `field "chains" must be an object`},
		{"chain without upstream", objectWith(`{"eth":{},"base":{"chain_id":8453}}`), `chains "base": no upstream serves this chain`},
		{"chain name invalid", objectWith(`{"` + secretURL + `":{}}`), `chains: a chain name must be 1 to 64`},
		{"chain name admin", objectWith(`{"admin":{}}`), `chains "admin": no upstream serves this chain`},
		{"chain entry not object", objectWith(`{"eth":"` + secretURL + `"}`), `chains "eth": not an object`},
		{"chain entry null", objectWith(`{"eth":null}`), `chains "eth": not an object`},
		{"chain unknown key", objectWith(`{"eth":{"max_lag":5}}`), `chains "eth": unknown field (allowed: chain_id, max_lag_blocks`},
		{"chain unknown key holding a secret", objectWith(`{"eth":{"` + secretURL + `":5}}`), `chains "eth": unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), EnvUpstreams) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "example.com") {
				t.Errorf("error %q shows a value", err)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c, err := Parse(Default)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Chains(), ","); got != "ethereum" {
		t.Errorf("chains %s", got)
	}
	var eps []string
	for _, u := range c.ChainUpstreams("ethereum") {
		eps = append(eps, u.Name+"="+u.URL)
	}
	if got := strings.Join(eps, " "); got != "publicnode=https://ethereum-rpc.publicnode.com llamarpc=https://eth.llamarpc.com" {
		t.Errorf("upstreams %s", got)
	}
	if c.ChainSettings("ethereum").ChainID != 1 {
		t.Error("the default does not pin chain id 1")
	}
}

func TestMatchMethod(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   bool
	}{
		{"admin_peers", true},
		{"admin_", true},
		{"Admin_Peers", true},
		{"ADMIN_ADDPEER", true},
		{"admin", false},
		{"xadmin_peers", false},
		{"personal_sign", true},
		{"miner_setEtherbase", true},
		{"clique_propose", true},
		{"engine_newPayloadV4", true},
		{"debug_setHead", true},
		{"debug_sethead", true},
		{"debug_setHeadX", false},
		{"debug_dbAncients", true},
		{"debug_dbAncient", true},
		{"debug_dbGet", true},
		{"debug_traceTransaction", false},
		{"debug_traceCall", false},
		{"debug_getRawBlock", false},
		{"eth_sign", true},
		{"eth_signTransaction", true},
		{"eth_signTypedData", true},
		{"eth_signTypedData_v4", true},
		{"eth_sendTransaction", true},
		{"eth_sendRawTransaction", false},
		{"evm_mine", true},
		{"evm_snapshot", true},
		{"anvil_setBalance", true},
		{"anvil_impersonateAccount", true},
		{"hardhat_setStorageAt", true},
		{"ganache_snapshot", true},
		{"evmx_mine", false},
		{"eth_accounts", false},
		{"eth_call", false},
		{"txpool_content", false},
		{"txpool_status", false},
		{"", false},
		{"\u212admin_peers", false}, // the Kelvin sign folds to k, never to an ASCII letter here
		{"adm\u0130n_peers", false},
	} {
		if got := MatchMethod(DefaultDenyMethods, tc.method); got != tc.want {
			t.Errorf("MatchMethod(default, %q) = %v, want %v", tc.method, got, tc.want)
		}
	}
	for _, p := range DefaultDenyMethods {
		if !ValidPattern(p) {
			t.Errorf("default pattern %q is not valid", p)
		}
	}
	if MatchMethod(nil, "admin_peers") || MatchMethod([]string{}, "admin_peers") {
		t.Error("an empty list denies")
	}
}

func TestDenied(t *testing.T) {
	c, err := Parse(`{"chains":{"open":{"deny_methods":[]},"strict":{"deny_methods":["eth_call","eth_get*"]}},
		"upstreams":[{"chain":"open","name":"a","upstream":"http://h"},{"chain":"strict","name":"a","upstream":"http://h"},
		{"chain":"plain","name":"a","upstream":"http://h"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	env := func(v string) Settings {
		s, err := LoadSettings(func(k string) string {
			if k == EnvDenyMethods {
				return v
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		settings      Settings
		chain, method string
		want          bool
	}{
		{env(""), "plain", "admin_peers", true},
		{env(""), "plain", "eth_call", false},
		{env(""), "open", "admin_peers", false},
		{env(""), "strict", "admin_peers", false}, // the chain's list replaces the default, it does not extend it
		{env(""), "strict", "eth_call", true},
		{env(""), "strict", "eth_getBalance", true},
		{env(""), "strict", "eth_blockNumber", false},
		{env("eth_blockNumber"), "plain", "eth_blockNumber", true},
		{env("eth_blockNumber"), "plain", "admin_peers", false},
		{env("eth_blockNumber"), "strict", "eth_blockNumber", false},
		{env("none"), "plain", "admin_peers", false},
		{Settings{}, "plain", "admin_peers", true}, // nil means the default list
		{env(""), "unknown", "admin_peers", true},
	} {
		if got := c.Denied(tc.settings, tc.chain, tc.method); got != tc.want {
			t.Errorf("Denied(%v, %s, %s) = %v, want %v", tc.settings.DenyMethods, tc.chain, tc.method, got, tc.want)
		}
	}
}

// TestBroadcastWrites: broadcast_writes is on by default with more than one upstream, off with one, and an explicit
// value wins either way; a value that is not a boolean is refused.
func TestBroadcastWrites(t *testing.T) {
	c, err := Parse(`{"chains": {"on": {"broadcast_writes": true}, "off": {"broadcast_writes": false}}, "upstreams": [
		{"chain": "on", "name": "a", "upstream": "http://a.example"},
		{"chain": "off", "name": "a", "upstream": "http://a.example"}, {"chain": "off", "name": "b", "upstream": "http://b.example"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		chain     string
		upstreams int
		want      bool
	}{{"on", 1, true}, {"off", 2, false}, {"unset", 1, false}, {"unset", 2, true}} {
		if got := c.ChainSettings(tc.chain).Broadcast(tc.upstreams); got != tc.want {
			t.Errorf("%s with %d upstreams: broadcast %v, want %v", tc.chain, tc.upstreams, got, tc.want)
		}
	}
	if _, err := Parse(`{"chains": {"x": {"broadcast_writes": "yes"}}, "upstreams": [{"chain": "x", "name": "a", "upstream": "http://a.example"}]}`); err == nil {
		t.Error(`broadcast_writes "yes" accepted`)
	}
}
