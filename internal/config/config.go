// Package config reads the balancer's configuration from the environment: UPSTREAM_CONFIG and the EVMLB_*
// settings. UPSTREAM_CONFIG is either the original JSON array of {"chain","name","upstream"} or an object
// {"chains":{…},"upstreams":[…]} that adds per-chain routing settings (Chain) and per-upstream attempt timeouts.
// When it is unset, the app serves Default. The package also holds the method deny list (DefaultDenyMethods,
// Config.Denied). Error messages name the entry index or chain and the field, never a value: upstream URLs carry
// API keys.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// EnvUpstreams is the environment variable holding the upstream list.
const EnvUpstreams = "UPSTREAM_CONFIG"

// EnvClientKeys is the secret that names the clients and their keys' hashes (internal/clients reads it).
const EnvClientKeys = "CLIENT_KEYS"

// Default is the configuration served when UPSTREAM_CONFIG is unset or blank: the chain ethereum (chain id 1)
// over two public endpoints that need no API key.
const Default = `{"chains": {"ethereum": {"chain_id": 1}}, "upstreams": [
	{"chain": "ethereum", "name": "publicnode", "upstream": "https://ethereum-rpc.publicnode.com"},
	{"chain": "ethereum", "name": "llamarpc", "upstream": "https://eth.llamarpc.com"}]}`

// Upstream is one configured RPC provider.
type Upstream struct {
	// Chain is the chain's name, the path of POST /{chain}: 1 to 64 of [A-Za-z0-9_-], not "admin".
	Chain string
	// Name is the provider's name, unique within its chain: 1 to 64 of [A-Za-z0-9_.-].
	Name string
	// URL is the provider's endpoint, http or https. It is a secret: show it only through Redact.
	URL string
	// AttemptTimeout, when not zero, replaces EVMLB_ATTEMPT_TIMEOUT for this upstream (object form only).
	AttemptTimeout time.Duration
	// MaxLogsRange, when not zero, is the widest eth_getLogs range (blocks) this upstream takes: wider ones are
	// split (object form only). (max_logs_range)
	MaxLogsRange uint64
	// MaxLogsResults, when not zero, is the most logs this upstream answers: it may refuse a range with more, and
	// the range is then split (object form only). (max_logs_results)
	MaxLogsResults uint64
	// Archive: configured as an archive node (object form only, UpstreamArchive).
	Archive bool
	// MaxRPS, MaxBurst and MaxPerDay are the provider's request budget across the deployment (object form only,
	// issue 22; 0: none). MaxBurst 0 with MaxRPS set means MaxRPS. (max_rps, max_burst, max_per_day)
	MaxRPS, MaxBurst, MaxPerDay uint64
}

// HasBudget reports whether the upstream has a request budget (max_rps or max_per_day).
func (u Upstream) HasBudget() bool { return u.MaxRPS > 0 || u.MaxPerDay > 0 }

// ID is the name of the upstream's Durable Object: chain + "/" + name.
func (u Upstream) ID() string { return u.Chain + "/" + u.Name }

// Endpoint is the URL reduced to scheme and host.
func (u Upstream) Endpoint() string { return Redact(u.URL) }

// Config is a validated upstream list.
type Config struct {
	// Upstreams in configuration order.
	Upstreams []Upstream
	// Chain holds per-chain settings from the object form; nil or a missing chain means defaults.
	Chain map[string]Chain
}

// Chains lists the chain names in order of first appearance.
func (c *Config) Chains() []string {
	var names []string
	for _, u := range c.Upstreams {
		if !slices.Contains(names, u.Chain) {
			names = append(names, u.Chain)
		}
	}
	return names
}

// HasChain reports whether chain is configured.
func (c *Config) HasChain(chain string) bool {
	return slices.ContainsFunc(c.Upstreams, func(u Upstream) bool { return u.Chain == chain })
}

// ChainUpstreams lists the chain's upstreams in configuration order.
func (c *Config) ChainUpstreams(chain string) []Upstream {
	var us []Upstream
	for _, u := range c.Upstreams {
		if u.Chain == chain {
			us = append(us, u)
		}
	}
	return us
}

// Lookup finds the upstream with the given chain and name.
func (c *Config) Lookup(chain, name string) (Upstream, bool) {
	i := slices.IndexFunc(c.Upstreams, func(u Upstream) bool { return u.Chain == chain && u.Name == name })
	if i < 0 {
		return Upstream{}, false
	}
	return c.Upstreams[i], true
}

var (
	chainRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

const chainRule = "must be 1 to 64 of A-Z a-z 0-9 _ -"

// Parse validates the UPSTREAM_CONFIG text: the array form (a JSON array of {"chain","name","upstream"}) or the
// object form ({"chains":{name:settings},"upstreams":[…]}, see parseObject). Errors start with "UPSTREAM_CONFIG"
// and name the entry index or chain and the field; they never quote the input. Parse returns the first of the
// problems ParseAll finds: it accepts exactly what ParseAll accepts.
func Parse(text string) (*Config, error) {
	c, ps := ParseAll(text)
	if len(ps) > 0 {
		return nil, ps[0].Err()
	}
	return c, nil
}

// ParseAll validates the UPSTREAM_CONFIG text as Parse does, but goes on past the first problem: it returns
// every problem it finds, each with its JSON path, in the order Parse meets them, and the Config only when there
// are none. A text that is not JSON, or not an array or object, has one problem at "$".
func ParseAll(text string) (*Config, []Problem) {
	var ps problems
	b := bytes.TrimSpace([]byte(text))
	if len(b) == 0 {
		ps = append(ps, Problem{Path: "$", Msg: "is empty (" + EnvUpstreams + " is not set)", text: EnvUpstreams + " is not set"})
		return nil, ps
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		msg := "invalid JSON"
		if se, ok := err.(*json.SyntaxError); ok {
			msg = fmt.Sprintf("invalid JSON near byte %d", se.Offset)
		}
		ps.add("$", "", msg, msg)
		return nil, ps
	}
	var c *Config
	if b[0] == '{' {
		c = parseObject(b, &ps)
	} else {
		c = parseArray(b, &ps)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// parseArray reads the array form.
func parseArray(b []byte, ps *problems) *Config {
	var entries []json.RawMessage
	if json.Unmarshal(b, &entries) != nil {
		msg := "must be a JSON array of {\"chain\",\"name\",\"upstream\"} objects, or an object {\"chains\",\"upstreams\"}"
		ps.add("$", "", msg, msg)
		return nil
	}
	if len(entries) == 0 {
		ps.add("$", "", "the array is empty", "the array is empty")
		return nil
	}
	c, _ := parseEntries(entries, false, "$", "entry", ps)
	return c
}

// parseEntries reads the upstream entries at path (whose elements the legacy messages call "<word> <index>").
// named lists the valid chain names of the entries, a wrong entry's included: "chains" is checked against them,
// so that one wrong field of an entry does not also make its chain's settings "unserved".
func parseEntries(entries []json.RawMessage, object bool, path, word string, ps *problems) (c *Config, named []string) {
	c = &Config{Upstreams: make([]Upstream, 0, len(entries))}
	for i, e := range entries {
		at, where := fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s %d", word, i)
		before := len(*ps)
		u, chainOK := parseEntry(e, object, at, where, ps)
		if chainOK {
			named = append(named, u.Chain)
		}
		if len(*ps) > before {
			continue
		}
		if _, dup := c.Lookup(u.Chain, u.Name); dup {
			ps.add(at+".name", where, "duplicate name within its chain", "field \"name\": duplicate name within its chain")
			continue
		}
		c.Upstreams = append(c.Upstreams, u)
	}
	return c, named
}

// parseEntry reads one upstream entry at path; attempt_timeout is allowed in the object form only. It reports
// whether the entry's chain field is a valid chain name (so that "chains" is checked against it even when
// another field of the entry is wrong).
func parseEntry(e json.RawMessage, object bool, path, where string, ps *problems) (u Upstream, chainOK bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(e, &fields) != nil || fields == nil {
		ps.add(path, where, "not an object", "not an object")
		return Upstream{}, false
	}
	allowed := "unknown field (allowed: chain, name, upstream)"
	if object {
		allowed = "unknown field (allowed: chain, name, upstream, attempt_timeout, max_logs_range, max_logs_results, archive, max_rps, max_burst, max_per_day)"
	}
	unknown := 0
	for k := range fields {
		if k != "chain" && k != "name" && k != "upstream" && (!upstreamOption[k] || !object) {
			unknown++
		}
	}
	if unknown > 0 {
		msg := allowed
		if unknown > 1 {
			msg = fmt.Sprintf("%d %s", unknown, strings.Replace(allowed, "field", "fields", 1))
		}
		ps.add(path, where, msg, allowed)
	}
	valid := map[string]bool{}
	for _, f := range []struct {
		key string
		dst *string
		re  *regexp.Regexp
		in  string
	}{
		{"chain", &u.Chain, chainRE, chainRule},
		{"name", &u.Name, nameRE, "must be 1 to 64 of A-Z a-z 0-9 _ . -"},
		{"upstream", &u.URL, nil, ""},
	} {
		raw, ok := fields[f.key]
		if !ok {
			ps.field(path, where, f.key, "is missing")
			continue
		}
		s, ok := jsonString(raw)
		if !ok {
			ps.field(path, where, f.key, "must be a string")
			continue
		}
		*f.dst = s
		if f.re != nil && !f.re.MatchString(*f.dst) {
			ps.field(path, where, f.key, f.in)
			*f.dst = ""
			continue
		}
		valid[f.key] = true
	}
	if valid["chain"] {
		if u.Chain == "admin" {
			ps.add(path+".chain", where, "\"admin\" is reserved", "field \"chain\": \"admin\" is reserved")
		} else {
			chainOK = true
		}
	}
	if valid["upstream"] {
		if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			ps.field(path, where, "upstream", "must be an absolute http or https URL")
		}
	}
	if raw, ok := fields["attempt_timeout"]; ok && object {
		d, ok := UpstreamAttemptTimeout.duration(raw)
		if !ok {
			ps.field(path, where, UpstreamAttemptTimeout.Name, UpstreamAttemptTimeout.rule())
		}
		u.AttemptTimeout = d
	}
	for _, f := range []struct {
		s   *Setting
		dst *uint64
	}{{UpstreamMaxLogsRange, &u.MaxLogsRange}, {UpstreamMaxLogsResults, &u.MaxLogsResults},
		{UpstreamMaxRPS, &u.MaxRPS}, {UpstreamMaxBurst, &u.MaxBurst}, {UpstreamMaxPerDay, &u.MaxPerDay}} {
		if raw, ok := fields[f.s.Name]; ok && object {
			n, ok := f.s.integer(raw)
			if !ok {
				ps.field(path, where, f.s.Name, f.s.rule())
			}
			*f.dst = uint64(max(n, 0))
		}
	}
	if raw, ok := fields["archive"]; ok && object {
		switch string(raw) {
		case "true", "false":
			u.Archive = string(raw) == "true"
		default:
			ps.field(path, where, UpstreamArchive.Name, UpstreamArchive.rule())
		}
	}
	if u.MaxBurst > 0 && u.MaxRPS == 0 {
		ps.field(path, where, UpstreamMaxBurst.Name, "needs max_rps: a burst is above a rate")
	}
	return u, chainOK
}

// Redact reduces a URL to scheme://host[:port], dropping user-info, path, query and fragment, which often hold
// API keys. It returns "invalid-url" for text that does not parse as an absolute URL.
func Redact(raw string) string {
	p, err := url.Parse(raw)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return "invalid-url"
	}
	return p.Scheme + "://" + p.Host
}
