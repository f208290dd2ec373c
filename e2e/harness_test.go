package e2e

import (
	"strings"
	"testing"
)

// These tests check the harness itself, so that a scenario that passes in
// both hosts means something: normalization keeps what must agree and drops
// only what may differ, and Compare reports differences.

func TestNormRPC(t *testing.T) {
	s := &S{names: map[string]string{"127.0.0.1:4242": "<upstream a>"}}
	got := NormRPC(s, []byte(`{"jsonrpc":"2.0","id":9007199254740993,"error":{"code":-32000,"message":"upstream 127.0.0.1:4242 failed","data":"x"}}`))
	want := `{"error":{"code":-32000,"data":"<data>","message":"upstream <upstream a> failed"},"id":9007199254740993,"jsonrpc":"2.0"}`
	if got != want {
		t.Errorf("NormRPC = %s\nwant      %s", got, want)
	}
	if got := NormRPCNoResult(s, []byte(`[{"jsonrpc":"2.0","id":"a","result":{"hash":"0x1"}}]`)); got != `[{"id":"a","jsonrpc":"2.0","result":"<result>"}]` {
		t.Errorf("NormRPCNoResult = %s", got)
	}
	if got := NormRPC(s, []byte("<html>")); !strings.HasPrefix(got, "not JSON") {
		t.Errorf("NormRPC(html) = %s", got)
	}
}

func TestNormTopKeysAndShape(t *testing.T) {
	a := NormTopKeys(nil, []byte(`{"upstreams":[{"name":"x","error":"boom"}],"host":"wazero"}`))
	b := NormTopKeys(nil, []byte(`{"host":"workerd","upstreams":[{"name":"x"}]}`))
	if a != b || a != "{host:string,upstreams:array}" {
		t.Errorf("NormTopKeys: %s vs %s", a, b)
	}
	if NormTopKeys(nil, []byte(`{"upstreams":{}}`)) == a {
		t.Error("NormTopKeys does not tell an object from an array")
	}
	if got := NormShape(nil, []byte(`{"b":[1,"x",1],"a":null}`)); got != `{"a":null,"b":[number|string]}` {
		t.Errorf("NormShape = %s", got)
	}
}

func TestCompare(t *testing.T) {
	a := &Record{Steps: []Step{{"x", 200, "1"}, {"y", 503, "e"}}}
	if d := Compare("A", a, "B", a); len(d) != 0 {
		t.Errorf("a record differs from itself: %v", d)
	}
	b := &Record{Steps: []Step{{"x", 200, "1"}, {"y", 500, "e"}}}
	if d := Compare("A", a, "B", b); len(d) != 1 || !strings.Contains(d[0], "503") || !strings.Contains(d[0], "500") {
		t.Errorf("status difference: %v", d)
	}
	c := &Record{Steps: []Step{{"x", 200, "1"}}}
	if d := Compare("A", a, "B", c); len(d) != 1 {
		t.Errorf("missing step: %v", d)
	}
}

func TestUpstreamHeights(t *testing.T) {
	got := upstreamHeights([]byte(`{"upstreams":[{"name":"a","height":12},{"name":"b","height":"0x1e"},{"name":"c"}],"chains":[{"name":"eth","best":{"name":"d","height":"7"}}]}`))
	want := map[string]uint64{"a": 12, "b": 30, "d": 7}
	if len(got) != len(want) {
		t.Fatalf("upstreamHeights = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("height of %s = %d, want %d", k, got[k], v)
		}
	}
}

func TestLeaks(t *testing.T) {
	s := &S{names: map[string]string{}}
	sec := s.Secret()
	if l := s.leaks([]byte("nothing here")); len(l) != 0 {
		t.Errorf("clean body: %v", l)
	}
	if l := s.leaks([]byte(`{"url":"http://h/v2/KEY` + sec + `"}`)); len(l) != 1 || !strings.Contains(l[0], sec) {
		t.Errorf("leaked secret not found: %v", l)
	}
	if s.Secret() == sec {
		t.Error("Secret returned the same token twice")
	}
}

// A client key sent in the path may be in wrangler dev's request lines, and nowhere else; a key hash never.
func TestPathKeysInLogs(t *testing.T) {
	s := &S{names: map[string]string{}}
	key, hash := "pathkeyBODY123", "0123abcdef"
	s.AddSecret(key)
	s.AddSecret(hash)
	s.PathKey(key)
	ok := "[wrangler:info] POST /ethereum/evmlb_" + key + " 200 OK (3ms)\n[wrangler:inf] GET /ethereum/" + key + " 401 Unauthorized (1ms)\n"
	if l := s.leaks(s.dropPathKeys("workerd", ok)); len(l) != 0 {
		t.Errorf("wrangler's request lines: %v", l)
	}
	for _, bad := range []struct{ host, log string }{
		{"wazero", ok}, // the wazero host writes no request log: a key there is the balancer's
		{"workerd", "evmlb: client " + key + " limited\n"},                             // a line of the balancer's
		{"workerd", ok + "[wrangler:info] POST /ethereum/" + hash + " 200 OK (3ms)\n"}, // a hash, even in a request line
		{"workerd", "x [wrangler:info] POST /ethereum/" + key + " 200 OK (3ms)\n"},     // not the start of a line
	} {
		if l := s.leaks(s.dropPathKeys(bad.host, bad.log)); len(l) == 0 {
			t.Errorf("%s log %q: no leak found", bad.host, bad.log)
		}
	}
}
