package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Kind is what a decided call's answer is cached as.
type Kind uint8

// The kinds of a Decision.
const (
	Never     Kind = iota // not cached: sent upstream every time
	Finalized             // a block at or below the chain's finalized block: long TTL, both tiers
	Realtime              // the head now: keyed by the served head, short TTL, the isolate's memory only
	ByHash                // a lookup by hash: stored once the answer's block is finalized, both tiers
)

// String is the kind's name, as the keys and README.md write it.
func (k Kind) String() string {
	switch k {
	case Finalized:
		return "finalized"
	case Realtime:
		return "realtime"
	case ByHash:
		return "hash"
	}
	return "never"
}

// Settings are a chain's cache settings (config.Chain's cache rows, defaults filled).
type Settings struct {
	Off                                bool
	FinalizedTTL, RealtimeTTL, HashTTL time.Duration
	MaxAnswerBytes                     int64
}

// State is what the decision for a call reads of the chain now.
type State struct {
	// Host is the client request's host: the keys are URLs on it (the Cache API keeps them per zone).
	Host  string
	Chain string
	// Epoch is the chain's cache epoch (balance.Table.CacheEpoch): in every key.
	Epoch uint64
	// Finalized is the chain's finalized block, FinalizedKnown whether there is one: until there is, nothing is
	// cached as finalized or by hash.
	Finalized      uint64
	FinalizedKnown bool
	// Head is the head this isolate serves (balance.Table.Head): realtime keys hold it.
	Head     uint64
	Settings Settings
}

// Decision is what may be done with one call's answer.
type Decision struct {
	Kind Kind
	Key  string // the absolute GET URL the answer is kept under ("" for Never)
	TTL  time.Duration
	rule *Rule
	// hash: the call is a lookup by hash (its answer's own block decides).
	hash bool
	// finalized is the State's, for Storable.
	finalized uint64
	maxBytes  int64
}

// Fits reports whether an answer of n bytes whose id is idLen bytes could hold a result d may store (the result is
// looked for only then: a large answer is not scanned again).
func (d Decision) Fits(n, idLen int) bool { return int64(n) <= d.maxBytes+int64(idLen)+64 }

// Cacheable reports whether d may be looked up and stored.
func (d Decision) Cacheable() bool { return d.Kind != Never }

// Edge reports whether d's answers go to the edge tier too (realtime ones stay in the isolate: they live
// seconds, and another isolate's head may differ).
func (d Decision) Edge() bool { return d.Kind == Finalized || d.Kind == ByHash }

// MaxParamsBytes is the size of params above which a call is never cached nor shared: hashing them for its key
// would cost a miss more than a hit could save (sha-256 of a 1 MiB eth_call is milliseconds in wasm), and such
// calls are rarely repeated.
const MaxParamsBytes = 64 << 10

// Decide is the decision for one call of method with params, given the chain's state s.
func Decide(method string, params json.RawMessage, s State) Decision {
	r := rules[method]
	if r == nil || s.Settings.Off || len(params) > MaxParamsBytes {
		return Decision{}
	}
	kind, hash := kindOf(r, params, s)
	if kind == Never {
		return Decision{}
	}
	d := Decision{Kind: kind, rule: r, hash: hash, finalized: s.Finalized, maxBytes: s.Settings.MaxAnswerBytes}
	switch kind {
	case Finalized:
		d.TTL = s.Settings.FinalizedTTL
	case ByHash:
		d.TTL = s.Settings.HashTTL
	case Realtime:
		d.TTL = s.Settings.RealtimeTTL
	}
	if d.TTL <= 0 {
		return Decision{}
	}
	if kind == Realtime {
		d.Key = key(s.Host, s.Chain, s.Epoch, method, "head", s.Head, true, params)
	} else {
		d.Key = key(s.Host, s.Chain, s.Epoch, method, kind.String(), 0, false, params)
	}
	return d
}

// kindOf is the kind a call of r's method with params is cached as in state s, and whether it is a lookup by hash.
func kindOf(r *Rule, params json.RawMessage, s State) (Kind, bool) {
	switch r.Class {
	case Shared:
		return Never, false
	case Head:
		if s.Head == 0 {
			return Never, false // no served head to key it by
		}
		return Realtime, false
	case ByHashAnswer:
		if !s.FinalizedKnown {
			return Never, true
		}
		return ByHash, true
	}
	var list []json.RawMessage
	if len(params) > 0 {
		var ok bool
		if list, ok = jsonrpc.Array(params); !ok {
			return Never, false
		}
	}
	if r.Filter {
		if len(list) != 1 {
			return Never, false
		}
		return filterKind(list[0], s)
	}
	var p json.RawMessage
	if r.Param < len(list) {
		p = list[r.Param]
	} else if !r.Optional {
		return Never, false
	}
	ref, isHash := param(p, r.HashParam)
	switch {
	case isHash:
		if !s.FinalizedKnown {
			return Never, true
		}
		return ByHash, true
	case ref == refLatest && r.Latest && s.Head > 0:
		return Realtime, false
	case ref == refNumber && s.FinalizedKnown && num(p) <= s.Finalized:
		return Finalized, false
	}
	return Never, false
}

// The block references a parameter may hold, as far as the cache is concerned.
const (
	refOther  = iota // another tag ("pending", "safe", "finalized"), an EIP-1898 object by hash, or no block
	refLatest        // "latest", or the parameter omitted
	refNumber        // a block number ("earliest" is 0)
)

// param reads a block parameter p (nil: omitted, which the caller allows only when it means "latest"); isHash
// reports a 32-byte hash where hashes are lookups (withHash).
func param(p json.RawMessage, withHash bool) (ref int, isHash bool) {
	if p == nil {
		return refLatest, false
	}
	s, ok := jsonrpc.String(p)
	if !ok {
		if f, ok := jsonrpc.Fields(p, "blockNumber", "blockHash", "requireCanonical"); ok && f[0] != nil && f[1] == nil && f[2] == nil {
			if s, ok := jsonrpc.String(f[0]); ok {
				return tagRef(s), false
			}
		}
		return refOther, false
	}
	if withHash && len(s) == 66 && (s[:2] == "0x" || s[:2] == "0X") {
		if _, err := hex.DecodeString(s[2:]); err == nil {
			return refOther, true
		}
	}
	return tagRef(s), false
}

func tagRef(s string) int {
	switch s {
	case "latest":
		return refLatest
	case "earliest":
		return refNumber
	}
	if _, ok := blockref.ParseQuantity(s); ok {
		return refNumber
	}
	return refOther
}

// num is the number a parameter param read as refNumber names ("earliest": 0).
func num(p json.RawMessage) uint64 {
	s, ok := jsonrpc.String(p)
	if !ok {
		f, _ := jsonrpc.Fields(p, "blockNumber")
		s, _ = jsonrpc.String(f[0])
	}
	n, _ := blockref.ParseQuantity(s)
	return n
}

// filterKind is the kind of an eth_getLogs filter: Finalized when fromBlock and toBlock are both numbers at or
// below the finalized block, ByHash for a filter by blockHash alone, else Never.
func filterKind(p json.RawMessage, s State) (Kind, bool) {
	f, ok := jsonrpc.Fields(p, "fromBlock", "toBlock", "blockHash")
	if !ok || !s.FinalizedKnown {
		return Never, false
	}
	if f[2] != nil && string(f[2]) != "null" {
		if (f[0] != nil && string(f[0]) != "null") || (f[1] != nil && string(f[1]) != "null") {
			return Never, false // a node refuses both; never keep whatever one answered
		}
		return ByHash, true
	}
	for _, b := range f[:2] {
		if b == nil || string(b) == "null" {
			return Never, false // omitted: "latest"
		}
		if v, ok := jsonrpc.String(b); !ok || tagRef(v) != refNumber || num(b) > s.Finalized {
			return Never, false
		}
	}
	return Finalized, false
}

// Storable reports whether result, the raw `result` member of the answer to the decided call (never an error:
// the caller stores nothing else), may be stored under d.Key.
//   - Never anything over the chain's largest cached answer, and never null.
//   - [] and "0x" only as finalized (for anything else they may be an upstream that does not have it yet).
//   - By hash only once the answer's own block is at or below the finalized block (a transaction not yet in a
//     block shows none).
func (d Decision) Storable(result []byte) bool {
	result = bytes.TrimSpace(result)
	if d.Kind == Never || len(result) == 0 || int64(len(result)) > d.maxBytes || string(result) == "null" {
		return false
	}
	empty := string(result) == "[]" || string(result) == `"0x"`
	switch d.Kind {
	case Finalized:
		return true
	case ByHash:
		if empty {
			return false
		}
		n, ok := answerBlock(d.rule, result)
		return ok && n <= d.finalized
	case Realtime:
		return !empty
	}
	return false
}

// answerBlock is the block number an answer to a lookup by hash shows (r.Answer), false when it shows none.
func answerBlock(r *Rule, result []byte) (uint64, bool) {
	if r.AnswerList {
		list, ok := jsonrpc.Array(result)
		if !ok || len(list) == 0 {
			return 0, false
		}
		result = list[0]
	}
	f, ok := jsonrpc.Fields(result, r.Answer)
	if !ok || f[0] == nil {
		return 0, false
	}
	s, ok := jsonrpc.String(f[0])
	if !ok {
		return 0, false
	}
	return blockref.ParseQuantity(s)
}

// KeyPrefix is the path every key starts with, after the host.
const KeyPrefix = "/__evmlb/cache/"

// Key is the absolute GET URL an answer is kept under: https://<host>/__evmlb/cache/<chain>/<epoch>/<method>/
// <kind context>/<hex sha-256 of the canonical params>. The canonical params are the params' bytes with the JSON
// whitespace between tokens removed and nothing else changed: two spellings a node may read differently ("0x1"
// and "0x01") are two keys.
func Key(host, chain string, epoch uint64, method, kindContext string, params json.RawMessage) string {
	return key(host, chain, epoch, method, kindContext, 0, false, params)
}

// FlightKey is the key identical calls of method with params not cached share a flight under: Key's form, whose
// kind context is the served head ("flight-110").
func FlightKey(s State, method string, params json.RawMessage) string {
	return key(s.Host, s.Chain, s.Epoch, method, "flight", s.Head, true, params)
}

// key is Key whose kind context is kind, followed by head when withHead ("head-110"), written in one allocation.
func key(host, chain string, epoch uint64, method, kind string, head uint64, withHead bool, params json.RawMessage) string {
	if host == "" {
		host = "evmlb.invalid"
	}
	sum := CanonicalHash(params)
	chain, method = url.PathEscape(chain), url.PathEscape(method) // no copy when nothing needs escaping
	var b strings.Builder
	b.Grow(len("https://") + len(host) + len(KeyPrefix) + len(chain) + len(method) + len(kind) + 4*20 + 2*len(sum) + 8)
	b.WriteString("https://")
	b.WriteString(host)
	b.WriteString(KeyPrefix)
	b.WriteString(chain)
	b.WriteByte('/')
	var num [20]byte
	b.Write(strconv.AppendUint(num[:0], epoch, 10))
	b.WriteByte('/')
	b.WriteString(method)
	b.WriteByte('/')
	b.WriteString(kind)
	if withHead {
		b.WriteByte('-')
		b.Write(strconv.AppendUint(num[:0], head, 10))
	}
	b.WriteByte('/')
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	b.Write(hexSum[:])
	return b.String()
}

// CanonicalHash is the sha-256 of params with the whitespace between JSON tokens removed (outside strings;
// inside them every byte counts). Params with none (what clients send, nearly always) are hashed as they are; else
// the runs between whitespace are hashed where they are: nothing is copied.
func CanonicalHash(params []byte) [32]byte {
	if !spaced(params) {
		return sha256.Sum256(params)
	}
	h := sha256.New()
	start, in, esc := 0, false, false
	for i, c := range params {
		switch {
		case in:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case isSpace(c):
			if start < i {
				h.Write(params[start:i])
			}
			start = i + 1
		}
	}
	if start < len(params) {
		h.Write(params[start:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// spaced reports whether params hold JSON whitespace outside strings.
func spaced(params []byte) bool {
	in, esc := false, false
	for _, c := range params {
		switch {
		case in:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case isSpace(c):
			return true
		}
	}
	return false
}
