package cli

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/clients"
)

func TestKeysNew(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := run(t, dir, nil, "", "keys", "new", "app-1")
	if code != 0 || errs != "" {
		t.Fatalf("%d %q %q", code, out, errs)
	}
	key := regexp.MustCompile(`evmlb_[A-Za-z0-9_-]{43}\b`).FindString(out)
	if key == "" || strings.Count(out, key) != 1 || !strings.Contains(out, "shown this once") {
		t.Fatalf("no key shown once in %q", out)
	}
	m := regexp.MustCompile(`\{"name":.*\}`).FindString(out)
	var e struct {
		Name string `json:"name"`
		Hash string `json:"key_sha256"`
	}
	if err := json.Unmarshal([]byte(m), &e); err != nil || e.Name != "app-1" || e.Hash != clients.Hash(key) {
		t.Fatalf("entry %q: %v %+v", m, err, e)
	}
	// The entry is a valid CLIENT_KEYS entry that finds the key.
	k, ps := clients.Parse("["+m+"]", nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if c, ok := k.Lookup(key); !ok || c.Name != "app-1" {
		t.Error("the entry does not find its key")
	}
	out2, _, _ := run(t, dir, nil, "", "keys", "new", "app-1")
	if strings.Contains(out2, key) {
		t.Error("two runs made the same key")
	}
	for _, args := range [][]string{{"keys"}, {"keys", "new"}, {"keys", "new", "a b"}, {"keys", "new", "unknown"}, {"keys", "old", "a"}, {"keys", "new", "a", "b"}} {
		if _, errs, code := run(t, dir, nil, "", args...); code != 2 || !strings.HasPrefix(errs, "evmlb: ") {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
}

const keysUpstreams = `[{"chain":"eth","name":"a","upstream":"https://rpc.example/v3/x"},{"chain":"base","name":"a","upstream":"https://b.example"}]`

func TestValidateClientKeys(t *testing.T) {
	dir := t.TempDir()
	key := clients.NewKey()
	good := `[{"name":"app","key_sha256":"` + clients.Hash(key) + `","chains":["eth"],"rps":50,"burst":100},{"name":"bot","key_sha256":"` + clients.Hash(key+"2") + `"}]`
	out, errs, code := run(t, dir, map[string]string{"UPSTREAM_CONFIG": keysUpstreams, "CLIENT_KEYS": good}, "", "validate")
	if code != 0 || !strings.Contains(out, "CLIENT_KEYS (environment or .dev.vars): valid, 2 clients\n  app: [eth]; rps 50, burst 100, per_day 0\n  bot: every chain; no limit\n") {
		t.Errorf("valid keys: %d %q %q", code, out, errs)
	}
	out, _, code = run(t, dir, map[string]string{"UPSTREAM_CONFIG": keysUpstreams}, "", "validate")
	if code != 0 || !strings.Contains(out, "CLIENT_KEYS (environment or .dev.vars): not set: every chain is open") {
		t.Errorf("no keys: %d %q", code, out)
	}
	bad := `[{"name":"app","key_sha256":"` + key + `","chains":["polygon"]}]`
	out, errs, code = run(t, dir, map[string]string{"UPSTREAM_CONFIG": keysUpstreams, "CLIENT_KEYS": bad}, "", "validate")
	if code != 1 || !strings.Contains(out, "CLIENT_KEYS (environment or .dev.vars): 2 problems\n  $[0].key_sha256: must be 64 lowercase hex digits: the SHA-256 of the key, not the key itself") ||
		!strings.Contains(out, "$[0].chains[0]: is not a configured chain") || errs != "evmlb: the configuration is not valid (2 problems)\n" {
		t.Errorf("bad keys: %d %q %q", code, out, errs)
	}
	// With UPSTREAM_CONFIG broken too, both are reported; the chains are not checked.
	out, errs, code = run(t, dir, map[string]string{"UPSTREAM_CONFIG": `[{"chain":"eth"}]`, "CLIENT_KEYS": bad}, "", "validate")
	if code != 1 || !strings.Contains(out, "CLIENT_KEYS (environment or .dev.vars): 1 problem\n") || strings.Contains(out, "configured chain") {
		t.Errorf("both broken: %d %q %q", code, out, errs)
	}
	for _, s := range []string{key, clients.Hash(key), clients.Hash(key + "2")} {
		if strings.Contains(outputsText(), s) {
			t.Errorf("validate printed a key or a hash")
		}
	}
}

func TestSecretsPushClientKeys(t *testing.T) {
	base, calls := fakeCloudflare(t, http.StatusOK)
	dir := deployDir(t)
	key := clients.NewKey()
	keysJSON := `[{"name":"app","key_sha256":"` + clients.Hash(key) + `"}]`
	write(t, dir, ".dev.vars", "UPSTREAM_CONFIG="+upstreamSecret+"\nCLIENT_KEYS="+keysJSON+"\nADMIN_PASSWORD="+adminSecret+"\n")
	out, errs, code := run(t, dir, cfVars, base, "secrets", "push")
	if code != 0 || errs != "" || out != "set UPSTREAM_CONFIG on evmlb-test\nset CLIENT_KEYS on evmlb-test\nset ADMIN_PASSWORD on evmlb-test\n" {
		t.Fatalf("code %d %q %q", code, out, errs)
	}
	assertCalls(t, *calls, []cfCall{
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"UPSTREAM_CONFIG","text":` + jsonString(upstreamSecret) + `,"type":"secret_text"}`},
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"CLIENT_KEYS","text":` + jsonString(keysJSON) + `,"type":"secret_text"}`},
		{"PUT", "/client/v4/accounts/acc123/workers/scripts/evmlb-test/secrets", `{"name":"ADMIN_PASSWORD","text":"` + adminSecret + `","type":"secret_text"}`},
	})
	// A malformed CLIENT_KEYS is not pushed (it would shut every chain), nor anything else.
	*calls = nil
	write(t, dir, ".dev.vars", "UPSTREAM_CONFIG="+upstreamSecret+"\nCLIENT_KEYS=[{\"name\":\"app\",\"key_sha256\":\""+key+"\"}]\n")
	out, errs, code = run(t, dir, cfVars, base, "secrets", "push")
	if code != 1 || !strings.Contains(out, "CLIENT_KEYS (the environment or .dev.vars): 1 problem\n  $[0].key_sha256: must be") ||
		errs != "evmlb: not pushed: CLIENT_KEYS is not valid (1 problem)\n" || len(*calls) != 0 {
		t.Errorf("malformed: %d %q %q %v", code, out, errs, *calls)
	}
	if strings.Contains(outputsText(), key) || strings.Contains(outputsText(), clients.Hash(key)) {
		t.Error("push printed a key or a hash")
	}
}

func outputsText() string {
	outputs.Lock()
	defer outputs.Unlock()
	return outputs.all.String()
}
