package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// parseObject reads the object form of UPSTREAM_CONFIG:
//
//	{"chains": {"ethereum": {"chain_id": 1, "max_lag_blocks": 10, …}},
//	 "upstreams": [{"chain": "ethereum", "name": "a", "upstream": "https://…", "attempt_timeout": "5s"}]}
//
// "upstreams" is required and holds the array form's entries, each with an optional attempt_timeout. "chains" is
// optional; each of its keys must be a chain that has an upstream, and every field of its value is optional (see
// ChainTable for meanings, defaults and ranges). Unknown keys are errors at every level.
func parseObject(b []byte, ps *problems) *Config {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		msg := "must be a JSON object {\"chains\",\"upstreams\"}"
		ps.add("$", "", msg, msg)
		return nil
	}
	for k := range top {
		if k != "chains" && k != "upstreams" {
			msg := "unknown top-level field (allowed: chains, upstreams)"
			ps.add("$", "", msg, msg)
			break
		}
	}
	var c *Config
	var named []string
	raw, ok := top["upstreams"]
	var entries []json.RawMessage
	switch {
	case !ok:
		ps.add("$.upstreams", "", "is missing", "field \"upstreams\" is missing")
	case len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &entries) != nil:
		msg := "must be an array of {\"chain\",\"name\",\"upstream\"} objects"
		ps.add("$.upstreams", "", msg, "field \"upstreams\" "+msg)
	case len(entries) == 0:
		ps.add("$.upstreams", "", "the upstreams array is empty", "the upstreams array is empty")
	default:
		c, named = parseEntries(entries, true, "$.upstreams", "upstreams entry", ps)
	}
	raw, ok = top["chains"]
	if !ok {
		return c
	}
	var chains map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &chains) != nil {
		msg := "must be an object of chain name to settings"
		ps.add("$.chains", "", msg, "field \"chains\" "+msg)
		return c
	}
	settings := make(map[string]Chain, len(chains))
	names := make([]string, 0, len(chains))
	for name := range chains {
		names = append(names, name)
	}
	slices.Sort(names) // the problems come in the same order on every run
	for _, name := range names {
		// A name is quoted only once it is known to be a chain name: a misplaced URL must not show.
		if !chainRE.MatchString(name) {
			ps.add("$.chains", "chains", "a chain name "+chainRule, "a chain name "+chainRule)
			continue
		}
		at, where := "$.chains."+name, "chains "+strconv.Quote(name)
		if c != nil && !slices.Contains(named, name) { // with no readable upstreams, every chain would be "unserved"
			ps.add(at, where, "no upstream serves this chain", "no upstream serves this chain")
			continue
		}
		if ch, ok := parseChain(chains[name], at, where, ps); ok {
			settings[name] = ch
		}
	}
	if c != nil {
		c.Chain = settings
	}
	return c
}

// chainField is one field of a "chains" entry: its row of the settings table (key, range, the rule its error
// states) and the setter, which reports whether the raw value keeps the row's rule.
type chainField struct {
	*Setting
	set func(*Chain, json.RawMessage) bool
}

// chainFields are the fields of a "chains" entry, in ChainTable's order (a test holds them to it).
var chainFields = []chainField{
	{ChainChainID, func(c *Chain, r json.RawMessage) (ok bool) {
		c.ChainID, ok = chainID(r)
		return ok
	}},
	{ChainMaxLagBlocks, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainMaxLagBlocks.integer(r)
		c.MaxLagBlocks = uint64(n)
		return ok
	}},
	{ChainStaleAfter, func(c *Chain, r json.RawMessage) (ok bool) {
		c.StaleAfter, ok = ChainStaleAfter.duration(r)
		return ok
	}},
	{ChainConfirmAfter, func(c *Chain, r json.RawMessage) (ok bool) {
		c.ConfirmAfter, ok = ChainConfirmAfter.duration(r)
		return ok
	}},
	{ChainBreakerFailures, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainBreakerFailures.integer(r)
		c.BreakerFailures = int(n)
		return ok
	}},
	{ChainBreakerOpenFor, func(c *Chain, r json.RawMessage) (ok bool) {
		c.BreakerOpenFor, ok = ChainBreakerOpenFor.duration(r)
		return ok
	}},
	{ChainCooldownAfter429, func(c *Chain, r json.RawMessage) (ok bool) {
		c.CooldownAfter429, ok = ChainCooldownAfter429.duration(r)
		return ok
	}},
	{ChainProbeShare, func(c *Chain, r json.RawMessage) (ok bool) {
		c.ProbeShare, ok = ChainProbeShare.number(r)
		return ok
	}},
	{ChainMaxAttempts, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainMaxAttempts.integer(r)
		c.MaxAttempts = int(n)
		return ok
	}},
	{ChainRequestTimeout, func(c *Chain, r json.RawMessage) (ok bool) {
		c.RequestTimeout, ok = ChainRequestTimeout.duration(r)
		return ok
	}},
	{ChainHedgePercentile, func(c *Chain, r json.RawMessage) (ok bool) {
		c.HedgePercentile, ok = ChainHedgePercentile.number(r)
		return ok
	}},
	{ChainHedgeMinDelay, func(c *Chain, r json.RawMessage) (ok bool) {
		c.HedgeMinDelay, ok = ChainHedgeMinDelay.duration(r)
		return ok
	}},
	{ChainDenyMethods, func(c *Chain, r json.RawMessage) bool {
		var d []string
		if len(r) == 0 || r[0] != '[' || json.Unmarshal(r, &d) != nil {
			return false
		}
		c.DenyMethods = d // [] decodes to an empty, non-nil list: deny nothing
		return !slices.ContainsFunc(d, func(p string) bool { return !ValidPattern(p) })
	}},
	{ChainAllowCustomTracers, func(c *Chain, r json.RawMessage) bool {
		switch string(r) {
		case "true", "false":
			c.AllowCustomTracers = string(r) == "true"
			return true
		}
		return false
	}},
	{ChainFinalityDepth, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainFinalityDepth.integer(r)
		c.FinalityDepth = uint64(n)
		return ok
	}},
	{ChainCache, func(c *Chain, r json.RawMessage) bool {
		switch string(r) {
		case "true", "false":
			c.CacheOff = string(r) == "false"
			return true
		}
		return false
	}},
	{ChainCacheFinalizedTTL, func(c *Chain, r json.RawMessage) (ok bool) {
		c.CacheFinalizedTTL, ok = ChainCacheFinalizedTTL.duration(r)
		return ok
	}},
	{ChainCacheRealtimeTTL, func(c *Chain, r json.RawMessage) (ok bool) {
		c.CacheRealtimeTTL, ok = ChainCacheRealtimeTTL.duration(r)
		return ok
	}},
	{ChainCacheHashTTL, func(c *Chain, r json.RawMessage) (ok bool) {
		c.CacheHashTTL, ok = ChainCacheHashTTL.duration(r)
		return ok
	}},
	{ChainCacheMaxAnswerBytes, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainCacheMaxAnswerBytes.integer(r)
		c.CacheMaxAnswerBytes = n
		return ok
	}},
	{ChainLogsMaxRange, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainLogsMaxRange.integer(r)
		c.LogsMaxRange = uint64(max(n, 0))
		return ok
	}},
	{ChainLogsMaxAnswerBytes, func(c *Chain, r json.RawMessage) bool {
		n, ok := ChainLogsMaxAnswerBytes.integer(r)
		c.LogsMaxAnswerBytes = n
		return ok
	}},
	{ChainCapabilityTTL, func(c *Chain, r json.RawMessage) (ok bool) {
		c.CapabilityTTL, ok = ChainCapabilityTTL.duration(r)
		return ok
	}},
	{ChainBroadcastWrites, func(c *Chain, r json.RawMessage) bool {
		switch string(r) {
		case "true", "false":
			on := string(r) == "true"
			c.BroadcastWrites = &on
			return true
		}
		return false
	}},
	{ChainSubscriptionPoll, func(c *Chain, r json.RawMessage) (ok bool) {
		c.SubscriptionPoll, ok = ChainSubscriptionPoll.duration(r)
		return ok
	}},
}

// parseChain reads one "chains" entry at path, reporting whether it is valid.
func parseChain(raw json.RawMessage, path, where string, ps *problems) (Chain, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		ps.add(path, where, "not an object", "not an object")
		return Chain{}, false
	}
	before := len(*ps)
	var ch Chain
	unknown := 0
	for k := range fields {
		if !slices.ContainsFunc(chainFields, func(f chainField) bool { return f.Name == k }) {
			unknown++
		}
	}
	if unknown > 0 {
		keys := make([]string, len(chainFields))
		for i, f := range chainFields {
			keys[i] = f.Name
		}
		msg := "unknown field (allowed: " + strings.Join(keys, ", ") + ")"
		pathMsg := msg
		if unknown > 1 {
			pathMsg = fmt.Sprintf("%d unknown fields (allowed: %s)", unknown, strings.Join(keys, ", "))
		}
		ps.add(path, where, pathMsg, msg)
	}
	for _, f := range chainFields {
		if r, ok := fields[f.Name]; ok && !f.set(&ch, r) {
			ps.field(path, where, f.Name, f.rule())
		}
	}
	return ch, len(*ps) == before
}

// jsonString decodes a JSON string (not null, which json.Unmarshal would take for "").
func jsonString(r json.RawMessage) (string, bool) {
	var s string
	if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &s) != nil {
		return "", false
	}
	return s, true
}

// durationIn decodes a Go duration string within [lo, hi].
func durationIn(r json.RawMessage, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := jsonString(r)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= lo && d <= hi
}

// integerIn decodes a JSON number written as an integer (no fraction, no exponent) within [lo, hi].
func integerIn(r json.RawMessage, lo, hi int64) (int64, bool) {
	n, err := strconv.ParseInt(string(r), 10, 64)
	return n, err == nil && n >= lo && n <= hi
}

// number decodes a JSON number.
func number(r json.RawMessage) (float64, bool) {
	if len(r) == 0 || (r[0] != '-' && (r[0] < '0' || r[0] > '9')) {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(r), 64)
	return x, err == nil
}

// chainID decodes a chain id other than 0: a JSON integer, or a string holding a decimal or 0x-prefixed hex one.
func chainID(r json.RawMessage) (uint64, bool) {
	text := string(r)
	base := 10
	if s, ok := jsonString(r); ok {
		text = s
		if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
			text, base = h, 16
		}
	}
	id, err := strconv.ParseUint(text, base, 64)
	return id, err == nil && id != 0
}
