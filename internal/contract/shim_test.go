package contract

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// shimPath is workerd's side of the contract, the JS shim.
const shimPath = "../../worker/shim/worker.mjs"

// shimBlock reads the shim's constant block (between the "contract constants" markers): every `const NAME =
// value;` line, its value decoded (a JSON value, or a single-quoted string; objects may have bare keys).
func shimBlock(t *testing.T, src string) (map[string]any, []string) {
	t.Helper()
	const begin, end = "// --- contract constants: begin ---", "// --- contract constants: end ---"
	i, j := strings.Index(src, begin), strings.Index(src, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no constant block (%q … %q)", shimPath, begin, end)
	}
	decl := regexp.MustCompile(`^const ([A-Z_]+) = (.*);$`)
	bareKey := regexp.MustCompile(`([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:`)
	consts := map[string]any{}
	var order []string
	for _, line := range strings.Split(src[i+len(begin):j], "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		m := decl.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: a line of the constant block is not `const NAME = value;`: %s", shimPath, line)
		}
		name, text := m[1], m[2]
		var v any
		switch {
		case len(text) >= 2 && text[0] == '\'' && text[len(text)-1] == '\'' && !strings.ContainsAny(text[1:len(text)-1], `'\`):
			v = text[1 : len(text)-1]
		case strings.HasPrefix(text, "{"):
			obj := map[string]string{}
			if err := json.Unmarshal([]byte(bareKey.ReplaceAllString(text, `$1"$2":`)), &obj); err != nil {
				t.Fatalf("%s: %s is not an object of strings: %v", shimPath, name, err)
			}
			v = obj
		default:
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				t.Fatalf("%s: %s = %s is not a JSON value: %v", shimPath, name, text, err)
			}
		}
		consts[name] = v
		order = append(order, name)
	}
	return consts, order
}

// TestShimConstants holds the shim's hard-coded names and numbers to internal/contract's: each constant of its
// block, the names it reads from context.binding, the import functions it provides, the classes it exports; and
// no contract name written as a literal outside the block.
func TestShimConstants(t *testing.T) {
	b, err := os.ReadFile(shimPath)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	consts, _ := shimBlock(t, src)

	scalars := []struct {
		shim, goName string
		want         any
	}{
		{"CONTRACT_VERSION", "Version", float64(Version)},
		{"NO_BODY", "NoBody", float64(NoBody)},
		{"HOST_KIND", "HostWorkerd", HostWorkerd},
		{"OBJECT_URL_BASE", "ObjectURLBase", ObjectURLBase},
		{"IMPORT_MODULE", "ImportModule", ImportModule},
		{"INTERNAL_ERROR", "InternalErrorBody", InternalErrorBody},
		{"MAX_TAG_BYTES", "MaxTagBytes", float64(MaxTagBytes)},
		{"MAX_ATTACHMENT_BYTES", "MaxAttachmentBytes", float64(MaxAttachmentBytes)},
		{"MAX_CLOSE_REASON_BYTES", "MaxCloseReasonBytes", float64(MaxCloseReasonBytes)},
		{"CLOSE_ABNORMAL", "CloseAbnormal", float64(CloseAbnormal)},
	}
	tables := []struct {
		shim string
		want map[string][2]string // the shim's key: internal/contract's name and value
	}{
		{"CALL", map[string][2]string{"fetch": {"CallFetch", CallFetch}, "alarm": {"CallAlarm", CallAlarm},
			"message": {"CallMessage", CallMessage}, "close": {"CallClose", CallClose}}},
		{"ROLE", map[string][2]string{"worker": {"RoleWorker", RoleWorker}, "chain": {"RoleChain", RoleChain},
			"upstream": {"RoleUpstream", RoleUpstream}, "subs": {"RoleSubs", RoleSubs},
			"budget": {"RoleBudget", RoleBudget}}},
		{"OP", map[string][2]string{"fetch": {"OpFetch", OpFetch}, "object": {"OpObject", OpObject},
			"storage": {"OpStorage", OpStorage}, "sleep": {"OpSleep", OpSleep}, "cache": {"OpCache", OpCache}, "abort": {"OpAbort", OpAbort},
			"upgrade": {"OpUpgrade", OpUpgrade}, "socket": {"OpSocket", OpSocket},
			"response": {"OpResponse", OpResponse}, "done": {"OpDone", OpDone}}},
		{"ERR", map[string][2]string{"timeout": {"ErrTimeout", ErrTimeout}, "aborted": {"ErrAborted", ErrAborted},
			"tooLarge": {"ErrTooLarge", ErrTooLarge}, "network": {"ErrNetwork", ErrNetwork},
			"storage": {"ErrStorage", ErrStorage}, "invalid": {"ErrInvalid", ErrInvalid}}},
		{"STORAGE", map[string][2]string{"get": {"StorageGet", StorageGet}, "put": {"StoragePut", StoragePut},
			"delete": {"StorageDelete", StorageDelete}, "list": {"StorageList", StorageList},
			"deleteAll": {"StorageDeleteAll", StorageDeleteAll}, "getAlarm": {"StorageGetAlarm", StorageGetAlarm},
			"setAlarm": {"StorageSetAlarm", StorageSetAlarm}, "deleteAlarm": {"StorageDeleteAlarm", StorageDeleteAlarm}}},
		{"CACHE", map[string][2]string{"match": {"CacheMatch", CacheMatch}, "put": {"CachePut", CachePut},
			"delete": {"CacheDelete", CacheDelete}}},
		{"SOCKET", map[string][2]string{"send": {"SocketSend", SocketSend}, "close": {"SocketClose", SocketClose},
			"attach": {"SocketAttach", SocketAttach}, "list": {"SocketList", SocketList}}},
		{"FRAME", map[string][2]string{"text": {"FrameText", FrameText}, "binary": {"FrameBinary", FrameBinary}}},
	}
	known := map[string]bool{}
	for _, c := range scalars {
		known[c.shim] = true
		got, ok := consts[c.shim]
		switch {
		case !ok:
			t.Errorf("shim constant %s is missing (internal/contract %s = %#v)", c.shim, c.goName, c.want)
		case got != c.want:
			t.Errorf("shim constant %s = %#v, internal/contract %s = %#v", c.shim, got, c.goName, c.want)
		}
	}
	var contractNames []string // every name value of the tables: none may be a literal outside the block
	for _, tb := range tables {
		known[tb.shim] = true
		got, ok := consts[tb.shim].(map[string]string)
		if !ok {
			t.Errorf("shim constant %s is missing or not an object of strings", tb.shim)
			continue
		}
		for k, w := range tb.want {
			contractNames = append(contractNames, w[1])
			switch v, ok := got[k]; {
			case !ok:
				t.Errorf("shim constant %s.%s is missing (internal/contract %s = %q)", tb.shim, k, w[0], w[1])
			case v != w[1]:
				t.Errorf("shim constant %s.%s = %q, internal/contract %s = %q", tb.shim, k, v, w[0], w[1])
			}
		}
		for k, v := range got {
			if _, ok := tb.want[k]; !ok {
				t.Errorf("shim constant %s.%s = %q is not in internal/contract (add it there, and here)", tb.shim, k, v)
			}
		}
	}
	for name := range consts {
		if !known[name] {
			t.Errorf("shim constant %s is not checked against internal/contract (add it to TestShimConstants)", name)
		}
	}

	// What the shim reads from context.binding: Go's names.
	bindingNames := []string{BindingContractVersion, BindingMaxBodyBytes, BindingRequestHeaders, BindingBegin, BindingComplete}
	for _, m := range regexp.MustCompile(`binding\.([A-Za-z]+)`).FindAllStringSubmatch(src, -1) {
		if !slices.Contains(bindingNames, m[1]) {
			t.Errorf("the shim reads binding.%s, which is not a binding of internal/contract", m[1])
		}
	}
	if m := regexp.MustCompile(`const \{ ([\w, ]+) \} = binding;`).FindStringSubmatch(src); m == nil {
		t.Error("the shim does not take begin and complete from binding as `const { begin, complete } = binding;`")
	} else if got := strings.Split(m[1], ", "); !slices.Equal(got, []string{BindingBegin, BindingComplete}) {
		t.Errorf("the shim takes %v from binding, internal/contract names %s and %s", got, BindingBegin, BindingComplete)
	}

	// The import module's functions: the methods of `const evmlb = { … };`.
	if m := regexp.MustCompile(`(?s)\n  const evmlb = \{\n(.*?)\n  \};`).FindStringSubmatch(src); m == nil {
		t.Error("the shim has no `const evmlb = { … };` (the import module's functions)")
	} else {
		var got []string
		for _, f := range regexp.MustCompile(`(?m)^    (\w+)\(`).FindAllStringSubmatch(m[1], -1) {
			got = append(got, f[1])
		}
		sort.Strings(got)
		want := []string{ImportBody, ImportDeliver, ImportTake}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("the shim's import functions are %v, internal/contract's %v", got, want)
		}
	}

	// The Durable Object classes it exports.
	var classes []string
	for _, m := range regexp.MustCompile(`export class (\w+) extends`).FindAllStringSubmatch(src, -1) {
		classes = append(classes, m[1])
	}
	if want := []string{ClassChain, ClassUpstream, ClassSubs, ClassBudget}; !slices.Equal(classes, want) {
		t.Errorf("the shim exports the classes %v, internal/contract names %v", classes, want)
	}

	// No contract name as a literal where the code compares, answers or builds a call with one.
	rest := src[strings.Index(src, "// --- contract constants: end ---"):]
	for _, name := range contractNames {
		q := fmt.Sprintf("%q", name)
		for _, pat := range []string{"case " + q, "=== " + q, "!== " + q, "failed(" + q, "return " + q, "[" + q + ","} {
			if strings.Contains(rest, pat) {
				t.Errorf("the shim writes %s outside its constant block (%s): use the constant", q, pat)
			}
		}
	}
}
