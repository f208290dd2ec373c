package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var settings = Settings{FinalizedTTL: time.Hour, RealtimeTTL: 2 * time.Second, HashTTL: time.Hour, MaxAnswerBytes: 1 << 20}

// state is a chain whose finalized block is 100 and served head 110.
func state() State {
	return State{Host: "rpc.example.org", Chain: "eth", Epoch: 3, Finalized: 100, FinalizedKnown: true, Head: 110, Settings: settings}
}

const hash = `"0xab00000000000000000000000000000000000000000000000000000000000001"`

// TestDecideKinds holds the table's rules: the finalized boundary, realtime for fee estimates only (no read at
// latest is kept), by hash only once
// finality is known, pending/safe/finalized tags and everything not in the table never.
func TestDecideKinds(t *testing.T) {
	noFinality := state()
	noFinality.Finalized, noFinality.FinalizedKnown = 0, false
	noHead := state()
	noHead.Head = 0
	off := state()
	off.Settings.Off = true
	for _, tc := range []struct {
		method, params string
		s              State
		want           Kind
	}{
		{"eth_getBlockByNumber", `["0x64",false]`, state(), Finalized}, // 100 = finalized
		{"eth_getBlockByNumber", `["0x65",false]`, state(), Never},     // 101: unfinalized
		{"eth_getBlockByNumber", `["0x64",false]`, noFinality, Never},
		{"eth_getBlockByNumber", `["earliest",false]`, state(), Finalized},
		{"eth_getBlockByNumber", `["latest",false]`, state(), Never}, // shared in flight, never kept: another isolate may be past a reorg
		{"eth_getBlockByNumber", `["latest",false]`, noHead, Never},
		{"eth_getBlockByNumber", `["pending",false]`, state(), Never},
		{"eth_getBlockByNumber", `["safe",false]`, state(), Never},
		{"eth_getBlockByNumber", `["finalized",false]`, state(), Never},
		{"eth_getBlockByNumber", `["0x64",false]`, off, Never},
		{"eth_getBalance", `["0x01"]`, state(), Never}, // omitted: latest
		{"eth_getBalance", `["0x01","0x1"]`, state(), Finalized},
		{"eth_getBalance", `["0x01",{"blockNumber":"0x1"}]`, state(), Finalized},
		{"eth_getBalance", `["0x01",{"blockHash":` + hash + `}]`, state(), Never},
		{"eth_getTransactionCount", `["0x01","pending"]`, state(), Never}, // a wallet's pending nonce
		{"eth_getTransactionCount", `["0x01","latest"]`, state(), Never},
		{"eth_call", `[{"to":"0x01"},"0x63"]`, state(), Finalized},
		{"eth_call", `[{"to":"0x01"},"0x6e"]`, state(), Never},
		{"eth_getProof", `["0x01",[],"0x1"]`, state(), Finalized},
		{"eth_getProof", `["0x01",[]]`, state(), Never},
		{"eth_getStorageAt", `["0x01","0x0"]`, state(), Never},
		{"eth_feeHistory", `["0x4","latest",[]]`, noHead, Never},
		{"eth_feeHistory", `["0x4","latest",[]]`, state(), Realtime},
		{"eth_feeHistory", `["0x4","0x10",[]]`, state(), Finalized},
		{"eth_feeHistory", `["0x4","pending",[]]`, state(), Never},
		{"eth_getLogs", `[{"fromBlock":"0x1","toBlock":"0x64"}]`, state(), Finalized},
		{"eth_getLogs", `[{"fromBlock":"0x1","toBlock":"0x65"}]`, state(), Never},
		{"eth_getLogs", `[{"fromBlock":"0x1"}]`, state(), Never},
		{"eth_getLogs", `[{"fromBlock":"0x1","toBlock":"latest"}]`, state(), Never},
		{"eth_getLogs", `[{"toBlock":"0x2"}]`, state(), Never},
		{"eth_getLogs", `[{"blockHash":` + hash + `}]`, state(), ByHash},
		{"eth_getBlockReceipts", `[` + hash + `]`, state(), ByHash},
		{"eth_getBlockReceipts", `["0x64"]`, state(), Finalized},
		{"trace_block", `["0x64"]`, state(), Finalized},
		{"trace_block", `["latest"]`, state(), Never},
		{"debug_traceBlockByNumber", `["0x10",{"tracer":"callTracer"}]`, state(), Finalized},
		{"eth_getBlockByHash", `[` + hash + `,false]`, state(), ByHash},
		{"eth_getBlockByHash", `[` + hash + `,false]`, noFinality, Never},
		{"eth_getTransactionReceipt", `[` + hash + `]`, state(), ByHash},
		{"eth_blockNumber", `[]`, state(), Never}, // shared in flight only
		{"eth_blockNumber", ``, state(), Never},
		{"eth_gasPrice", `[]`, state(), Realtime},
		{"eth_sendRawTransaction", `["0x00"]`, state(), Never},
		{"eth_newFilter", `[{"fromBlock":"0x1","toBlock":"0x2"}]`, state(), Never},
		{"eth_getFilterChanges", `["0x1"]`, state(), Never},
		{"eth_subscribe", `["newHeads"]`, state(), Never},
		{"eth_estimateGas", `[{},"0x1"]`, state(), Never},
		{"eth_getBlockByNumber", `{"not":"a list"}`, state(), Never},
		{"eth_call", `[{"to":"0x01","data":"0x` + strings.Repeat("ab", MaxParamsBytes/2) + `"},"0x1"]`, state(), Never}, // too large to hash
		{"eth_call", `[{"to":"0x01","data":"0x` + strings.Repeat("ab", MaxParamsBytes/2-40) + `"},"0x1"]`, state(), Finalized},
	} {
		d := Decide(tc.method, json.RawMessage(tc.params), tc.s)
		if d.Kind != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.params, d.Kind, tc.want)
		}
		if (d.Key != "") != (tc.want != Never) {
			t.Errorf("%s %s: key %q for kind %s", tc.method, tc.params, d.Key, d.Kind)
		}
	}
}

// TestKeys: the key's form; the realtime key moves with the served head; the epoch is in every key; whitespace
// between tokens does not change it, and anything else does.
func TestKeys(t *testing.T) {
	s := state()
	d := Decide("eth_feeHistory", json.RawMessage(`["0x4", "latest", []]`), s)
	sum := CanonicalHash([]byte(`["0x4","latest",[]]`))
	want := fmt.Sprintf("https://rpc.example.org/__evmlb/cache/eth/3/eth_feeHistory/head-110/%x", sum)
	if d.Key != want {
		t.Fatalf("key %s, want %s", d.Key, want)
	}
	s2 := s
	s2.Head = 111
	if Decide("eth_feeHistory", json.RawMessage(`["0x4","latest",[]]`), s2).Key == d.Key {
		t.Error("the realtime key did not move with the head")
	}
	s3 := s
	s3.Epoch = 4
	fin := Decide("eth_getBalance", json.RawMessage(`["0x01","0x1"]`), s)
	if Decide("eth_getBalance", json.RawMessage(`["0x01","0x1"]`), s3).Key == fin.Key {
		t.Error("the epoch is not in the key")
	}
	if !strings.Contains(fin.Key, "/finalized/") {
		t.Errorf("finalized key %s", fin.Key)
	}
	for _, p := range []string{" [ \"0x01\" ,\n\t\"0x1\" ] ", `["0x01","0x1"]`} {
		if k := Decide("eth_getBalance", json.RawMessage(p), s).Key; k != fin.Key {
			t.Errorf("%q: key %s, want %s", p, k, fin.Key)
		}
	}
	for _, p := range []string{`["0x1","0x1"]`, `["0x01","0x01"]`, `["0x01 ","0x1"]`} {
		if k := Decide("eth_getBalance", json.RawMessage(p), s).Key; k == fin.Key {
			t.Errorf("%q has the key of another spelling", p)
		}
	}
	if CanonicalHash([]byte(`["a b"]`)) == CanonicalHash([]byte(`["ab"]`)) {
		t.Error("whitespace inside a string was removed")
	}
	if CanonicalHash([]byte(`["a\" b"]`)) == CanonicalHash([]byte(`["a\"b"]`)) {
		t.Error("whitespace after an escaped quote was removed")
	}
}

// TestStorable: what may be stored once the answer is in.
func TestStorable(t *testing.T) {
	s := state()
	dec := func(method, params string) Decision { return Decide(method, json.RawMessage(params), s) }
	for _, tc := range []struct {
		d      Decision
		result string
		want   bool
	}{
		{dec("eth_getBlockByNumber", `["0x64",false]`), `{"number":"0x64"}`, true},
		{dec("eth_getBlockByNumber", `["0x64",false]`), `null`, false},
		{dec("eth_getLogs", `[{"fromBlock":"0x1","toBlock":"0x2"}]`), `[]`, true}, // empty, but finalized
		{dec("eth_getCode", `["0x01","0x1"]`), `"0x"`, true},
		{dec("eth_getCode", `["0x01","latest"]`), `"0x60"`, false}, // at latest: never kept
		{dec("eth_getBlockByNumber", `["latest",false]`), `{"number":"0x6e"}`, false},
		{dec("eth_gasPrice", `[]`), `"0x6e"`, true},
		{dec("eth_feeHistory", `["0x4","latest",[]]`), `{"oldestBlock":"0x6b"}`, true},
		{dec("eth_feeHistory", `["0x4","latest",[]]`), `[]`, false}, // empty and not finalized
		{dec("eth_blockNumber", `[]`), `"0x6e"`, false},
		{dec("eth_getTransactionReceipt", `[`+hash+`]`), `{"blockNumber":"0x64","status":"0x1"}`, true},
		{dec("eth_getTransactionReceipt", `[`+hash+`]`), `{"blockNumber":"0x65","status":"0x1"}`, false},
		{dec("eth_getTransactionReceipt", `[`+hash+`]`), `null`, false},
		{dec("eth_getTransactionByHash", `[`+hash+`]`), `{"blockNumber":null}`, false}, // pending
		{dec("eth_getBlockByHash", `[`+hash+`,false]`), `{"number":"0x1","hash":` + hash + `}`, true},
		{dec("eth_getBlockReceipts", `[`+hash+`]`), `[{"blockNumber":"0x2"}]`, true},
		{dec("eth_getBlockReceipts", `[`+hash+`]`), `[]`, false},
		{dec("eth_getLogs", `[{"blockHash":`+hash+`}]`), `[{"blockNumber":"0x200"}]`, false},
		{dec("eth_getBlockByNumber", `["0x64",true]`), `"` + strings.Repeat("a", 1<<20) + `"`, false}, // over the largest
		{dec("eth_getBlockByNumber", `["0x65",false]`), `{"number":"0x65"}`, false},                   // Never
	} {
		if got := tc.d.Storable([]byte(tc.result)); got != tc.want {
			t.Errorf("%s (%s) %.40s: storable %v, want %v", tc.d.Key, tc.d.Kind, tc.result, got, tc.want)
		}
	}
}

// TestMemoryBound: the tier never holds more than its bound; it evicts the least recently used first; an entry
// over its limit is not kept; entries expire; a purge drops one chain's.
func TestMemoryBound(t *testing.T) {
	m := NewMemory(64 << 10)
	body := make([]byte, 1000)
	key := func(chain string, i int) string { return fmt.Sprintf("https://h/__evmlb/cache/%s/0/m/f/%d", chain, i) }
	for i := range 200 {
		m.Put("eth", key("eth", i), body, t0, time.Hour)
		if i == 10 {
			m.Get(key("eth", 0), t0) // used: kept past older ones
		}
		if held, _ := m.Held(); held > 64<<10 {
			t.Fatalf("held %d > bound", held)
		}
	}
	if _, ok := m.Get(key("eth", 1), t0); ok {
		t.Error("the oldest unused entry was not evicted")
	}
	if _, ok := m.Get(key("eth", 199), t0); !ok {
		t.Error("the newest entry is gone")
	}
	if m.Put("eth", "big", make([]byte, 9<<10), t0, time.Hour) {
		t.Error("an entry over the limit was kept")
	}
	_, n := m.Held()
	if n < 50 {
		t.Errorf("only %d entries of ~%d bytes fit in 64 KiB", n, 1000+entryOverhead)
	}
	if _, ok := m.Get(key("eth", 199), t0.Add(time.Hour)); ok {
		t.Error("an entry outlived its TTL")
	}
	m.Put("other", key("other", 1), body, t0, time.Hour)
	m.Put("eth", key("eth", 1), body, t0, time.Hour)
	if m.HeldBy("other") != int64(len(key("other", 1))+1000+entryOverhead) {
		t.Errorf("held by other: %d", m.HeldBy("other"))
	}
	m.Purge("eth")
	if m.HeldBy("eth") != 0 {
		t.Errorf("held by eth after its purge: %d", m.HeldBy("eth"))
	}
	if _, ok := m.Get(key("eth", 1), t0); ok {
		t.Error("purge left an entry of its chain")
	}
	if _, ok := m.Get(key("other", 1), t0); !ok {
		t.Error("purge dropped another chain's entry")
	}
	m.Purge("")
	if held, n := m.Held(); held != 0 || n != 0 {
		t.Errorf("after purging all: %d bytes, %d entries", held, n)
	}
}

// TestFlights: one leader; waiters get its value; a waiter whose context ends stops waiting; the next caller
// after Finish leads again.
func TestFlights(t *testing.T) {
	var f Flights[int]
	lead, first := f.Join("k")
	if !first {
		t.Fatal("the first caller does not lead")
	}
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		fl, leads := f.Join("k")
		if leads {
			t.Fatal("a second leader")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = fl.Wait(context.Background())
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl, _ := f.Join("k")
	cancel()
	if _, ok := fl.Wait(ctx); ok {
		t.Error("a waiter whose context ended still waited")
	}
	if n := f.Finish("k", lead, 42); n != 9 {
		t.Errorf("%d waiters, want 9", n)
	}
	wg.Wait()
	for i, v := range got {
		if v != 42 {
			t.Errorf("waiter %d got %d", i, v)
		}
	}
	if _, leads := f.Join("k"); !leads {
		t.Error("after Finish the next caller does not lead")
	}
}
