package balance

import (
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/config"
)

// TestDefaultsFromTable: a zero field takes config.ChainDefaults' value, and every field is clamped to its row's
// range in config.ChainTable.
func TestDefaultsFromTable(t *testing.T) {
	d := Settings{}.Defaults()
	c := config.ChainDefaults
	if d.MaxLagBlocks != c.MaxLagBlocks || d.StaleAfter != c.StaleAfter || d.ConfirmAfter != c.ConfirmAfter ||
		d.BreakerFailures != c.BreakerFailures || d.BreakerOpenFor != c.BreakerOpenFor ||
		d.CooldownAfter429 != c.CooldownAfter429 || d.ProbeShare != c.ProbeShare {
		t.Errorf("defaults %+v, want config.ChainDefaults %+v", d, c)
	}
	low := Settings{StaleAfter: time.Nanosecond, ConfirmAfter: time.Nanosecond, BreakerOpenFor: time.Nanosecond, CooldownAfter429: time.Nanosecond}.Defaults()
	high := Settings{MaxLagBlocks: 1 << 40, StaleAfter: 1000 * time.Hour, ConfirmAfter: 1000 * time.Hour, BreakerFailures: 1 << 30,
		BreakerOpenFor: 1000 * time.Hour, CooldownAfter429: 1000 * time.Hour, ProbeShare: 7}.Defaults()
	for _, tc := range []struct {
		row       *config.Setting
		low, high any
		lo, hi    any
	}{
		{config.ChainMaxLagBlocks, nil, high.MaxLagBlocks, nil, uint64(10000)},
		{config.ChainStaleAfter, low.StaleAfter, high.StaleAfter, time.Second, time.Hour},
		{config.ChainConfirmAfter, low.ConfirmAfter, high.ConfirmAfter, time.Second, time.Hour},
		{config.ChainBreakerFailures, nil, high.BreakerFailures, nil, 1000},
		{config.ChainBreakerOpenFor, low.BreakerOpenFor, high.BreakerOpenFor, time.Second, time.Hour},
		{config.ChainCooldownAfter429, low.CooldownAfter429, high.CooldownAfter429, time.Second, time.Hour},
		{config.ChainProbeShare, nil, high.ProbeShare, nil, 0.5},
	} {
		if tc.low != tc.lo || tc.high != tc.hi {
			t.Errorf("%s: clamped to %v and %v, want %v and %v (%s)", tc.row.Name, tc.low, tc.high, tc.lo, tc.hi, tc.row.RangeCell())
		}
	}
}
