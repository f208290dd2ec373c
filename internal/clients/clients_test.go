package clients

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
)

const (
	key1 = "evmlb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	key2 = "evmlb_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

func known(chains ...string) func(string) bool {
	return func(c string) bool { return slices.Contains(chains, c) }
}

func TestParse(t *testing.T) {
	text := `[
	 {"name":"app1","key_sha256":"` + Hash(key1) + `","chains":["ethereum"],"allow":["eth_*","net_version"],"rps":50,"burst":100,"per_day":1000000},
	 {"name":"bot.2","key_sha256":"` + Hash(key2) + `","chains":["*"],"deny":["debug_*"]}]`
	k, ps := Parse(text, known("ethereum", "base"))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if !k.Enabled() || len(k.Clients()) != 2 {
		t.Fatalf("%+v", k)
	}
	c, ok := k.Lookup(key1)
	if !ok || c.Name != "app1" || c.Limit != (budget.Limit{RPS: 50, Burst: 100, PerDay: 1000000}) {
		t.Fatalf("lookup key1: %+v %v", c, ok)
	}
	if !c.MayUse("ethereum") || c.MayUse("base") {
		t.Error("app1 may use ethereum only")
	}
	if c.Refuses("eth_call") || c.Refuses("NET_VERSION") || !c.Refuses("debug_traceTransaction") {
		t.Error("app1's allow list")
	}
	c, ok = k.Lookup(key2)
	if !ok || c.Name != "bot.2" || c.Chains != nil || !c.MayUse("base") || !c.Limit.None() {
		t.Fatalf("lookup key2: %+v %v", c, ok)
	}
	if !c.Refuses("debug_traceCall") || c.Refuses("eth_call") || !c.HasMethodList() {
		t.Error("bot.2's deny list")
	}
	for _, wrong := range []string{"", key1[:len(key1)-1], key1 + "A", Hash(key1), strings.ToUpper(key1)} {
		if c, ok := k.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) found %s", wrong, c.Name)
		}
	}
	if _, ok := k.Find("bot.2"); !ok {
		t.Error("Find")
	}
	for _, blank := range []string{"", "  \n"} {
		if k, ps := Parse(blank, nil); k != nil || ps != nil || k.Enabled() {
			t.Errorf("blank: %v %v", k, ps)
		}
	}
	var none *Keys
	if _, ok := none.Lookup(key1); ok || none.Clients() != nil {
		t.Error("nil Keys")
	}
}

// TestParseProblems: each problem names the entry and the field, and never a value of the secret.
func TestParseProblems(t *testing.T) {
	h1, h2 := Hash(key1), Hash(key2)
	entry := func(extra string) string { return `[{"name":"a","key_sha256":"` + h1 + `"` + extra + `}]` }
	for _, tc := range []struct{ name, text, want string }{
		{"not json", `[{`, `$: must be a JSON array`},
		{"object", `{"name":"a"}`, `$: must be a JSON array`},
		{"empty", `[]`, `$: the array is empty: unset CLIENT_KEYS to leave the balancer open`},
		{"entry not object", `[1]`, `$[0]: not an object`},
		{"unknown field", entry(`,"key":"` + key1 + `"`), `$[0]: 1 unknown field (allowed: name, key_sha256, chains, allow, deny, rps, burst, per_day)`},
		{"name missing", `[{"key_sha256":"` + h1 + `"}]`, `$[0].name: is missing`},
		{"name bad", `[{"name":"a b","key_sha256":"` + h1 + `"}]`, `$[0].name: must be 1 to 64 of A-Z a-z 0-9 _ . -`},
		{"name unknown", `[{"name":"unknown","key_sha256":"` + h1 + `"}]`, `$[0].name: "unknown" is reserved`},
		{"hash missing", `[{"name":"a"}]`, `$[0].key_sha256: is missing`},
		{"hash upper", `[{"name":"a","key_sha256":"` + strings.ToUpper(h1) + `"}]`, `$[0].key_sha256: must be 64 lowercase hex digits`},
		{"the key itself", `[{"name":"a","key_sha256":"` + key1 + `"}]`, `not the key itself`},
		{"name twice", `[{"name":"a","key_sha256":"` + h1 + `"},{"name":"a","key_sha256":"` + h2 + `"}]`, `$[1].name: repeats the name of entry 0`},
		{"hash twice", `[{"name":"a","key_sha256":"` + h1 + `"},{"name":"b","key_sha256":"` + h1 + `"}]`, `$[1].key_sha256: repeats the hash of entry 0`},
		{"chains empty", entry(`,"chains":[]`), `$[0].chains: must be a non-empty array`},
		{"chains unknown", entry(`,"chains":["ethereum","s3cr3t"]`), `$[0].chains[1]: is not a configured chain`},
		{"chains star with others", entry(`,"chains":["*","ethereum"]`), `$[0].chains: "*" must stand alone`},
		{"chains repeated", entry(`,"chains":["ethereum","ethereum"]`), `$[0].chains[1]: repeats an earlier chain`},
		{"allow and deny", entry(`,"allow":["eth_*"],"deny":["debug_*"]`), `$[0].allow: at most one of allow and deny`},
		{"allow empty", entry(`,"allow":[]`), `$[0].allow: must be a non-empty array`},
		{"deny bad pattern", entry(`,"deny":["debug_*x"]`), `$[0].deny: must be an array of method names`},
		{"rps negative", entry(`,"rps":-1`), `$[0].rps: must be a number from 0`},
		{"rps string", entry(`,"rps":"5"`), `$[0].rps: must be a number from 0`},
		{"burst without rps", entry(`,"burst":5`), `$[0].burst: needs rps`},
		{"burst below 1", entry(`,"rps":5,"burst":0.5`), `$[0].burst: must be 0`},
		{"per_day fraction", entry(`,"per_day":1.5`), `$[0].per_day: must be an integer from 0`},
		{"per_day too big", entry(`,"per_day":1000000000001`), `$[0].per_day: must be an integer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ps := Parse(tc.text, known("ethereum"))
			if k != nil || len(ps) == 0 {
				t.Fatalf("no problem: %+v", k)
			}
			var all []string
			for _, p := range ps {
				all = append(all, p.String())
				for _, secret := range []string{key1, h1, h2, "s3cr3t", strings.ToUpper(h1)} {
					if strings.Contains(p.String(), secret) || strings.Contains(p.Err().Error(), secret) {
						t.Errorf("problem %q shows a value of the secret", p)
					}
				}
			}
			if !slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("problems %q, want one with %q", all, tc.want)
			}
			if !strings.HasPrefix(ps[0].Err().Error(), "CLIENT_KEYS: $") {
				t.Errorf("Err %q", ps[0].Err())
			}
		})
	}
	// Unknown chains are not checked when the configuration is not known.
	if _, ps := Parse(entry(`,"chains":["x"]`), nil); len(ps) > 0 {
		t.Error(ps)
	}
}

func TestNewKeyAndHash(t *testing.T) {
	re := regexp.MustCompile(`^evmlb_[A-Za-z0-9_-]{43}$`)
	a, b := NewKey(), NewKey()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Fatalf("keys %q %q", a, b)
	}
	// sha256("abc")
	if got := Hash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error(got)
	}
	k, ps := Parse(`[{"name":"x","key_sha256":"`+Hash(a)+`"}]`, nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if _, ok := k.Lookup(a); !ok {
		t.Error("a new key's hash finds it")
	}
}

func TestPresented(t *testing.T) {
	long := strings.Repeat("k", MaxKeyBytes+1)
	for _, tc := range []struct {
		path, auth, key string
		p               Presentation
	}{
		{"", "", "", NoKey},
		{"k1", "", "k1", OneKey},
		{"", "Bearer k1", "k1", OneKey},
		{"", "bearer  k1 ", "k1", OneKey},
		{"k1", "Bearer k1", "k1", OneKey},
		{"k1", "Bearer k2", "", Conflict},
		{"", "Bearer", "", Conflict},
		{"", "Bearer   ", "", Conflict},
		{"", "Basic YWRtaW46eA==", "", NoKey},
		{"k1", "Basic YWRtaW46eA==", "k1", OneKey},
		{long, "", "", Conflict},
		{"", "Bearer " + long, "", Conflict},
	} {
		key, p := Presented(tc.path, tc.auth)
		if key != tc.key || p != tc.p {
			t.Errorf("Presented(%q, %q) = %q, %v; want %q, %v", tc.path, tc.auth, key, p, tc.key, tc.p)
		}
	}
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                        "/",
		"/ethereum":                "/ethereum",
		"/ethereum/" + key1:        "/ethereum/[key]",
		"/ethereum/" + key1 + "/x": "/ethereum/[key]",
		"/ethereum/":               "/ethereum/[key]",
		"/admin/chains":            "/admin/chains",
		"/admin":                   "/admin",
		"x":                        "[path]",
	} {
		if got := RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLookupComparesEveryEntry: a lookup compares the presented key's hash with every entry's, whether it matches
// the first entry, the last, or none: no early exit.
func TestLookupComparesEveryEntry(t *testing.T) {
	var entries []string
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = NewKey()
		entries = append(entries, fmt.Sprintf(`{"name":"c%d","key_sha256":"%s"}`, i, Hash(keys[i])))
	}
	k, ps := Parse("["+strings.Join(entries, ",")+"]", nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	n := 0
	orig := equal
	equal = func(x, y []byte) int { n++; return orig(x, y) }
	defer func() { equal = orig }()
	for _, tc := range []struct {
		key  string
		want string
	}{{keys[0], "c0"}, {keys[49], "c49"}, {keys[17], "c17"}, {"evmlb_nope", ""}, {keys[0][:20], ""}} {
		n = 0
		c, ok := k.Lookup(tc.key)
		if ok != (tc.want != "") || (ok && c.Name != tc.want) {
			t.Errorf("Lookup: %+v %v, want %q", c, ok, tc.want)
		}
		if n != len(keys) {
			t.Errorf("Lookup of %s made %d compares, want %d (every entry)", tc.want, n, len(keys))
		}
	}
}

// TestLookupTime: a hit on the first entry, a near miss (that key with its last character changed) and a far miss
// take the same time within noise: a lookup that stopped at its match would make the hit faster. Figures are
// logged (go test -v).
func TestLookupTime(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	var entries []string
	first := NewKey()
	entries = append(entries, `{"name":"c0","key_sha256":"`+Hash(first)+`"}`)
	for i := 1; i < 100; i++ {
		entries = append(entries, fmt.Sprintf(`{"name":"c%d","key_sha256":"%s"}`, i, Hash(NewKey())))
	}
	k, _ := Parse("["+strings.Join(entries, ",")+"]", nil)
	near := first[:len(first)-1] + "x"
	far := "evmlb_" + strings.Repeat("z", 43)
	const n = 5000
	measure := func(key string) time.Duration {
		start := time.Now()
		for range n {
			k.Lookup(key)
		}
		return time.Since(start) / n
	}
	// Interleaved, best of 7 each: the machine is shared.
	keys := []string{first, near, far}
	best := []time.Duration{1 << 62, 1 << 62, 1 << 62}
	for range 7 {
		for i, key := range keys {
			best[i] = min(best[i], measure(key))
		}
	}
	t.Logf("lookup over 100 entries: hit on the first %v, near miss %v, far miss %v", best[0], best[1], best[2])
	for i, what := range []string{"hit on the first entry", "near miss"} {
		if r := float64(best[i]) / float64(best[2]); r < 0.75 || r > 1.33 {
			t.Errorf("%s %v vs far miss %v: ratio %.2f", what, best[i], best[2], r)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`[{"name":"a","key_sha256":"` + Hash(key1) + `","chains":["ethereum"],"allow":["eth_*"],"rps":5,"burst":10,"per_day":100}]`)
	f.Add(`[{"name":"a","key_sha256":"` + Hash(key1) + `"},{"name":"a","key_sha256":"` + Hash(key1) + `"}]`)
	f.Add(`[]`)
	f.Add(`[{"name":"a","key_sha256":"` + key1 + `","deny":[]}]`)
	f.Fuzz(func(t *testing.T, text string) {
		k, ps := Parse(text, known("ethereum"))
		if (k == nil) == (len(ps) == 0) && strings.TrimSpace(text) != "" {
			t.Fatalf("keys %v with problems %v", k, ps)
		}
		for _, p := range ps {
			if p.Path == "" || p.Msg == "" || !strings.HasPrefix(p.Path, "$") {
				t.Fatalf("problem %+v", p)
			}
			// A problem never quotes the text: its message is one of the package's rules (numbers aside).
			if !slices.Contains(rules, digits.ReplaceAllString(p.Msg, "N")) {
				t.Fatalf("problem %q is not one of the rules", p)
			}
			if !pathRE.MatchString(p.Path) {
				t.Fatalf("problem path %q", p.Path)
			}
		}
		for _, c := range k.Clients() {
			if !ValidName(c.Name) || (c.Allow != nil && c.Deny != nil) || c.Limit.RPS < 0 {
				t.Fatalf("client %+v", c)
			}
			if got, ok := k.Find(c.Name); !ok || got.Name != c.Name {
				t.Fatal("Find")
			}
		}
	})
}

var (
	digits = regexp.MustCompile(`[0-9]+`)
	pathRE = regexp.MustCompile(`^\$(\[[0-9]+\](\.[a-z_0-9]+(\[[0-9]+\])?)?)?$`)
	// rules are every message a problem may have, numbers written N.
	rules = func() []string {
		allowed := " (allowed: name, key_sha256, chains, allow, deny, rps, burst, per_day)"
		list := []string{
			`must be a JSON array of {"name","key_sha256",…} objects`,
			"the array is empty: unset CLIENT_KEYS to leave the balancer open",
			"more than 1 entries", "repeats the name of entry 1",
			"repeats the hash of entry 1: two clients would share one key", "not an object",
			"1 unknown field" + allowed, "1 unknown fields" + allowed, "is missing",
			`"unknown" is reserved: it labels the requests without a known key`,
			"is missing (the SHA-256 of the key, from `evmlb keys new NAME`)", NameRule,
			"must be 64 lowercase hex digits: the SHA-256 of the key",
			"must be 64 lowercase hex digits: the SHA-256 of the key, not the key itself (which must never be in the secret)",
			`must be a non-empty array of chain names, or ["*"] for every chain`, `"*" must stand alone`,
			"is not a configured chain", "repeats an earlier chain", "at most one of allow and deny may be given",
			"must be an array of method names, each optionally ending in *",
			"must be a non-empty array of method names, each optionally ending in *",
			"must be a number from 0 (no limit) to 1000000", "needs rps: a burst is above a rate",
			"must be 0 (the default: rps, at least 1) or at least 1",
			"must be an integer from 0 (no limit) to 1000000000000",
		}
		for i, r := range list {
			list[i] = digits.ReplaceAllString(r, "N")
		}
		return list
	}()
)

func FuzzPresented(f *testing.F) {
	f.Add("k1", "Bearer k1")
	f.Add("", "Bearer k2")
	f.Add("k1", "Basic x")
	f.Add("", "bearer")
	f.Fuzz(func(t *testing.T, path, auth string) {
		key, p := Presented(path, auth)
		switch p {
		case NoKey, Conflict:
			if key != "" {
				t.Fatalf("%v with key %q", p, key)
			}
		case OneKey:
			if key == "" || len(key) > MaxKeyBytes || (key != path && !strings.Contains(auth, key)) {
				t.Fatalf("key %q from %q, %q", key, path, auth)
			}
			if path != "" && key != path {
				t.Fatalf("path %q but key %q", path, key)
			}
		default:
			t.Fatalf("presentation %v", p)
		}
		r := RedactPath("/" + path + "/" + key)
		if key != "" && strings.Contains(r, key) && !strings.Contains("/[key]", key) && !strings.Contains(path, key) {
			t.Fatalf("RedactPath kept the key: %q", r)
		}
	})
}
