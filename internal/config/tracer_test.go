package config

import (
	"encoding/json"
	"testing"
)

// The tracer rule: a debug_ call whose tracer is anything but a built-in name is a custom tracer, however its key is
// spelt (geth's encoding/json matches member names without regard to case), and whatever hides it (a muxTracer's
// sub-tracers, escapes, a value of the wrong type).
func TestCustomTracer(t *testing.T) {
	const js = `"{data: [], step: function(log) { this.data.push(log.op.toString()) }, fault: function() {}, result: function() { return this.data }}"`
	call := `{"to":"0x0000000000000000000000000000000000000004"}`
	for _, tc := range []struct {
		name, method, params string
		want                 bool
	}{
		{"no params", "debug_traceCall", ``, false},
		{"no config", "debug_traceCall", `[` + call + `,"latest"]`, false},
		{"struct logger", "debug_traceTransaction", `["0x01",{"disableStorage":true}]`, false},
		{"null tracer", "debug_traceTransaction", `["0x01",{"tracer":null}]`, false},
		{"callTracer", "debug_traceCall", `[` + call + `,"latest",{"tracer":"callTracer","tracerConfig":{"onlyTopCall":true}}]`, false},
		{"prestateTracer", "debug_traceBlockByNumber", `["latest",{"tracer":"prestateTracer"}]`, false},
		{"4byteTracer", "debug_traceBlockByHash", `["0x01",{"tracer":"4byteTracer"}]`, false},
		{"flatCallTracer", "debug_traceBlock", `["0x01",{"tracer":"flatCallTracer"}]`, false},
		{"mux of built-ins", "debug_traceCall", `[` + call + `,"latest",{"tracer":"muxTracer","tracerConfig":{"callTracer":{},"4byteTracer":null}}]`, false},
		{"not a debug method", "eth_call", `[{"tracer":` + js + `}]`, false},
		{"javascript", "debug_traceCall", `[` + call + `,"latest",{"tracer":` + js + `}]`, true},
		{"javascript, transaction", "debug_traceTransaction", `["0x01",{"tracer":` + js + `}]`, true},
		{"javascript, block by number", "debug_traceBlockByNumber", `["latest",{"tracer":` + js + `}]`, true},
		{"javascript, block by hash", "debug_traceBlockByHash", `["0x01",{"tracer":` + js + `}]`, true},
		{"javascript, raw block", "debug_traceBlock", `["0xf9",{"tracer":` + js + `}]`, true},
		{"javascript, call many", "debug_traceCallMany", `[[],"latest",{"tracer":` + js + `}]`, true},
		{"method in another case", "DEBUG_TRACECALL", `[` + call + `,"latest",{"tracer":` + js + `}]`, true},
		{"key in upper case", "debug_traceCall", `[` + call + `,"latest",{"TRACER":` + js + `}]`, true},
		{"key in mixed case", "debug_traceCall", `[` + call + `,"latest",{"tRaCeR":` + js + `}]`, true},
		{"key escaped", "debug_traceCall", `[` + call + `,"latest",{"\u0074racer":` + js + `}]`, true},
		{"built-in name in another case", "debug_traceCall", `[` + call + `,"latest",{"tracer":"CallTracer"}]`, true},
		{"built-in name with a space", "debug_traceCall", `[` + call + `,"latest",{"tracer":"callTracer "}]`, true},
		{"empty name", "debug_traceCall", `[` + call + `,"latest",{"tracer":""}]`, true},
		{"not a string", "debug_traceCall", `[` + call + `,"latest",{"tracer":{"step":1}}]`, true},
		{"javascript in a mux", "debug_traceCall", `[` + call + `,"latest",{"tracer":"muxTracer","tracerConfig":{` + js + `:{}}}]`, true},
		{"javascript in a mux, key cased", "debug_traceCall", `[` + call + `,"latest",{"tracer":"muxTracer","TRACERCONFIG":{` + js + `:{}}}]`, true},
		{"javascript in a nested mux", "debug_traceCall", `[` + call + `,"latest",{"tracer":"muxTracer","tracerConfig":{"muxTracer":{` + js + `:null}}}]`, true},
		{"mux config not an object", "debug_traceCall", `[` + call + `,"latest",{"tracer":"muxTracer","tracerConfig":[1]}]`, true},
		{"by-name params", "debug_traceCall", `{"tracer":` + js + `}`, true},
		{"params not JSON", "debug_traceCall", `[{"tracer":`, true},
	} {
		if got := CustomTracer(tc.method, json.RawMessage(tc.params)); got != tc.want {
			t.Errorf("%s: CustomTracer(%s, %s) = %v, want %v", tc.name, tc.method, tc.params, got, tc.want)
		}
	}
}

// allow_custom_tracers lets a chain's calls through; without it they are denied.
func TestTracerDenied(t *testing.T) {
	c, err := Parse(`{"chains": {"open": {"allow_custom_tracers": true}, "shut": {"allow_custom_tracers": false}},
		"upstreams": [{"chain": "open", "name": "a", "upstream": "http://a.example"}, {"chain": "shut", "name": "a", "upstream": "http://a.example"},
			{"chain": "plain", "name": "a", "upstream": "http://a.example"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	params := json.RawMessage(`["0x01",{"tracer":"{result: function() { return 1 }}"}]`)
	for chain, want := range map[string]bool{"open": false, "shut": true, "plain": true} {
		if got := c.TracerDenied(chain, "debug_traceTransaction", params); got != want {
			t.Errorf("chain %s: denied %v, want %v", chain, got, want)
		}
	}
	if _, err := Parse(`{"chains": {"x": {"allow_custom_tracers": "yes"}}, "upstreams": [{"chain": "x", "name": "a", "upstream": "http://a.example"}]}`); err == nil {
		t.Error(`allow_custom_tracers "yes" accepted`)
	}
}
