package server

import (
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/contract"
)

// TestProtocolViolations: each way of breaking CONTRACT.md is logged as one line, counted and (when it belongs
// to a call) fails that call.
func TestProtocolViolations(t *testing.T) {
	h := newHost(t, Options{})
	for _, tc := range []struct {
		path, violation string
		code            int
		body            string // "" is the contract's internal error body
	}{
		{"/direct-fetch", "I/O outside the call protocol: fetch()", 200, "threw: I/O outside the call protocol: fetch()"},
		{"/direct-timer", "I/O outside the call protocol: setTimeout()", 200, "threw: I/O outside the call protocol: setTimeout()"},
		{"/direct-state", "I/O outside the call protocol: context.host.state()", 200, "threw: I/O outside the call protocol: context.host.state()"},
		{"/direct-namespace", "I/O outside the call protocol: context.env.CHAIN.idFromName()", 200, "threw: I/O outside the call protocol: context.env.CHAIN.idFromName()"},
		{"/storage", "storage operation from a worker call (request GET /storage)", 500, ""},
		{"/unknown-op", `unknown op "teleport" (request GET /unknown-op)`, 500, ""},
		{"/bad-message", "the message is not a message of the contract: json: cannot unmarshal number", 500, ""},
		{"/unknown-field", `the message is not a message of the contract: json: unknown field "colour"`, 500, ""},
		{"/body-with-storage", "sleep: a body with a message that carries none (request GET /body-with-storage)", 500, ""},
		{"/no-response", "done before response (request GET /no-response)", 500, ""},
		// A client key in a chain path is logged redacted (issue 22).
		{"/eth/evmlb_k3y-in-the-path", "done before response (request GET /eth/[key])", 500, ""},
		{"/double-response", "second response (request GET /double-response)", 200, "first"},
		{"/bad-status", "response status 99 is outside 200–599", 500, ""},
		{"/abort-unknown", "abort of unknown operation 999", 500, ""},
		{"/reuse-id", "operation id 7 used twice", 500, ""},
		{"/after-done", `message "sleep" after done (request GET /after-done)`, 200, "ok"},
		{"/after-last", `message "sleep" after done (request GET /after-last)`, 200, "ok"},
		{"/deliver-unknown", "deliver for call 1073741831, which is not running (runtime worker-", 200, "ok"},
		{"/take-outside", "take outside begin and complete (runtime worker-", 200, "ok"},
		{"/body-none", "body for call ", 200, "ok"},
	} {
		code, body := h.do("GET", tc.path, nil)
		want := tc.body
		if want == "" {
			want = contract.InternalErrorBody
		}
		if code != tc.code || body != want {
			t.Errorf("%s: %d %s, want %d %s", tc.path, code, body, tc.code, want)
		}
		h.expectViolation(tc.violation)
	}
	if strings.Contains(h.log.String(), "k3y") {
		t.Errorf("the log holds a client key:\n%s", h.log)
	}
	if n := strings.Count(h.log.String(), "evmlb host: protocol violation: "); n != int(h.violations) {
		t.Fatalf("%d violation lines for %d violations:\n%s", n, h.violations, h.log)
	}
	// The runtimes lived through all of it, and no call was left waiting.
	if st := h.settled(); st.Starts != len(st.Runtimes) {
		t.Fatalf("%+v", st)
	}
}
