package e2e

import "testing"

// TestWazero runs the scenario table against build/app.wasm in the wazero
// host. It needs no Node.js. When the workerd table already ran in this
// process, the two hosts' records are compared too.
func TestWazero(t *testing.T) {
	recs := runTable(t, wazeroHost)
	if other := recordsOf(workerdHost.Name()); other != nil {
		compareHosts(t, workerdHost.Name(), other, wazeroHost.Name(), recs)
	}
}
