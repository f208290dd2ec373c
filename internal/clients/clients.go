// Package clients reads CLIENT_KEYS, the secret that names the balancer's clients (issue 22): each client's key
// as a SHA-256 hash, the chains it may use, its own allow or deny list of methods and its limits. It finds the
// client of a presented key in constant time (Keys.Lookup) and takes a key out of a request (Presented).
//
// The package never holds a key in plain text beyond the call that hashes it, and nothing it reports (a Problem,
// a Client's fields shown by the admin API) holds a key or a hash.
package clients

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/config"
)

// Env is the secret's name.
const Env = config.EnvClientKeys

// Unknown is the client of a request without a known key in the metrics (metrics.ClientUnknown): no client may
// be named so.
const Unknown = "unknown"

// Client is one entry of CLIENT_KEYS.
type Client struct {
	// Name is 1 to 64 of [A-Za-z0-9_.-], unique: the label of its metrics and its budget's name.
	Name string
	// hash is the SHA-256 of the key's UTF-8 bytes; never shown.
	hash [sha256.Size]byte
	// Chains are the chains it may use; nil: every chain.
	Chains []string
	// Allow, when not nil, is the only methods it may call; Deny, when not nil, methods it may not (at most one
	// is set). Patterns as the chain deny list's (config.MatchMethod).
	Allow, Deny []string
	// Limit is its budget (rps, burst, per_day); the zero value limits nothing.
	Limit budget.Limit
}

// MayUse reports whether the client may use chain.
func (c *Client) MayUse(chain string) bool {
	return c.Chains == nil || slices.Contains(c.Chains, chain)
}

// Refuses reports whether the client's own method list refuses method.
func (c *Client) Refuses(method string) bool {
	switch {
	case c.Allow != nil:
		return !config.MatchMethod(c.Allow, method)
	case c.Deny != nil:
		return config.MatchMethod(c.Deny, method)
	}
	return false
}

// HasMethodList reports whether the client has an allow or a deny list.
func (c *Client) HasMethodList() bool { return c.Allow != nil || c.Deny != nil }

// Keys is a parsed CLIENT_KEYS. The nil *Keys (the secret unset or blank) leaves the balancer open.
type Keys struct {
	list []Client
}

// Enabled reports whether keys are required (CLIENT_KEYS is set).
func (k *Keys) Enabled() bool { return k != nil }

// Clients are the entries in the secret's order (nil for the nil Keys).
func (k *Keys) Clients() []Client {
	if k == nil {
		return nil
	}
	return k.list
}

// Find returns the client named name.
func (k *Keys) Find(name string) (*Client, bool) {
	if k == nil {
		return nil, false
	}
	for i := range k.list {
		if k.list[i].Name == name {
			return &k.list[i], true
		}
	}
	return nil, false
}

// equal is the comparison of two hashes; a test counts its calls through it.
var equal = subtle.ConstantTimeCompare

// Lookup finds the client whose key is key. It hashes key and compares the hash with every entry's, each in
// constant time and with no early exit, so that the time it takes says nothing of how close a wrong key came to
// any right one (nor which entry matched).
func (k *Keys) Lookup(key string) (*Client, bool) {
	if k == nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(key))
	found := -1
	for i := range k.list {
		found = subtle.ConstantTimeSelect(equal(h[:], k.list[i].hash[:]), i, found)
	}
	if found < 0 {
		return nil, false
	}
	return &k.list[found], true
}

// Problem is one thing wrong with CLIENT_KEYS. Path says where ("$" for the whole text, "$[2].key_sha256"),
// Msg says what, as a rule. Neither ever quotes a value of the secret.
type Problem struct {
	Path string
	Msg  string
}

// String is "path: msg".
func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Err is the problem as the balancer answers it (-32066).
func (p Problem) Err() error { return fmt.Errorf("%s: %s: %s", Env, p.Path, p.Msg) }

// Bounds of the fields.
const (
	MaxRPS    = 1e6
	MaxPerDay = 1e12
	// MaxEntries bounds the secret (and so the cost of a lookup, which compares with every entry).
	MaxEntries = 1000
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// NameRule is the rule of a client's name.
const NameRule = "must be 1 to 64 of A-Z a-z 0-9 _ . -"

// ValidName reports whether name is a client's name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// fields are an entry's fields, in the order problems are reported.
var fields = []string{"name", "key_sha256", "chains", "allow", "deny", "rps", "burst", "per_day"}

// Parse reads CLIENT_KEYS. Blank text is no keys (nil, open). known, when not nil, says which chains are
// configured: a "chains" entry naming another is a problem (nil: not checked, as when the upstream configuration
// itself is not valid). On any problem Keys is nil and the problems say every one found.
func Parse(text string, known func(string) bool) (*Keys, []Problem) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var ps []Problem
	add := func(path, msg string) { ps = append(ps, Problem{Path: path, Msg: msg}) }
	var entries []json.RawMessage
	b := []byte(strings.TrimSpace(text))
	if b[0] != '[' || json.Unmarshal(b, &entries) != nil {
		add("$", `must be a JSON array of {"name","key_sha256",…} objects`)
		return nil, ps
	}
	switch {
	case len(entries) == 0:
		add("$", "the array is empty: unset "+Env+" to leave the balancer open")
		return nil, ps
	case len(entries) > MaxEntries:
		add("$", fmt.Sprintf("more than %d entries", MaxEntries))
		return nil, ps
	}
	k := &Keys{list: make([]Client, 0, len(entries))}
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{} // a parse-time check only: Lookup never looks a hash up by key
	for i, e := range entries {
		at := "$[" + strconv.Itoa(i) + "]"
		c, ok := parseEntry(e, at, known, add)
		if !ok {
			continue
		}
		if j, dup := names[c.Name]; dup {
			add(at+".name", "repeats the name of entry "+strconv.Itoa(j))
			continue
		}
		if j, dup := hashes[c.hash]; dup {
			add(at+".key_sha256", "repeats the hash of entry "+strconv.Itoa(j)+": two clients would share one key")
			continue
		}
		names[c.Name], hashes[c.hash] = i, i
		k.list = append(k.list, c)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return k, nil
}

// parseEntry reads one entry at path, reporting its problems through add.
func parseEntry(raw json.RawMessage, at string, known func(string) bool, add func(path, msg string)) (Client, bool) {
	var c Client
	var f map[string]json.RawMessage
	if json.Unmarshal(raw, &f) != nil || f == nil {
		add(at, "not an object")
		return c, false
	}
	n := 0
	for k := range f {
		if !slices.Contains(fields, k) {
			n++
		}
	}
	if n > 0 {
		add(at, fmt.Sprintf("%d unknown field%s (allowed: %s)", n, plural(n), strings.Join(fields, ", ")))
	}
	ok := n == 0
	bad := func(field, msg string) {
		add(at+"."+field, msg)
		ok = false
	}
	if r, has := f["name"]; !has {
		bad("name", "is missing")
	} else if s, isStr := jsonString(r); !isStr || !ValidName(s) {
		bad("name", NameRule)
	} else if s == Unknown {
		bad("name", `"unknown" is reserved: it labels the requests without a known key`)
	} else {
		c.Name = s
	}
	if r, has := f["key_sha256"]; !has {
		bad("key_sha256", "is missing (the SHA-256 of the key, from `evmlb keys new NAME`)")
	} else if s, isStr := jsonString(r); !isStr || !hashRE.MatchString(s) {
		msg := "must be 64 lowercase hex digits: the SHA-256 of the key"
		if isStr && strings.HasPrefix(s, KeyPrefix) {
			msg += ", not the key itself (which must never be in the secret)"
		}
		bad("key_sha256", msg)
	} else {
		_, _ = hex.Decode(c.hash[:], []byte(s))
	}
	if r, has := f["chains"]; has {
		var list []string
		if len(r) == 0 || r[0] != '[' || json.Unmarshal(r, &list) != nil || len(list) == 0 {
			bad("chains", `must be a non-empty array of chain names, or ["*"] for every chain`)
		} else if !(len(list) == 1 && list[0] == "*") {
			for j, ch := range list {
				switch {
				case ch == "*":
					bad("chains", `"*" must stand alone`)
				case known != nil && !known(ch):
					bad("chains["+strconv.Itoa(j)+"]", "is not a configured chain")
				case slices.Index(list, ch) < j:
					bad("chains["+strconv.Itoa(j)+"]", "repeats an earlier chain")
				}
			}
			c.Chains = list
		}
	}
	_, hasAllow := f["allow"]
	_, hasDeny := f["deny"]
	if hasAllow && hasDeny {
		bad("allow", "at most one of allow and deny may be given")
	}
	for _, m := range []struct {
		field string
		dst   *[]string
		least int
	}{{"allow", &c.Allow, 1}, {"deny", &c.Deny, 0}} {
		r, has := f[m.field]
		if !has {
			continue
		}
		var list []string
		if len(r) == 0 || r[0] != '[' || json.Unmarshal(r, &list) != nil || len(list) < m.least ||
			slices.ContainsFunc(list, func(p string) bool { return !config.ValidPattern(p) }) {
			rule := "must be an array of method names, each optionally ending in *"
			if m.least > 0 {
				rule = "must be a non-empty array of method names, each optionally ending in *"
			}
			bad(m.field, rule)
			continue
		}
		if list == nil {
			list = []string{}
		}
		*m.dst = list
	}
	for _, m := range []struct {
		field string
		dst   *float64
	}{{"rps", &c.Limit.RPS}, {"burst", &c.Limit.Burst}} {
		if r, has := f[m.field]; has {
			x, isNum := number(r)
			if !isNum || x < 0 || x > MaxRPS {
				bad(m.field, "must be a number from 0 (no limit) to 1000000")
				continue
			}
			*m.dst = x
		}
	}
	if c.Limit.Burst > 0 && c.Limit.RPS == 0 {
		bad("burst", "needs rps: a burst is above a rate")
	}
	if c.Limit.Burst > 0 && c.Limit.Burst < 1 {
		bad("burst", "must be 0 (the default: rps, at least 1) or at least 1")
	}
	if r, has := f["per_day"]; has {
		x, err := strconv.ParseUint(string(r), 10, 64)
		if err != nil || x > MaxPerDay {
			bad("per_day", "must be an integer from 0 (no limit) to 1000000000000")
		} else {
			c.Limit.PerDay = x
		}
	}
	return c, ok
}

func jsonString(r json.RawMessage) (string, bool) {
	var s string
	if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &s) != nil {
		return "", false
	}
	return s, true
}

func number(r json.RawMessage) (float64, bool) {
	if len(r) == 0 || (r[0] != '-' && (r[0] < '0' || r[0] > '9')) {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(r), 64)
	return x, err == nil && !math.IsInf(x, 0) && !math.IsNaN(x)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
