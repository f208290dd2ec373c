package methods

import (
	"regexp"
	"testing"
)

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"eth_call": "eth_call", "eth_getLogs": "eth_getLogs", "net_version": "net_version",
		"web3_clientVersion": "web3_clientVersion", "debug_traceTransaction": "debug_traceTransaction",
		"trace_block": "trace_block", "txpool_status": "txpool_status",
		"ETH_CALL": Other, "eth_call ": Other, "junk_1": Other, "": Other, "other": Other, "(other)": Other,
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListIsWellFormed(t *testing.T) {
	name := regexp.MustCompile(`^(eth|net|web3|debug|trace|txpool)_[A-Za-z0-9_]+$`)
	seen := map[string]bool{}
	for _, m := range list {
		if !name.MatchString(m) || seen[m] || len(m) > 64 {
			t.Errorf("%q: malformed, duplicated or too long", m)
		}
		seen[m] = true
	}
	if known[Other] {
		t.Error("the other bucket is a method name")
	}
}
