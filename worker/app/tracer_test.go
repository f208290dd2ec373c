package app

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// A debug_trace* call with a tracer given as JavaScript code is denied (-32067, 403, saying why) before it reaches
// any upstream, in a batch too; a built-in tracer passes; a chain with allow_custom_tracers lets the code through.
func TestCustomTracerDenied(t *testing.T) {
	n := evmtest.NewNode(t, "a", 1, 100)
	cfg := `{"chains": {"open": {"allow_custom_tracers": true}},
		"upstreams": [{"chain": "open", "name": "a", "upstream": "` + n.URL + `"}, {"chain": "eth", "name": "a", "upstream": "` + n.URL + `"}]}`
	h := startHarness(t, map[string]string{"UPSTREAM_CONFIG": cfg, "ADMIN_PASSWORD": password, "EVMLB_ATTEMPT_TIMEOUT": "300ms"})
	custom := `{"jsonrpc":"2.0","id":3,"method":"debug_traceCall","params":[{"to":"0x0000000000000000000000000000000000000004"},"latest",{"Tracer":"{depth: 0, step: function() {}, fault: function() {}, result: function() { return [] }}"}]}`
	builtin := `{"jsonrpc":"2.0","id":4,"method":"debug_traceCall","params":[{"to":"0x0000000000000000000000000000000000000004"},"latest",{"tracer":"callTracer"}]}`

	status, body := h.post("eth", custom)
	if status != http.StatusForbidden || errorCode(t, body) != jsonrpc.ErrMethodDenied.Code || !strings.Contains(body, `"id":3`) ||
		!strings.Contains(body, "debug_traceCall with a custom JavaScript tracer") {
		t.Errorf("custom tracer: %d %s, want 403 -32067 saying why", status, body)
	}
	status, body = h.post("eth", `[`+builtin+`,`+custom+`]`)
	if ids, codes, msgs := errorAnswers(t, body); status != http.StatusForbidden || !slices.Equal(ids, []string{"4", "3"}) ||
		codes[0] != jsonrpc.ErrMethodDenied.Code || !strings.Contains(msgs[0], "batch element 1: debug_traceCall with a custom JavaScript tracer") {
		t.Errorf("batch holding a custom tracer: %d %s", status, body)
	}
	if got := n.Methods(); slices.Contains(got, "debug_traceCall") {
		t.Errorf("the node received %v", got)
	}
	if status, body := h.post("eth", builtin); status != http.StatusOK || !strings.Contains(body, `"method":"debug_traceCall"`) {
		t.Errorf("callTracer: %d %s, want the node's answer", status, body)
	}
	if status, body := h.post("open", custom); status != http.StatusOK || !strings.Contains(body, `"method":"debug_traceCall"`) {
		t.Errorf("custom tracer on a chain that allows it: %d %s, want the node's answer", status, body)
	}
}
