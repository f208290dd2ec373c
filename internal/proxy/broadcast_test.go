package proxy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// signedTx is EIP-155's example of a signed legacy transaction.
const signedTx = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"

const sendTx = `{"jsonrpc":"2.0","id":7,"method":"eth_sendRawTransaction","params":["` + signedTx + `"]}`

// txHashOf is the hash of signedTx.
func txHashOf(t *testing.T) string {
	raw, err := hex.DecodeString(signedTx[2:])
	if err != nil {
		t.Fatal(err)
	}
	return TxHash(raw)
}

// TestTxHash: keccak-256 (the legacy padding, not SHA3-256), as 0x and lower-case hex.
func TestTxHash(t *testing.T) {
	for in, want := range map[string]string{
		"":    "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
		"abc": "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
	} {
		if got := TxHash([]byte(in)); got != want {
			t.Errorf("TxHash(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestDecodeRawTx: only a 0x-hex string holding what has a transaction's shape is broadcast.
func TestDecodeRawTx(t *testing.T) {
	for params, want := range map[string]bool{
		`["` + signedTx + `"]`: true,
		`["0x02f8"]`:           true, // a typed transaction's start: type 2, then an RLP list
		`["0xc0"]`:             true,
		`["0x00"]`:             false, // no list
		`["0x02"]`:             false,
		`["0x80c0"]`:           false, // 0x80 is no type byte
		`["0xf8z"]`:            false,
		`["f86c"]`:             false,
		`[]`:                   false,
		`[1]`:                  false,
		`{}`:                   false,
	} {
		if _, got := decodeRawTx(json.RawMessage(params)); got != want {
			t.Errorf("decodeRawTx(%s) = %v, want %v", params, got, want)
		}
	}
}

// txNode is how a fake node answers eth_sendRawTransaction (and eth_getTransactionByHash), counting the sends.
type txNode struct {
	sends atomic.Int64
	// send is the answer's member after the id: `"result":"0x…"` or `"error":{…}`.
	send string
	// found is the hash of the transaction eth_getTransactionByHash finds ("": none, null). A node answers the one
	// asked; one that answers another is wrong.
	found string
}

func (n *txNode) answer(hash string) func([]byte) []byte {
	return func(body []byte) []byte {
		if body[0] == '[' { // a batch (of reads: a raw transaction is taken out of it and broadcast alone)
			var calls []struct{ ID json.RawMessage }
			_ = json.Unmarshal(body, &calls)
			var elems []string
			for _, c := range calls {
				elems = append(elems, `{"jsonrpc":"2.0","id":`+string(c.ID)+`,"result":"0x1"}`)
			}
			return []byte("[" + strings.Join(elems, ",") + "]")
		}
		var c struct {
			ID     json.RawMessage
			Method string
		}
		_ = json.Unmarshal(body, &c)
		member := `"result":null`
		switch c.Method {
		case "eth_sendRawTransaction":
			n.sends.Add(1)
			member = n.send
		case "eth_getTransactionByHash":
			if n.found != "" {
				member = `"result":{"hash":"` + strings.ToUpper(n.found[:10]) + n.found[10:] + `","nonce":"0x9"}`
			}
		}
		return []byte(`{"jsonrpc":"2.0","id":` + string(c.ID) + `,` + member + `}`)
	}
}

func rpcError(code int, message string) string {
	return fmt.Sprintf(`"error":{"code":%d,"message":%q}`, code, message)
}

// TestBroadcast: a raw transaction goes at once to every upstream in rotation, each exactly once; the client gets
// its hash at the first that takes it ("already known", and "nonce too low" only when the upstream then finds the
// transaction by its hash, count so); an upstream that answers another hash is at fault; with none taking it, the
// transaction's own error, else the balancer's.
func TestBroadcast(t *testing.T) {
	hash := txHashOf(t)
	accept := `"result":"` + hash + `"`
	const (
		refused = "refused" // the upstream's URL refuses connections
		drop    = "drop"    // the node drops the connection once it has the request
	)
	for _, tc := range []struct {
		name    string
		chain   string
		nodes   map[string]string // node → refused, drop, or its answer's member (default: accept)
		found   string            // nodes whose eth_getTransactionByHash finds the transaction
		other   string            // nodes whose eth_getTransactionByHash finds another one
		status  int
		result  string // the hash answered, or
		code    int    // the error answered
		sends   string // eth_sendRawTransaction each node received
		results string // evmlb_broadcast_total's results
		classes string // the outcomes reported of each upstream
	}{
		{name: "one down, one dropped after accepting, one already known",
			nodes:  map[string]string{"a": refused, "b": drop, "c": rpcError(-32000, "already known")},
			status: 200, result: hash, sends: "a=0 b=1 c=1", results: "a:failed b:failed c:known"},
		{name: "every upstream accepts", status: 200, result: hash, sends: "a=1 b=1 c=1", results: "a:accepted b:accepted c:accepted"},
		{name: "known transaction and already imported are taken",
			nodes:  map[string]string{"a": rpcError(-32000, "known transaction: "+hash[2:]), "b": rpcError(-32010, "Transaction with the same hash was already imported."), "c": drop},
			status: 200, result: hash, sends: "a=1 b=1 c=1", results: "a:known b:known c:failed"},
		{name: "another hash is the upstream's fault, never answered",
			nodes:  map[string]string{"a": `"result":"0x` + strings.Repeat("ab", 32) + `"`, "b": refused, "c": drop},
			status: 502, code: jsonrpc.ErrUpstreamFailed.Code, sends: "a=1 b=0 c=1", results: "a:wrong_hash b:failed c:failed"},
		{name: "another hash beside one that takes it",
			nodes:  map[string]string{"a": `"result":"0x` + strings.Repeat("ab", 32) + `"`, "b": rpcError(-32000, "insufficient funds for gas * price + value"), "c": rpcError(-32000, "AlreadyKnown")},
			status: 200, result: hash, sends: "a=1 b=1 c=1", results: "a:wrong_hash b:rejected c:known"},
		{name: "nonce too low for this transaction is taken",
			nodes: map[string]string{"a": rpcError(-32000, "nonce too low"), "b": refused, "c": refused}, found: "a",
			status: 200, result: hash, sends: "a=1 b=0 c=0", results: "a:known b:failed c:failed"},
		{name: "nonce too low for another transaction is the answer",
			nodes:  map[string]string{"a": rpcError(-32000, "nonce too low"), "b": rpcError(-32000, "nonce too low"), "c": refused},
			status: 200, code: -32000, sends: "a=1 b=1 c=0", results: "a:rejected b:rejected c:failed"},
		{name: "nonce too low and a lookup answering another transaction is the answer",
			nodes: map[string]string{"a": rpcError(-32000, "nonce too low"), "b": refused, "c": refused}, other: "a",
			status: 200, code: -32000, sends: "a=1 b=0 c=0", results: "a:rejected b:failed c:failed"},
		{name: "replacement underpriced is not taken",
			nodes:  map[string]string{"a": rpcError(-32000, "replacement transaction underpriced"), "b": refused, "c": drop},
			status: 200, code: -32000, sends: "a=1 b=0 c=1", results: "a:rejected b:failed c:failed"},
		{name: "every upstream down", nodes: map[string]string{"a": refused, "b": refused, "c": refused},
			status: 503, code: jsonrpc.ErrNoUpstream.Code, sends: "a=0 b=0 c=0", results: "a:failed b:failed c:failed"},
		{name: "broadcast_writes false sends to one", chain: `"broadcast_writes": false`,
			status: 200, result: hash, sends: "a=1 b=0 c=0", results: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var down []string
			for n, b := range tc.nodes {
				if b == refused {
					down = append(down, n)
				}
			}
			r := newRig(t, tc.chain, down...)
			txs := map[string]*txNode{}
			for _, n := range []string{"a", "b", "c"} {
				tn := &txNode{send: accept}
				switch {
				case strings.Contains(tc.found, n):
					tn.found = hash
				case strings.Contains(tc.other, n):
					tn.found = "0x" + strings.Repeat("ef", 32)
				}
				switch b := tc.nodes[n]; b {
				case "", refused:
				case drop:
					r.nodes[n].SetDrop(false, "eth_sendRawTransaction")
				default:
					tn.send = b
				}
				txs[n] = tn
				r.nodes[n].SetRawAnswer(tn.answer(hash))
			}
			status, body := r.serve(sendTx)
			r.host.Wait() // the attempts still running when the answer was written
			var a struct {
				ID     json.RawMessage
				Result string
				Error  struct{ Code int }
			}
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatalf("%v in %s", err, body)
			}
			if status != tc.status || a.Result != tc.result || a.Error.Code != tc.code || string(a.ID) != "7" {
				t.Errorf("answer %d %s, want %d with %q (error %d), id 7", status, body, tc.status, tc.result, tc.code)
			}
			var sends []string
			for _, n := range []string{"a", "b", "c"} {
				k := txs[n].sends.Load()
				for _, m := range r.nodes[n].Methods() { // dropped requests are counted there
					if m == "eth_sendRawTransaction" {
						k++
					}
				}
				sends = append(sends, fmt.Sprintf("%s=%d", n, k))
			}
			if got := strings.Join(sends, " "); got != tc.sends {
				t.Errorf("sends %s, want %s", got, tc.sends)
			}
			ex := r.report()
			var results []string
			for _, n := range []string{"a", "b", "c"} {
				for res, k := range ex.Metrics.Broadcast[n] {
					for range k {
						results = append(results, n+":"+res)
					}
				}
			}
			if got := strings.Join(results, " "); got != tc.results {
				t.Errorf("results %q, want %q", got, tc.results)
			}
		})
	}
}

// TestBroadcastWrongHashCounts: an upstream that answers another hash is reported with the class wrong_hash (it
// counts against it), and one that takes the transaction as ok.
func TestBroadcastWrongHashCounts(t *testing.T) {
	hash := txHashOf(t)
	r := newRig(t, "")
	for n, send := range map[string]string{"a": `"result":"0x` + strings.Repeat("cd", 32) + `"`, "b": `"result":"` + strings.ToUpper(hash) + `"`, "c": `"result":"` + hash + `"`} {
		tn := &txNode{send: send}
		r.nodes[n].SetRawAnswer(tn.answer(hash))
	}
	status, body := r.serve(sendTx)
	r.host.Wait()
	if status != http.StatusOK || !strings.Contains(body, hash) {
		t.Fatalf("answer %d %s", status, body)
	}
	got := map[string]string{}
	for _, o := range r.report().Outcomes {
		got[o.Upstream] = string(o.Class)
	}
	if got["a"] != "wrong_hash" || got["b"] != "" || got["c"] != "" || len(got) != 3 {
		t.Errorf("outcomes %v, want a wrong_hash, b and c ok", got)
	}
}

// TestBroadcastAnswersAtOnce: the client gets the hash at the first upstream that takes it, while another still
// hangs; the same transaction sent again is sent again (a write is never cached nor shared), with the cache's
// header saying skip.
func TestBroadcastAnswersAtOnce(t *testing.T) {
	hash := txHashOf(t)
	r := newRig(t, "")
	r.nodes["a"].SetFault(evmtest.Hang)
	var sends [3]*txNode
	for i, n := range []string{"a", "b", "c"} {
		sends[i] = &txNode{send: `"result":"` + hash + `"`}
		r.nodes[n].SetRawAnswer(sends[i].answer(hash))
	}
	for i := range 2 {
		done := make(chan string, 1)
		var header string
		go func() {
			req, _ := jsonrpc.Parse([]byte(sendTx), 100)
			rec := httptest.NewRecorder()
			r.plane.Serve(context.Background(), rec, "eth", req, []byte(sendTx))
			header = rec.Header().Get(CacheHeader)
			done <- rec.Body.String()
		}()
		select {
		case body := <-done:
			if !strings.Contains(body, `"result":"`+hash+`"`) || header != "skip" {
				t.Fatalf("send %d: answer %s, cache header %q", i, body, header)
			}
		case <-time.After(10 * time.Second): // a bound on failure, not a wait for success
			t.Fatalf("send %d: no answer while an upstream hangs", i)
		}
	}
	// Sent again, not answered from a cache (the attempts that lost the race may still be on their way: a hangs, so
	// the host's background work does not end; TestBroadcast counts every send exactly).
	waitFor(t, "both sends at b and c", func() bool { return sends[1].sends.Load() == 2 && sends[2].sends.Load() == 2 })
}

// TestBroadcastInBatch: a batch's raw transaction is taken out of it and broadcast (each upstream once), its answer
// put back in place; the other calls go as a batch, as before.
func TestBroadcastInBatch(t *testing.T) {
	hash := txHashOf(t)
	r := newRig(t, "")
	txs := map[string]*txNode{"a": {send: `"result":"` + hash + `"`}, "b": {send: rpcError(-32000, "already known")}, "c": {send: `"result":"` + hash + `"`}}
	for n, tn := range txs {
		r.nodes[n].SetRawAnswer(tn.answer(hash))
	}
	r.nodes["c"].SetDrop(false, "eth_sendRawTransaction")
	batch := `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x0"},"latest"]},` + sendTx + `]`
	status, body := r.serve(batch)
	r.host.Wait()
	want := `[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":7,"result":"` + hash + `"}]`
	if status != http.StatusOK || body != want {
		t.Errorf("answer %d %s, want %s", status, body, want)
	}
	drops := 0
	for _, m := range r.nodes["c"].Methods() {
		if m == "eth_sendRawTransaction" {
			drops++
		}
	}
	if a, b := txs["a"].sends.Load(), txs["b"].sends.Load(); a != 1 || b != 1 || drops != 1 {
		t.Errorf("sends a=%d b=%d c=%d, want 1 each", a, b, drops)
	}
}

// TestBroadcastHostile: what hostile upstreams answer to a broadcast, and to the lookup after "nonce too low". The
// hash in another case or without 0x is the hash; a result that is not a string naming it (a number, an object,
// null, an array, "0x", nesting past what the balancer reads) is the upstream's fault; an answer over the response
// bound is a failure. A lookup proves the transaction taken only with an answer to that call (its id) whose result
// is an object holding that hash; anything else (a string, no hash, a hash that is no string, another id, an error,
// deep nesting, over the bound) proves nothing. Only a, the first upstream, answers; b and c are down.
func TestBroadcastHostile(t *testing.T) {
	hash := txHashOf(t)
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300) // past jsonrpc.MaxDepth, within retry.MaxAnswerDepth
	big := `"0x` + strings.Repeat("ab", 4<<10) + `"`            // over the 4 KiB response bound set below
	nonceLow := `{"jsonrpc":"2.0","id":$ID,` + rpcError(-32000, "nonce too low") + `}`
	answer := func(member string) string { return `{"jsonrpc":"2.0","id":$ID,` + member + `}` }
	for _, tc := range []struct {
		name, send, lookup string // whole answers, $ID the call's id
		result             string // a's evmlb_broadcast_total result
		status             int
	}{
		{"hash in upper case with 0X", answer(`"result":"0X` + strings.ToUpper(hash[2:]) + `"`), "", "accepted", 200},
		{"hash without 0x", answer(`"result":"` + hash[2:] + `"`), "", "accepted", 200},
		{"hash without 0x in upper case", answer(`"result":"` + strings.ToUpper(hash[2:]) + `"`), "", "accepted", 200},
		{"result a number", answer(`"result":123`), "", "wrong_hash", 502},
		{"result an object holding the hash", answer(`"result":{"hash":"` + hash + `"}`), "", "wrong_hash", 502},
		{"result null", answer(`"result":null`), "", "wrong_hash", 502},
		{"result an array of the hash", answer(`"result":["` + hash + `"]`), "", "wrong_hash", 502},
		{"result 0x", answer(`"result":"0x"`), "", "wrong_hash", 502},
		{"result the hash twice over", answer(`"result":"` + hash + hash[2:] + `"`), "", "wrong_hash", 502},
		{"result nested 300 deep", answer(`"result":` + deep), "", "wrong_hash", 502},
		{"error with data nested 300 deep", answer(`"error":{"code":-32000,"message":"already known","data":` + deep + `}`), "", "wrong_hash", 502},
		{"answer over the response bound", answer(`"result":` + big), "", "failed", 502},
		{"lookup finds it", nonceLow, answer(`"result":{"hash":"` + hash + `"}`), "known", 200},
		{"lookup finds it, hash without 0x", nonceLow, answer(`"result":{"hash":"` + hash[2:] + `"}`), "known", 200},
		{"lookup result a string", nonceLow, answer(`"result":"` + hash + `"`), "rejected", 200},
		{"lookup result without hash", nonceLow, answer(`"result":{"nonce":"0x9"}`), "rejected", 200},
		{"lookup hash a number", nonceLow, answer(`"result":{"hash":1}`), "rejected", 200},
		{"lookup answer to another id", nonceLow, `{"jsonrpc":"2.0","id":2,"result":{"hash":"` + hash + `"}}`, "rejected", 200},
		{"lookup answer not JSON-RPC", nonceLow, `{"id":$ID,"result":{"hash":"` + hash + `"}}`, "rejected", 200},
		{"lookup an error", nonceLow, answer(rpcError(-32000, hash)), "rejected", 200},
		{"lookup nested 300 deep", nonceLow, answer(`"result":{"hash":"` + hash + `","x":` + deep + `}`), "rejected", 200},
		{"lookup over the response bound", nonceLow, answer(`"result":{"hash":"` + hash + `","input":` + big + `}`), "rejected", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "", "b", "c")
			s := r.settings
			s.MaxResponseBytes = 4 << 10
			r.settings, r.plane = s, New(r.host.Platform(), r.cfg, s)
			var sends atomic.Int64
			r.nodes["a"].SetRawAnswer(func(body []byte) []byte {
				var c struct {
					ID     json.RawMessage
					Method string
				}
				_ = json.Unmarshal(body, &c)
				out := answer(`"result":null`)
				switch c.Method {
				case "eth_sendRawTransaction":
					sends.Add(1)
					out = tc.send
				case "eth_getTransactionByHash":
					if tc.lookup != "" {
						out = tc.lookup
					}
				}
				return []byte(strings.ReplaceAll(out, "$ID", string(c.ID)))
			})
			status, body := r.serve(sendTx)
			r.host.Wait()
			var got []string
			for res, k := range r.report().Metrics.Broadcast["a"] {
				got = append(got, fmt.Sprintf("%s×%d", res, k))
			}
			if status != tc.status || strings.Join(got, " ") != tc.result+"×1" || sends.Load() != 1 {
				t.Errorf("answer %d %.200s, a's result %v, sends %d; want %d, %s×1, 1 send", status, body, got, sends.Load(), tc.status, tc.result)
			}
			if status == 200 && tc.result != "rejected" && !strings.Contains(body, `"result":"`+hash+`"`) {
				t.Errorf("answer %.200s, want the hash %s", body, hash)
			}
		})
	}
}
