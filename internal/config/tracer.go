package config

import (
	"encoding/json"
	"slices"
	"strings"
)

// BuiltinTracers are the tracer names a debug_trace* call may give without allow_custom_tracers: geth's native
// tracers (eth/tracers/native) and its built-in JavaScript ones (fixed code, eth/tracers/js/internal/tracers),
// which anvil and reth also accept where they have them (revm-inspectors' GethDebugBuiltInTracerType). Names
// compare exactly, as geth looks them up: any other string is run as JavaScript code.
var BuiltinTracers = []string{
	"callTracer", "flatCallTracer", "4byteTracer", "prestateTracer", "noopTracer", "muxTracer", "erc7562Tracer",
	"bigramTracer", "callTracerLegacy", "evmdisTracer", "noopTracerLegacy", "opcountTracer",
	"prestateTracerLegacy", "trigramTracer", "unigramTracer",
}

// maxMuxDepth bounds muxTracer configurations nested in one another.
const maxMuxDepth = 4

// CustomTracer reports whether a call of method with params asks the node to run a tracer that is not one of
// BuiltinTracers: JavaScript code, which can crash the node (issue 18). Only debug_ methods (any case) take a
// tracer. It reads params as geth's TraceConfig does, with encoding/json, whose member names match without
// regard to case ("TRACER", Unicode folding included): every member of a params object (or of the params object
// itself) whose name folds to "tracer" must be null or a built-in name, and a muxTracer's tracerConfig, whose
// keys name the tracers it runs (geth makes JavaScript ones of unknown names), must name built-in ones only.
// Anything it cannot read so is a custom tracer: the rule fails closed.
func CustomTracer(method string, params json.RawMessage) bool {
	if len(method) < len("debug_") || !asciiEqualFold(method[:len("debug_")], "debug_") {
		return false
	}
	p := trimSpace(params)
	if len(p) == 0 || string(p) == "null" {
		return false
	}
	var objects []json.RawMessage
	switch p[0] {
	case '[':
		if json.Unmarshal(p, &objects) != nil {
			return true
		}
	case '{':
		objects = []json.RawMessage{p}
	default:
		return false // not a params shape geth reads: the node refuses it
	}
	for _, o := range objects {
		if o = trimSpace(o); len(o) > 0 && o[0] == '{' && !builtinConfig(o) {
			return true
		}
	}
	return false
}

// builtinConfig reports whether a trace configuration object names no tracer but built-in ones.
func builtinConfig(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	var mux bool
	for k, v := range m {
		if !strings.EqualFold(k, "tracer") {
			continue
		}
		name, known := tracerName(v)
		if !known {
			return false
		}
		mux = mux || name == "muxTracer"
	}
	if !mux {
		return true
	}
	for k, v := range m {
		if strings.EqualFold(k, "tracerConfig") && !builtinMux(v, 1) {
			return false
		}
	}
	return true
}

// tracerName reads a tracer member: null (the default struct logger) or a built-in name.
func tracerName(v json.RawMessage) (string, bool) {
	v = trimSpace(v)
	if string(v) == "null" {
		return "", true
	}
	var name string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &name) != nil {
		return "", false
	}
	return name, slices.Contains(BuiltinTracers, name)
}

// builtinMux reports whether a muxTracer's tracerConfig (tracer name → its configuration) names built-in tracers
// only, nested muxTracers' included.
func builtinMux(v json.RawMessage, depth int) bool {
	v = trimSpace(v)
	if string(v) == "null" || len(v) == 0 {
		return true
	}
	var m map[string]json.RawMessage
	if depth > maxMuxDepth || v[0] != '{' || json.Unmarshal(v, &m) != nil {
		return false
	}
	for name, cfg := range m {
		if !slices.Contains(BuiltinTracers, name) {
			return false
		}
		if name == "muxTracer" && !builtinMux(cfg, depth+1) {
			return false
		}
	}
	return true
}

// trimSpace cuts JSON whitespace around v.
func trimSpace(v json.RawMessage) json.RawMessage {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// TracerDenied reports whether the balancer refuses a call of method with params on chain for its custom tracer
// (CustomTracer), unless the chain sets allow_custom_tracers.
func (c *Config) TracerDenied(chain, method string, params json.RawMessage) bool {
	return !c.ChainSettings(chain).AllowCustomTracers && CustomTracer(method, params)
}
