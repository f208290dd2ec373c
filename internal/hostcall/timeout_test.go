package hostcall

import (
	"testing"

	"github.com/evmlb/evmlb/internal/config"
)

// TestDefaultTimeoutCoversSettings: an operation without a deadline is cut at the longest bound a setting allows,
// never before.
func TestDefaultTimeoutCoversSettings(t *testing.T) {
	for _, s := range []*config.Setting{config.ChainRequestTimeout, config.TuningAttemptTimeout, config.UpstreamAttemptTimeout} {
		if s.MaxDuration() != defaultTimeout {
			t.Errorf("defaultTimeout is %v, %s allows up to %v", defaultTimeout, s.Name, s.MaxDuration())
		}
	}
}
