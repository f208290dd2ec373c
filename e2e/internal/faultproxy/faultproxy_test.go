package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

func node(t *testing.T) *anvil.Node {
	t.Helper()
	if _, err := anvil.Binary(); err != nil {
		if os.Getenv("EVMLB_E2E_REQUIRED") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	n := anvil.StartT(t, 777)
	if _, err := n.Mine(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	return n
}

func post(t *testing.T, url string, body []byte) *rpc.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rpc.Post(ctx, nil, url, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

func post2(t *testing.T, client *http.Client, url string, body []byte) *rpc.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rpc.Post(ctx, client, url, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

func TestPassIsByteIdentical(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{})
	for _, body := range [][]byte{
		rpc.Request(7, "eth_getBlockByNumber", "0x3", false),
		[]byte(`[{"jsonrpc":"2.0","id":"a","method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]}]`),
	} {
		direct := post(t, n.URL, body)
		via := post(t, p.URL(), body)
		if via.Status != direct.Status || string(via.Body) != string(direct.Body) {
			t.Errorf("via proxy %d %s\ndirect %d %s", via.Status, via.Body, direct.Status, direct.Body)
		}
	}
	if got := p.Count("eth_chainId"); got != 1 {
		t.Errorf("Count(eth_chainId) = %d, want 1", got)
	}
	if got := p.Forwarded("eth_blockNumber"); got != 1 {
		t.Errorf("Forwarded(eth_blockNumber) = %d, want 1", got)
	}
	if got := p.Requests(); got != 2 {
		t.Errorf("Requests() = %d, want 2", got)
	}
}

func TestFaults(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{})
	body := rpc.Request(1, "eth_getBalance", anvil.DevAddress, "latest")

	p.SetFault(HTTP500)
	if r := post(t, p.URL(), body); r.Status != 500 {
		t.Errorf("HTTP500: status %d", r.Status)
	}
	p.SetFault(HTTP429)
	if r := post(t, p.URL(), body); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP429: status %d, Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
	p.SetFault(NonJSON)
	if r := post(t, p.URL(), body); r.Status != 200 || json.Valid(r.Body) {
		t.Errorf("NonJSON: status %d body %s", r.Status, r.Body)
	}
	p.SetFault(Redirect)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r := post2(t, noFollow, p.URL(), body); r.Status != http.StatusTemporaryRedirect || r.Header.Get("Location") != "http://"+p.Addr()+RedirectPath || p.RedirectsFollowed() != 0 {
		t.Errorf("Redirect: status %d, Location %q, followed %d", r.Status, r.Header.Get("Location"), p.RedirectsFollowed())
	}
	if r := post(t, p.URL(), body); r.Status != 200 || !strings.Contains(string(r.Body), RedirectResult) || p.RedirectsFollowed() != 1 {
		t.Errorf("Redirect followed: status %d body %s, followed %d", r.Status, r.Body, p.RedirectsFollowed())
	}
	p.SetFault(HeaderNotFound)
	if r := post(t, p.URL(), body); r.Status != 200 || !strings.Contains(string(r.Body), "header not found") || !strings.Contains(string(r.Body), `"id":1`) {
		t.Errorf("HeaderNotFound: status %d body %s", r.Status, r.Body)
	}

	// A fault limited to one method leaves the others alone.
	p.SetFault(HTTP500, "eth_getBalance")
	if r := post(t, p.URL(), rpc.Request(1, "eth_chainId")); r.Status != 200 {
		t.Errorf("method-scoped fault hit eth_chainId: %d", r.Status)
	}
	if r := post(t, p.URL(), body); r.Status != 500 {
		t.Errorf("method-scoped fault missed eth_getBalance: %d", r.Status)
	}

	p.SetFault(Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := rpc.Post(ctx, nil, p.URL(), body)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hang: err %v, want deadline exceeded", err)
	}

	p.SetFault(Reset)
	if _, err := rpc.Post(context.Background(), &http.Client{Timeout: 5 * time.Second}, p.URL(), body); err == nil {
		t.Error("Reset: request succeeded")
	}

	addr := p.Addr()
	if err := p.SetFault(Refuse); err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Post(context.Background(), &http.Client{Timeout: 5 * time.Second}, p.URL(), body); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Refuse: err %v, want connection refused", err)
	}
	if err := p.SetFault(Pass); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Errorf("address changed across Refuse: %s → %s", addr, p.Addr())
	}
	if r := post(t, p.URL(), body); r.Status != 200 {
		t.Errorf("Pass after Refuse: %d %s", r.Status, r.Body)
	}
	// Received counts every eth_getBalance sent (500, 429, non-JSON, two
	// redirects, header not found, scoped 500, hang, reset, pass), the refused
	// one and the one at the redirect target excepted.
	if got, want := p.Count("eth_getBalance"), 10; got != want {
		t.Errorf("Count(eth_getBalance) = %d, want %d", got, want)
	}
	if got := p.Forwarded("eth_getBalance"); got != 1 {
		t.Errorf("Forwarded(eth_getBalance) = %d, want 1 (only the last passed)", got)
	}
}

func TestLagAndChainID(t *testing.T) {
	n := node(t) // head 20
	p := StartT(t, n.URL, Options{})
	p.SetHeightOffset(-5)
	p.SetChainID(99)
	ctx := context.Background()
	head, err := rpc.Call(ctx, nil, p.URL(), "eth_blockNumber")
	if err != nil || string(head) != `"0xf"` {
		t.Fatalf("lagging eth_blockNumber = %s, %v; want 0xf", head, err)
	}
	id, err := rpc.Call(ctx, nil, p.URL(), "eth_chainId")
	if err != nil || string(id) != `"0x63"` {
		t.Fatalf("eth_chainId = %s, %v; want 0x63", id, err)
	}
	var blk struct{ Number string }
	raw, err := rpc.Call(ctx, nil, p.URL(), "eth_getBlockByNumber", "latest", false)
	if err != nil || json.Unmarshal(raw, &blk) != nil || blk.Number != "0xf" {
		t.Fatalf("latest block via lagging proxy = %s, %v; want number 0xf", raw, err)
	}
	raw, err = rpc.Call(ctx, nil, p.URL(), "eth_getBlockByNumber", "0x12", false)
	if err != nil || string(raw) != "null" {
		t.Fatalf("block 0x12 via lagging proxy = %s, %v; want null", raw, err)
	}
	_, err = rpc.Call(ctx, nil, p.URL(), "eth_getBalance", anvil.DevAddress, "0x13")
	var rerr *rpc.Error
	if !errors.As(err, &rerr) || rerr.Message != "header not found" {
		t.Fatalf("balance at 0x13 via lagging proxy: %v; want header not found", err)
	}
	// A batch mixes a rewritten, a synthetic and a passed element, in order.
	r := post(t, p.URL(), []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]},`+
		`{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x14",false]},`+
		`{"jsonrpc":"2.0","id":3,"method":"net_version","params":[]}]`))
	ms, err := rpc.DecodeBatch(r.Body)
	if err != nil || len(ms) != 3 {
		t.Fatalf("batch: %v %s", err, r.Body)
	}
	if string(ms[0].ID) != "1" || string(ms[0].Result) != `"0xf"` || string(ms[1].Result) != "null" || string(ms[2].ID) != "3" || ms[2].Error != nil {
		t.Fatalf("batch answers wrong: %s", r.Body)
	}

	p.SetHeightOffset(+3)
	head, err = rpc.Call(ctx, nil, p.URL(), "eth_blockNumber")
	if err != nil || string(head) != `"0x17"` {
		t.Fatalf("leading eth_blockNumber = %s, %v; want 0x17", head, err)
	}
}

func TestPathAndQueryKey(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{Path: "/v2/KEY123", Query: "apikey=Q1", UserInfo: "u:pw"})
	if !strings.HasPrefix(p.URL(), "http://u:pw@127.0.0.1:") || !strings.HasSuffix(p.URL(), "/v2/KEY123?apikey=Q1") {
		t.Fatalf("URL() = %s", p.URL())
	}
	if r := post(t, p.URL(), rpc.Request(1, "eth_chainId")); r.Status != 200 {
		t.Errorf("with key: %d %s", r.Status, r.Body)
	}
	if r := post(t, "http://"+p.Addr()+"/v2/OTHER?apikey=Q1", rpc.Request(1, "eth_chainId")); r.Status != 401 {
		t.Errorf("wrong path key: %d", r.Status)
	}
	if r := post(t, "http://"+p.Addr()+"/v2/KEY123", rpc.Request(1, "eth_chainId")); r.Status != 401 {
		t.Errorf("missing query key: %d", r.Status)
	}
}

func TestDelay(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{})
	p.SetDelay(200 * time.Millisecond)
	start := time.Now()
	post(t, p.URL(), rpc.Request(1, "eth_chainId"))
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answer after %v, want at least the 200ms delay", d)
	}
}

// ResetNode puts a fresh anvil at block 0 with the same chain id behind the proxy; it stops with the proxy.
func TestResetNode(t *testing.T) {
	n := node(t) // chain id 777, at block 20
	p, err := New(n.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ResetNode(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, err := rpc.Call(ctx, nil, p.URL(), "eth_blockNumber")
	if err != nil || string(head) != `"0x0"` {
		t.Fatalf("eth_blockNumber after ResetNode = %s, %v; want 0x0", head, err)
	}
	id, err := rpc.Call(ctx, nil, p.URL(), "eth_chainId")
	if err != nil || string(id) != `"0x309"` {
		t.Fatalf("eth_chainId after ResetNode = %s, %v; want 0x309", id, err)
	}
	p.SetTarget(n.URL)
	if head, err = rpc.Call(ctx, nil, p.URL(), "eth_blockNumber"); err != nil || string(head) != `"0x14"` {
		t.Fatalf("eth_blockNumber after SetTarget back = %s, %v; want 0x14", head, err)
	}
}

// The issue-17 liar: every height 1,000 above the node's, and a transaction count for any block, the node not
// asked; in a batch as a health check sends it, by position.
func TestLiar(t *testing.T) {
	n := node(t) // head 20
	p := StartT(t, n.URL, Options{})
	p.SetHeightOffset(+1000)
	p.SetAnyBlock(true)
	r := post(t, p.URL(), []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]},`+
		`{"jsonrpc":"2.0","id":2,"method":"eth_getBlockTransactionCountByNumber","params":["0x3fc"]},`+
		`{"jsonrpc":"2.0","id":3,"method":"eth_chainId","params":[]}]`))
	ms, err := rpc.DecodeBatch(r.Body)
	if err != nil || len(ms) != 3 {
		t.Fatalf("batch: %v %s", err, r.Body)
	}
	if string(ms[0].Result) != `"0x3fc"` || string(ms[1].ID) != "2" || string(ms[1].Result) != `"0x0"` || string(ms[2].Result) != `"0x309"` {
		t.Fatalf("batch answers wrong: %s", r.Body)
	}
	if p.Forwarded("eth_getBlockTransactionCountByNumber") != 0 {
		t.Fatal("the block the liar claims was asked of the node")
	}
	raw, err := rpc.Call(context.Background(), nil, p.URL(), "eth_getBlockTransactionCountByNumber", "0x99999")
	if err != nil || string(raw) != `"0x0"` {
		t.Fatalf("alone: %s, %v", raw, err)
	}
}

// Poison passes requests without the marker; the first with it gets its connection reset and takes the proxy
// down: later connections are refused.
func TestPoison(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{})
	if err := p.SetPoison("5ca1ab1e"); err != nil {
		t.Fatal(err)
	}
	if r := post(t, p.URL(), rpc.Request(1, "eth_chainId")); r.Status != http.StatusOK {
		t.Fatalf("a request without the marker: %d %s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := rpc.Post(ctx, nil, p.URL(), rpc.Request(2, "eth_call", map[string]any{"data": "0x5ca1ab1e"}, "latest")); err == nil {
		t.Fatalf("the marked request was answered: %d %s", r.Status, r.Body)
	}
	if _, err := rpc.Post(ctx, nil, p.URL(), rpc.Request(3, "eth_chainId")); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("after the marked request: %v, want connection refused", err)
	}
	if p.Poisoned() != 1 {
		t.Errorf("Poisoned() = %d, want 1", p.Poisoned())
	}
}

// The answers of issue 18's kinds, to one call and to a batch of two.
func TestHostileAnswers(t *testing.T) {
	single := []element{{ID: json.RawMessage("7")}}
	two := []element{{ID: json.RawMessage("1")}, {ID: json.RawMessage(`"b"`)}}
	r := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0xbad"}` }
	for _, tc := range []struct {
		kind  Kind
		elems []element
		batch bool
		want  string
	}{
		{WrongID, single, false, r("999999")},
		{WrongID, two, true, "[" + r("424242") + "," + r("424243") + "]"},
		{ArrayForSingle, single, false, "[" + r("7") + "]"},
		{ObjectForBatch, two, true, r("1")},
		{ShortBatch, two, true, "[" + r("1") + "]"},
		{ShortBatch, single, false, "[]"},
		{LongBatch, two, true, "[" + r("1") + "," + r(`"b"`) + "," + r("424242") + "]"},
		{DupBatch, two, true, "[" + r("1") + "," + r("1") + "]"},
		{BadUTF8, single, false, `{"jsonrpc":"2.0","id":7,"result":"0x` + "\xff" + `"}`},
		{Deep, single, false, `{"jsonrpc":"2.0","id":7,"result":[[]]}`},
	} {
		if got := string(hostile(tc.kind, tc.elems, tc.batch, 3)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.kind, got, tc.want)
		}
	}
	if got := hostile(Deep, single, false, 10001); strings.Count(string(got), "[") != 10000 {
		t.Errorf("Deep 10,001: %d arrays", strings.Count(string(got), "["))
	}
}

func TestStatePruned(t *testing.T) {
	n := node(t) // head 20
	p := StartT(t, n.URL, Options{})
	p.SetStatePruned(10, "missing trie node abc (path )")
	ctx := context.Background()
	_, err := rpc.Call(ctx, nil, p.URL(), "eth_getBalance", anvil.DevAddress, "0x9")
	var rerr *rpc.Error
	if !errors.As(err, &rerr) || rerr.Code != -32000 || rerr.Message != "missing trie node abc (path )" {
		t.Fatalf("balance at 9, pruned below 10: %v", err)
	}
	for _, c := range []struct {
		method string
		params []any
	}{
		{"eth_getBalance", []any{anvil.DevAddress, "0xa"}},     // not below
		{"eth_getBalance", []any{anvil.DevAddress, "latest"}},  // a tag
		{"eth_getBlockByNumber", []any{"0x1", false}},          // history, not state
		{"eth_getBlockTransactionCountByNumber", []any{"0x1"}}, // history, not state
	} {
		if _, err := rpc.Call(ctx, nil, p.URL(), c.method, c.params...); err != nil {
			t.Errorf("%s %v: %v", c.method, c.params, err)
		}
	}
	p.SetStatePruned(0, "")
	if _, err := rpc.Call(ctx, nil, p.URL(), "eth_getBalance", anvil.DevAddress, "0x9"); err != nil {
		t.Fatalf("pruning off: %v", err)
	}
	// CountAt tells the reads at a block apart, whatever the proxy answered them.
	if got := [3]int{p.CountAt("eth_getBalance", "0x9"), p.CountAt("eth_getBalance", "0xa"), p.CountAt("eth_getBlockByNumber", "0x1")}; got != [3]int{2, 1, 1} {
		t.Errorf("CountAt 0x9, 0xa, eth_getBlockByNumber 0x1: %v, want 2, 1, 1", got)
	}
}

// AcceptReset hands the transaction to the node (mined: anvil automines) and resets the client's connection with
// no answer; a method it is not set for passes.
func TestAcceptReset(t *testing.T) {
	n := node(t)
	p := StartT(t, n.URL, Options{})
	if err := p.SetFault(AcceptReset, "eth_sendRawTransaction"); err != nil {
		t.Fatal(err)
	}
	key, err := crypto.HexToECDSA(anvil.DevKey)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000fa017")
	tx, err := types.SignTx(types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(20_000_000_000), Gas: 21000, To: &to,
		Value: big.NewInt(1)}), types.NewEIP155Signer(big.NewInt(777)), key)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.Post(ctx, nil, p.URL(), rpc.Request(1, "eth_sendRawTransaction", hexutil.Encode(raw)))
	if err == nil {
		t.Fatalf("the client got an answer: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("the client saw %v, want a reset connection", err)
	}
	rc, err := rpc.Call(ctx, nil, n.URL, "eth_getTransactionByHash", tx.Hash().Hex())
	if err != nil || string(rc) == "null" {
		t.Errorf("the node does not have the transaction: %s, %v", rc, err)
	}
	if p.Count("eth_sendRawTransaction") != 1 || p.Forwarded("eth_sendRawTransaction") != 1 {
		t.Errorf("received %d, forwarded %d; want 1 and 1", p.Count("eth_sendRawTransaction"), p.Forwarded("eth_sendRawTransaction"))
	}
	if r := post(t, p.URL(), rpc.Request(2, "eth_chainId")); r.Status != http.StatusOK {
		t.Errorf("eth_chainId under AcceptReset for another method: %d %s", r.Status, r.Body)
	}
}

// SetLogsLimit: a range over the cap is refused in the provider's words without asking the node; an answer over
// the results cap is replaced by the results refusal with its hint; anything else is the node's bytes.
func TestLogsLimit(t *testing.T) {
	n := node(t) // head 20
	ctx := context.Background()
	const emitter = "0x00000000000000000000000000000000000e2e20"
	if _, err := n.Call(ctx, "anvil_setCode", emitter, anvil.LogsCode); err != nil {
		t.Fatal(err)
	}
	// Blocks 21 (3 logs) and 22 (2 logs), each mined by hand: with automine, anvil mines a sent transaction after
	// answering it, so the second block could still be missing when the logs are read (seen once in make test).
	if _, err := n.Call(ctx, "evm_setAutomine", false); err != nil {
		t.Fatal(err)
	}
	for _, count := range []int{3, 2} {
		data := "0x" + strings.Repeat("0", 62) + "0" + string(rune('0'+count))
		if _, err := n.Call(ctx, "eth_sendTransaction", map[string]string{"from": anvil.DevAddress, "to": emitter, "data": data, "gas": "0x100000"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Mine(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	p := StartT(t, n.URL, Options{})
	logs := func(from, to string) []byte {
		return rpc.Request(1, "eth_getLogs", map[string]string{"fromBlock": from, "toBlock": to})
	}
	direct := post(t, n.URL, logs("0x15", "0x16"))
	if m, err := rpc.Decode(direct.Body); err != nil || strings.Count(string(m.Result), `"logIndex"`) != 5 {
		t.Fatalf("the node's 5 logs: %s", direct.Body)
	}
	errOf := func(body []byte) *rpc.Error {
		m, err := rpc.Decode(body)
		if err != nil || m.Error == nil {
			t.Fatalf("want an error: %s", body)
		}
		return m.Error
	}
	p.SetLogsLimit(LogsLimit{Range: 5, Results: 4, RangeWords: GethWords, ResultsWords: AlchemyWords})
	if e := errOf(post(t, p.URL(), logs("0x1", "0x6")).Body); e.Code != -32000 || e.Message != "exceed maximum block range: 5" {
		t.Errorf("6 blocks, cap 5: %+v", e)
	}
	if p.Forwarded("eth_getLogs") != 0 {
		t.Errorf("a range over the cap reached the node")
	}
	e := errOf(post(t, p.URL(), logs("0x12", "0x16")).Body)
	if e.Code != -32602 || !strings.HasPrefix(e.Message, "Log response size exceeded. You can make eth_getLogs requests with up to a 5 block range") ||
		!strings.HasSuffix(e.Message, "this block range should work: [0x12, 0x15]") {
		t.Errorf("5 logs, cap 4: %+v", e)
	}
	for _, w := range []struct {
		words Words
		code  int
		msg   string
	}{
		{InfuraWords, -32005, "query returned more than 2 results. Try with this block range [0x15, 0x15]."},
		{RethWords, -32602, "query exceeds max results 2, retry with the range 21-21"},
		{ErigonWords, -32000, "too many logs, limit is 2, please narrow your filter"},
	} {
		p.SetLogsLimit(LogsLimit{Results: 2, ResultsWords: w.words})
		if e := errOf(post(t, p.URL(), logs("0x15", "0x16")).Body); e.Code != w.code || e.Message != w.msg {
			t.Errorf("%s: %+v, want %d %q", w.words, e, w.code, w.msg)
		}
	}
	for _, w := range []struct {
		words Words
		code  int
		msg   string
	}{
		{AlchemyWords, -32600, "Under the Free tier plan, you can make eth_getLogs requests with up to a 3 block range. Based on your parameters, this block range should work: [0x2, 0x4]. Upgrade to PAYG for expanded block range."},
		{RethWords, -32602, "query exceeds max block range 3"},
		{DRPCWords, -32000, "ranges over 3 blocks are not supported on freetier"},
	} {
		p.SetLogsLimit(LogsLimit{Range: 3, RangeWords: w.words})
		if e := errOf(post(t, p.URL(), logs("0x2", "0x5")).Body); e.Code != w.code || e.Message != w.msg {
			t.Errorf("%s: %+v, want %d %q", w.words, e, w.code, w.msg)
		}
	}
	if r, a := p.LogsRefused(); r != 4 || a != 4 {
		t.Errorf("refused by range %d, by results %d; want 4 and 4", r, a)
	}
	// Within the caps, a tag, a batch: the node's bytes.
	p.SetLogsLimit(LogsLimit{Range: 5, Results: 5, RangeWords: GethWords, ResultsWords: InfuraWords})
	for _, body := range [][]byte{logs("0x15", "0x16"), logs("0x1", "latest"),
		[]byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x16"}]}]`)} {
		if got, want := post(t, p.URL(), body), post(t, n.URL, body); !bytes.Equal(got.Body, want.Body) {
			t.Errorf("%s: %s, want the node's %s", body, rpc.Trunc(got.Body, 200), rpc.Trunc(want.Body, 200))
		}
	}
	if c := p.Count("eth_getLogs"); c != 11 {
		t.Errorf("Count(eth_getLogs) = %d, want 11", c)
	}
}
