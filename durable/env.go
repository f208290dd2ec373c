// Package durable holds the logic of the two Durable Objects, the control plane: Chain (one per chain: the
// routing table's authority, fed by health reports and every Worker isolate's outcomes, serving snapshots) and
// Upstream (one per provider: health checks on alarms, per-method stats). Both are written against
// platform.Platform, so they run natively in tests. internal/protocol speaks their wire protocol.
package durable

import (
	"encoding/json"
	"net/http"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/platform"
)

// Env is what both objects share: the host and the configuration read from its environment.
type Env struct {
	P        platform.Platform
	Config   *config.Config
	Settings config.Settings
}

// writeJSON answers v as JSON with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are written; recovered by the app
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
