package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/readme"
)

// TestReadmeSettingsTables holds README.md's chain settings table and its Tuning table to ChainTable and
// TuningTable: the same settings in the same order, each with the default, range and meaning of its row.
func TestReadmeSettingsTables(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		table  []*Setting
		code   string
	}{
		{"chain settings", []string{"field", "default", "range", "meaning"}, ChainTable, "config.ChainTable"},
		{"Tuning", []string{"variable", "default", "range", "meaning"}, TuningTable, "config.TuningTable"},
	} {
		rows, err := readme.Table(tc.header...)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range compareSettings(rows, tc.table) {
			t.Errorf("README.md's %s table differs from %s: %s", tc.name, tc.code, p)
		}
	}
}

// compareSettings lists how rows (README.md's) differ from table, each difference naming its row.
func compareSettings(rows []readme.Row, table []*Setting) []string {
	keys := make([]string, len(table))
	for i, s := range table {
		keys[i] = "`" + s.Name + "`"
	}
	aligned, out := readme.Align(rows, keys)
	for i, s := range table {
		r := aligned[i]
		if r == nil {
			continue
		}
		for j, want := range []string{s.DefaultCell(), s.RangeCell(), s.Doc} {
			if got := r.Cells[j+1]; got != want {
				col := []string{"default", "range", "meaning"}[j]
				out = append(out, fmt.Sprintf("README.md:%d: row %s: %s is %q, the code's is %q", r.Line, keys[i], col, got, want))
			}
		}
	}
	return out
}

// TestReadmeAttemptTimeout holds the README's sentence on an upstream's attempt_timeout to its range.
func TestReadmeAttemptTimeout(t *testing.T) {
	text, err := readme.Text()
	if err != nil {
		t.Fatal(err)
	}
	want := "`\"attempt_timeout\"`, " + UpstreamAttemptTimeout.RangeCell() + ", instead of `" + EnvAttemptTimeout + "`"
	if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
		t.Errorf("README.md does not say %q", want)
	}
}

// TestChainFieldsFollowTable: every chain setting is parsed, in ChainTable's order.
func TestChainFieldsFollowTable(t *testing.T) {
	if len(chainFields) != len(ChainTable) {
		t.Fatalf("%d chain fields, %d rows in ChainTable", len(chainFields), len(ChainTable))
	}
	for i, f := range chainFields {
		if f.Setting != ChainTable[i] {
			t.Errorf("chain field %d is %s, ChainTable's row %d is %s", i, f.Name, i, ChainTable[i].Name)
		}
	}
}

// TestTableRanges: every number's default is within its range, and the range is not empty.
func TestTableRanges(t *testing.T) {
	for _, s := range append(append([]*Setting{}, ChainTable...), TuningTable...) {
		if s.Kind != Integer && s.Kind != Bytes && s.Kind != Duration && s.Kind != Number {
			continue
		}
		if s.def != 0 && (s.def < s.min || s.def > s.max) {
			t.Errorf("%s: default %s outside %s", s.Name, s.Default, s.RangeCell())
		}
		if s.min >= s.max {
			t.Errorf("%s: empty range %s", s.Name, s.RangeCell())
		}
	}
}

// TestRules pins the rule every row's error states, word for word: they are part of the configuration errors
// operators and scripts read.
func TestRules(t *testing.T) {
	want := map[*Setting]string{
		ChainChainID:           "must be a chain id from 1 to 2^64-1: a JSON number, or a decimal or 0x-hex string",
		ChainMaxLagBlocks:      "must be an integer from 1 to 10000",
		ChainStaleAfter:        "must be a duration string from 1s to 1h",
		ChainConfirmAfter:      "must be a duration string from 1s to 1h",
		ChainBreakerFailures:   "must be an integer from 1 to 1000",
		ChainBreakerOpenFor:    "must be a duration string from 1s to 1h",
		ChainCooldownAfter429:  "must be a duration string from 1s to 1h",
		ChainProbeShare:        "must be a number above 0 and at most 0.5",
		ChainMaxAttempts:       "must be an integer from 1 to 10",
		ChainRequestTimeout:    "must be a duration string from 1s to 5m",
		ChainHedgePercentile:   "must be 0 (off) or a number from 0.5 to 0.99",
		ChainHedgeMinDelay:     "must be a duration string from 1ms to 10s",
		ChainDenyMethods:       "must be an array of method names, each optionally ending in *",
		UpstreamAttemptTimeout: "must be a duration string from 100ms to 5m",
		TuningHealthInterval:   "must be a duration from 1s to 1h0m0s",
		TuningAttemptTimeout:   "must be a duration from 100ms to 5m0s",
		TuningSnapshotTTL:      "must be a duration from 100ms to 1m0s",
		TuningMaxBodyBytes:     "must be an integer from 1024 to 104857600",
		TuningMaxResponseBytes: "must be an integer from 1024 to 104857600",
		TuningMaxInflightBytes: "must be an integer from 1048576 to 104857600",
		TuningMaxBatch:         "must be an integer from 1 to 10000",
		TuningDenyMethods:      "must be none or a comma-separated list of method names, each optionally ending in *",
		TuningCORSOrigins:      "must be *, none, or a comma-separated list of origins (scheme://host[:port])",
	}
	want[ChainAllowCustomTracers] = "must be true or false" // apart: its long name would realign the block above
	want[ChainFinalityDepth] = "must be an integer from 0 to 100000"
	want[ChainCache] = "must be true or false"
	want[ChainCacheFinalizedTTL] = "must be a duration string from 1s to 168h"
	want[ChainCacheRealtimeTTL] = "must be a duration string from 100ms to 1m"
	want[ChainCacheHashTTL] = "must be a duration string from 1s to 168h"
	want[ChainCacheMaxAnswerBytes] = "must be an integer from 1 KiB to 32 MiB"
	want[ChainBroadcastWrites] = "must be true or false"
	want[TuningCacheMemoryBytes] = "must be an integer from 1048576 to 536870912"
	want[ChainLogsMaxRange] = "must be an integer from 1 to 1000000000"
	want[ChainLogsMaxAnswerBytes] = "must be an integer from 1 KiB to 100 MiB"
	want[UpstreamMaxLogsRange] = "must be an integer from 1 to 100000000"
	want[UpstreamMaxLogsResults] = "must be an integer from 1 to 100000000"
	want[ChainCapabilityTTL] = "must be a duration string from 1s to 168h"
	want[UpstreamArchive] = "must be true or false"
	want[UpstreamMaxRPS] = "must be an integer from 1 to 1000000"
	want[UpstreamMaxBurst] = "must be an integer from 1 to 1000000"
	want[UpstreamMaxPerDay] = "must be an integer from 1 to 1000000000000"
	want[ChainSubscriptionPoll] = "must be a duration string from 1s to 1m"
	want[TuningWSMaxSockets] = "must be an integer from 1 to 32768"
	want[TuningWSMaxSubscriptions] = "must be an integer from 1 to 1000"
	want[TuningWSRate] = "must be an integer from 1 to 10000"
	if len(want) != len(ChainTable)+len(TuningTable)+7 {
		t.Errorf("%d rules pinned, %d rows", len(want), len(ChainTable)+len(TuningTable)+7)
	}
	for s, w := range want {
		if got := s.rule(); got != w {
			t.Errorf("%s: rule %q, want %q", s.Name, got, w)
		}
	}
}

// TestSmallBodyInDoc: EVMLB_MAX_INFLIGHT_BYTES's line states the size below which a body is always admitted.
func TestSmallBodyInDoc(t *testing.T) {
	const text = "64 KiB"
	if n, err := readValue(Bytes, text); err != nil || int64(n) != SmallBodyBytes {
		t.Fatalf("SmallBodyBytes is %d, not %s: change %s's Doc (and README.md) with it", SmallBodyBytes, text, EnvMaxInflightBytes)
	}
	if !strings.Contains(TuningMaxInflightBytes.Doc, "a body over "+text) {
		t.Errorf("%s's Doc does not state the small-body size, %s: %q", EnvMaxInflightBytes, text, TuningMaxInflightBytes.Doc)
	}
}

// TestEveryRowIsRead: every row of the tables is parsed: a bad value of each is refused with the row's rule.
func TestEveryRowIsRead(t *testing.T) {
	for _, s := range TuningTable {
		_, ps := LoadSettingsAll(func(k string) string {
			if k == s.Name {
				return "x!"
			}
			return ""
		})
		if len(ps) != 1 || ps[0].Path != s.Name || ps[0].Msg != s.rule() {
			t.Errorf("%s=x!: problems %v, want one: %s", s.Name, ps, s.rule())
		}
	}
	for _, s := range ChainTable {
		_, ps := ParseAll(`{"chains": {"eth": {"` + s.Name + `": "x!"}}, "upstreams": [{"chain": "eth", "name": "a", "upstream": "https://h"}]}`)
		if len(ps) != 1 || ps[0].Path != "$.chains.eth."+s.Name || ps[0].Msg != s.rule() {
			t.Errorf("%s: \"x!\": problems %v, want one: %s", s.Name, ps, s.rule())
		}
	}
}

// TestReadmeConfigurationTable holds README.md's Configuration table to Environment: the same variables in the
// same order, each a secret or a var as the code treats it.
func TestReadmeConfigurationTable(t *testing.T) {
	rows, err := readme.Table("name", "kind", "meaning")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(Environment))
	for i, v := range Environment {
		keys[i] = "`" + v.Name + "`"
	}
	aligned, problems := readme.Align(rows, keys)
	for i, v := range Environment {
		r := aligned[i]
		if r == nil {
			continue
		}
		want := map[bool]string{true: "secret", false: "var"}[v.Secret]
		if kind, _, _ := strings.Cut(r.Cells[1], " "); kind != want {
			problems = append(problems, fmt.Sprintf("README.md:%d: row %s: kind is %q, the code's is %s", r.Line, keys[i], r.Cells[1], want))
		}
	}
	for _, p := range problems {
		t.Errorf("README.md's Configuration table differs from config.Environment: %s", p)
	}
}

// TestDevScriptVariables: scripts/dev.sh (make dev, wrangler dev) lets the environment override .dev.vars for
// exactly Environment's variables, as the wazero host does (server.OverrideFromEnviron).
func TestDevScriptVariables(t *testing.T) {
	b, err := os.ReadFile("../../scripts/dev.sh")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, v := range Environment {
		want = append(want, v.Name)
	}
	pattern := strings.Join(want, "|")
	if !strings.Contains(string(b), `case "$name" in `+pattern+")") {
		t.Errorf("scripts/dev.sh does not pass exactly %s from the environment (case \"$name\" in %s)", pattern, pattern)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(b)), " "), "("+strings.Join(want, ", ")+")") {
		t.Errorf("scripts/dev.sh's opening comment does not name (%s)", strings.Join(want, ", "))
	}
}

// TestIsVariable: the names the hosts take from the environment.
func TestIsVariable(t *testing.T) {
	for name, want := range map[string]bool{
		"UPSTREAM_CONFIG": true, "CLIENT_KEYS": true, "ADMIN_PASSWORD": true, "ADMIN_USER": true, "METRICS_TOKEN": true,
		"EVMLB_MAX_BATCH": true, "HOME": false, "METRICS_TOKENS": false, "EVMLB": false, "ADMIN_X": false,
	} {
		if IsVariable(name) != want {
			t.Errorf("IsVariable(%s) = %v", name, !want)
		}
	}
	if got := strings.Join(Secrets(), ","); got != "UPSTREAM_CONFIG,CLIENT_KEYS,ADMIN_PASSWORD,METRICS_TOKEN" {
		t.Errorf("Secrets() = %s", got)
	}
}
