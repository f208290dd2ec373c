package serve

import (
	"strings"
	"testing"
)

// TestEdgeCacheSetting: -edge-cache-mb and EVMLB_HOST_EDGE_CACHE_MB are refused when they are not a whole
// number of MiB, 0 or more, before anything starts.
func TestEdgeCacheSetting(t *testing.T) {
	if err := Run([]string{"serve", "-edge-cache-mb", "-1"}, "usage line"); err == nil || err.Error() != "usage line" {
		t.Fatalf("-edge-cache-mb -1: %v", err)
	}
	if err := Run([]string{"serve", "-edge-cache-mb", "lots"}, "usage line"); err == nil || !strings.Contains(err.Error(), "edge-cache-mb") {
		t.Fatalf("-edge-cache-mb lots: %v", err)
	}
	for _, v := range []string{"-1", "64MiB", "1.5"} {
		t.Setenv(EdgeCacheEnv, v)
		if err := Run([]string{"serve"}, "usage line"); err == nil || !strings.Contains(err.Error(), EdgeCacheEnv+" must be") {
			t.Fatalf("%s=%s: %v", EdgeCacheEnv, v, err)
		}
	}
}

func TestEdgeCacheBytes(t *testing.T) {
	if got := edgeCacheBytes(0); got >= 0 {
		t.Errorf("0 MiB: %d, want a negative bound (none; 0 would be the server's default)", got)
	}
	if got := edgeCacheBytes(64); got != 64<<20 {
		t.Errorf("64 MiB: %d", got)
	}
}

// TestMaxConnsSetting: -max-conns below 1 is a usage error.
func TestMaxConnsSetting(t *testing.T) {
	for _, v := range []string{"0", "-5"} {
		if err := Run([]string{"serve", "-max-conns", v}, "usage line"); err == nil || err.Error() != "usage line" {
			t.Errorf("-max-conns %s: %v", v, err)
		}
	}
}
