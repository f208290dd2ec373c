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
	"time"
)

// EnvUpstreams is the environment variable holding the upstream list.
const EnvUpstreams = "UPSTREAM_CONFIG"

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
}

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
// and name the entry index or chain and the field; they never quote the input.
func Parse(text string) (*Config, error) {
	b := bytes.TrimSpace([]byte(text))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is not set", EnvUpstreams)
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		if se, ok := err.(*json.SyntaxError); ok {
			return nil, fmt.Errorf("%s: invalid JSON near byte %d", EnvUpstreams, se.Offset)
		}
		return nil, fmt.Errorf("%s: invalid JSON", EnvUpstreams)
	}
	if b[0] == '{' {
		return parseObject(b)
	}
	var entries []json.RawMessage
	if json.Unmarshal(b, &entries) != nil {
		return nil, fmt.Errorf("%s: must be a JSON array of {\"chain\",\"name\",\"upstream\"} objects, or an object {\"chains\",\"upstreams\"}", EnvUpstreams)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: the array is empty", EnvUpstreams)
	}
	c := &Config{Upstreams: make([]Upstream, 0, len(entries))}
	for i, e := range entries {
		u, err := parseEntry(e, false)
		if err == nil {
			err = c.add(u)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", EnvUpstreams, i, err)
		}
	}
	return c, nil
}

// add appends u, refusing a second upstream of the same name in a chain.
func (c *Config) add(u Upstream) error {
	if _, dup := c.Lookup(u.Chain, u.Name); dup {
		return fmt.Errorf("field \"name\": duplicate name within its chain")
	}
	c.Upstreams = append(c.Upstreams, u)
	return nil
}

// parseEntry reads one upstream entry; attempt_timeout is allowed in the object form only.
func parseEntry(e json.RawMessage, object bool) (Upstream, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(e, &fields) != nil || fields == nil {
		return Upstream{}, fmt.Errorf("not an object")
	}
	for k := range fields {
		switch {
		case k == "chain" || k == "name" || k == "upstream":
		case k == "attempt_timeout" && object:
		case object:
			return Upstream{}, fmt.Errorf("unknown field (allowed: chain, name, upstream, attempt_timeout)")
		default:
			return Upstream{}, fmt.Errorf("unknown field (allowed: chain, name, upstream)")
		}
	}
	var u Upstream
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
			return Upstream{}, fmt.Errorf("field %q is missing", f.key)
		}
		s, ok := jsonString(raw)
		if !ok {
			return Upstream{}, fmt.Errorf("field %q must be a string", f.key)
		}
		*f.dst = s
		if f.re != nil && !f.re.MatchString(*f.dst) {
			return Upstream{}, fmt.Errorf("field %q %s", f.key, f.in)
		}
	}
	if u.Chain == "admin" {
		return Upstream{}, fmt.Errorf("field \"chain\": \"admin\" is reserved")
	}
	p, err := url.Parse(u.URL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return Upstream{}, fmt.Errorf("field \"upstream\" must be an absolute http or https URL")
	}
	if raw, ok := fields["attempt_timeout"]; ok {
		d, ok := durationIn(raw, 100*time.Millisecond, 5*time.Minute)
		if !ok {
			return Upstream{}, fmt.Errorf("field \"attempt_timeout\" must be a duration string from 100ms to 5m")
		}
		u.AttemptTimeout = d
	}
	return u, nil
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
