package e2e

import "testing"

// TestWorkerd runs the scenario table against the balancer in workerd through
// `wrangler dev` (it needs node, npm ci and make build), then compares every
// scenario's record with the wazero host's: the two hosts must answer alike.
// When the wazero table has not run in this process it runs here first.
func TestWorkerd(t *testing.T) {
	needHost(t, workerdHost)
	recs := runTable(t, workerdHost)
	ref := recordsOf(wazeroHost.Name())
	if ref == nil {
		if err := wazeroHost.Available(); err != nil {
			t.Logf("no host comparison: %v", err)
			return
		}
		t.Run("wazero-reference", func(t *testing.T) { ref = runTable(t, wazeroHost) })
	}
	compareHosts(t, wazeroHost.Name(), ref, workerdHost.Name(), recs)
}
