package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/logsplit"
	"github.com/evmlb/evmlb/internal/retry"
)

// logsOf is the fake chain's logs over s as one node prints them: two logs in every block not a multiple of 3.
func logsOf(s logsplit.Span) string {
	var parts []string
	for b := s.From; b <= s.To; b++ {
		if b%3 == 0 {
			continue
		}
		for i := range uint64(2) {
			parts = append(parts, fmt.Sprintf(`{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0x%064x"],"data":"0x","blockNumber":"0x%x","logIndex":"0x%x","removed":false}`, b*2+i, b, i))
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// logsNode answers eth_getLogs over a range of numbers from logsOf, refusing (with code and the text message
// made by refuse) a range of more than maxRange blocks or more than maxLogs logs (0: no cap). It records the
// ranges asked.
type logsNode struct {
	maxRange, maxLogs uint64
	narrowBelow       uint64 // a range starting below this block and over 4 blocks is refused too
	emptyFrom         uint64 // when set, blocks from this one on hold no logs
	code              int
	refuse            func(s logsplit.Span) string
	mu                sync.Mutex
	asked             []logsplit.Span
}

func (n *logsNode) answer(body []byte) []byte {
	var c struct {
		ID     json.RawMessage
		Params json.RawMessage
	}
	_ = json.Unmarshal(body, &c)
	s, ok := logsplit.Range(c.Params)
	if !ok {
		return []byte(`{"jsonrpc":"2.0","id":` + string(c.ID) + `,"error":{"code":-32602,"message":"bad range"}}`)
	}
	n.mu.Lock()
	n.asked = append(n.asked, s)
	n.mu.Unlock()
	logs := logsOf(s)
	if n.emptyFrom > 0 && s.From >= n.emptyFrom {
		logs = "[]"
	}
	if n.maxRange > 0 && s.Len() > n.maxRange || s.From < n.narrowBelow && s.Len() > 4 || n.maxLogs > 0 && uint64(strings.Count(logs, `"blockNumber"`)) > n.maxLogs {
		msg, _ := json.Marshal(n.refuse(s))
		return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%s}}`, c.ID, n.code, msg))
	}
	return []byte(`{"jsonrpc":"2.0","id":` + string(c.ID) + `,"result":` + logs + `}`)
}

func (n *logsNode) calls() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.asked)
}

// logsRig is a rig whose nodes answer eth_getLogs as ns do; upstreamJSON adds fields to each upstreams entry,
// chainJSON to the chain's (whose cache is off), or is "cached": the cache on, the chain's finalized block 90.
func logsRig(t *testing.T, ns map[string]*logsNode, upstreamJSON map[string]string, chainJSON string) *rig {
	r := newRig(t, noCache(""))
	var ups []string
	for _, name := range []string{"a", "b", "c"} {
		r.nodes[name].SetRawAnswer(ns[name].answer)
		extra := upstreamJSON[name]
		if extra != "" {
			extra = "," + extra
		}
		ups = append(ups, fmt.Sprintf(`{"chain":"eth","name":%q,"upstream":%q%s}`, name, r.nodes[name].URL, extra))
	}
	chain := `"cache":false` + chainJSON // chainJSON: more fields, each after a comma
	if chainJSON == "cached" {
		chain = ""
	}
	cfg, err := config.Parse(`{"chains":{"eth":{` + chain + `}},"upstreams":[` + strings.Join(ups, ",") + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	r.plane = New(r.host.Platform(), cfg, r.settings)
	if chainJSON == "cached" {
		r.obj.finalized, r.obj.epoch = 90, 1
		r.serveCtx(context.Background(), `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`)
	}
	return r
}

func getLogs(from, to string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"eth_getLogs","params":[{"fromBlock":"` + from + `","toBlock":"` + to + `","address":"0x5fbdb2315678afecb367f032d93f642f64180aa3"}]}`
}

func wholeAnswer(s logsplit.Span) string {
	return `{"jsonrpc":"2.0","id":7,"result":` + logsOf(s) + `}`
}

// An upstream that never refused and has no limit gets the range whole: no split.
func TestLogsWholeWhenNoLimit(t *testing.T) {
	ns := map[string]*logsNode{"a": {}, "b": {}, "c": {}}
	r := logsRig(t, ns, nil, "")
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.200s", status, body)
	}
	if ns["a"].calls()+ns["b"].calls()+ns["c"].calls() != 1 {
		t.Fatalf("asked %v %v %v: want one whole call", ns["a"].asked, ns["b"].asked, ns["c"].asked)
	}
}

// Each upstream refusing in another provider's words: the range is split as they teach, and the merged answer
// is byte for byte the whole range's.
func TestLogsSplitOnRefusals(t *testing.T) {
	ns := map[string]*logsNode{
		"a": {maxRange: 10, code: -32602, refuse: func(logsplit.Span) string { return "eth_getLogs is limited to a 10 range" }},
		"b": {maxRange: 20, code: -32000, refuse: func(logsplit.Span) string { return "exceed maximum block range: 20" }},
		"c": {maxLogs: 30, code: -32005, refuse: func(logsplit.Span) string { return "query returned more than 30 results" }},
	}
	r := logsRig(t, ns, nil, "")
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.300s", status, body)
	}
	for _, name := range []string{"a", "b", "c"} {
		if ns[name].calls() == 0 {
			t.Fatalf("%s asked nothing: the pieces go to every upstream in rotation", name)
		}
	}
	if w := r.plane.LogsWidths("eth")["a"]; w != 10 {
		t.Fatalf("learned widths %v, want a=10", r.plane.LogsWidths("eth"))
	}
	// A refusal is an answer, not the upstream's failure: no outcome of the report blames an upstream.
	ex := r.report()
	if got := outcomes(ex); strings.Contains(got, "overloaded") || strings.Contains(got, "unsupported") {
		t.Fatalf("outcomes %s", got)
	}
	// One request split; its pieces are every call but the refused whole one.
	pieces := ns["a"].calls() + ns["b"].calls() + ns["c"].calls() - 1
	if m := ex.Metrics; m == nil || m.LogsSplits != 1 || m.LogsPieces != uint64(pieces) {
		t.Fatalf("metrics %+v, want 1 split and %d pieces", m, pieces)
	}
	// The next request is cut at once to the width learned: no whole-range call is refused again.
	before := ns["a"].calls() + ns["b"].calls() + ns["c"].calls()
	status, body = r.serve(getLogs("0x0", "0x5f"))
	after := ns["a"].calls() + ns["b"].calls() + ns["c"].calls()
	if status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) || after-before != 10 {
		t.Fatalf("second request: %d calls, want 10 pieces of 10; %d %.200s", after-before, status, body)
	}
}

// A configured max_logs_range splits before anything is refused.
func TestLogsConfiguredRange(t *testing.T) {
	ns := map[string]*logsNode{"a": {}, "b": {}, "c": {}}
	r := logsRig(t, ns, map[string]string{"a": `"max_logs_range":16`}, "")
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.200s", status, body)
	}
	for _, name := range []string{"a", "b", "c"} {
		for _, s := range ns[name].asked {
			if s.Len() > 16 {
				t.Fatalf("%s asked %v, over max_logs_range 16", name, s)
			}
		}
	}
	if got := ns["a"].calls() + ns["b"].calls() + ns["c"].calls(); got != 6 {
		t.Fatalf("%d calls, want 6", got)
	}
}

// A merged answer over EVMLB_MAX_RESPONSE_BYTES is refused with -32074, and so is one block still refused.
func TestLogsBounds(t *testing.T) {
	refuse := func(logsplit.Span) string { return "block range too large" }
	ns := map[string]*logsNode{"a": {maxRange: 8, refuse: refuse}, "b": {maxRange: 8, refuse: refuse}, "c": {maxRange: 8, refuse: refuse}}
	r := logsRig(t, ns, nil, `,"logs_max_answer_bytes":4096`)
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if _, code := answer(t, body); status != 413 || code != -32074 {
		t.Fatalf("%d %s: want 413 -32074", status, body)
	}
	// logs_max_range bounds only a range that must be split: one no upstream caps goes whole.
	ns = map[string]*logsNode{"a": {maxRange: 8, refuse: refuse}, "b": {}, "c": {}}
	r = logsRig(t, ns, nil, `,"logs_max_range":50`)
	status, body = r.serve(getLogs("0x0", "0x5f"))
	if _, code := answer(t, body); status != 413 || code != -32074 || !strings.Contains(body, "logs_max_range") {
		t.Fatalf("%d %s: want 413 -32074 naming logs_max_range", status, body)
	}
	ns = map[string]*logsNode{"a": {}, "b": {}, "c": {}}
	r = logsRig(t, ns, nil, `,"logs_max_range":50`)
	if status, body = r.serve(getLogs("0x0", "0x5f")); status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.200s: want the whole answer", status, body)
	}
	ns = map[string]*logsNode{}
	for _, n := range []string{"a", "b", "c"} {
		ns[n] = &logsNode{maxLogs: 1, code: -32005, refuse: func(logsplit.Span) string { return "query returned more than 1 results" }}
	}
	r = logsRig(t, ns, nil, "")
	status, body = r.serve(getLogs("0x1", "0x4"))
	if !strings.Contains(body, "query returned more than 1 results") {
		t.Fatalf("%d %s: want the one block's refusal", status, body)
	}
}

// A range at a tag is sent as it is, never split, and its refusal reaches the client as today.
func TestLogsTagsNotSplit(t *testing.T) {
	ns := map[string]*logsNode{}
	for _, n := range []string{"a", "b", "c"} {
		ns[n] = &logsNode{maxRange: 1}
	}
	r := logsRig(t, ns, map[string]string{"a": `"max_logs_range":1`, "b": `"max_logs_range":1`, "c": `"max_logs_range":1`}, "")
	_, body := r.serve(getLogs("0x0", "latest"))
	if !strings.Contains(body, "bad range") || r.calls() != "a=1 b=0 c=0" {
		t.Fatalf("%s %s: want one call, whole", body, r.calls())
	}
}

// A refusal under a code retry reads as the upstream's failure (Infura's -32005, "not supported") is an answer to
// split, never a failure held against the upstream.
func TestLogsRefusalNotAFailure(t *testing.T) {
	ns := map[string]*logsNode{}
	for _, n := range []string{"a", "b", "c"} {
		ns[n] = &logsNode{maxLogs: 30, code: -32005, refuse: func(logsplit.Span) string { return "query returned more than 30 results" }}
	}
	ns["b"] = &logsNode{maxRange: 12, code: -32000, refuse: func(logsplit.Span) string { return "ranges over 12 blocks are not supported" }}
	r := logsRig(t, ns, nil, "")
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.300s", status, body)
	}
	if got := outcomes(r.report()); strings.Contains(got, "overloaded") || strings.Contains(got, "unsupported") {
		t.Fatalf("outcomes %s", got)
	}
}

// The cache sees the client's call only: a split answer over finalized blocks is stored whole under its key and
// answered again from the cache, no piece asked again; the pieces are never stored on their own.
func TestLogsSplitCached(t *testing.T) {
	refuse := func(logsplit.Span) string { return "exceed maximum block range: 10" }
	ns := map[string]*logsNode{"a": {maxRange: 10, refuse: refuse}, "b": {maxRange: 10, refuse: refuse}, "c": {maxRange: 10, refuse: refuse}}
	r := logsRig(t, ns, nil, "cached")
	first := r.serveCtx(context.Background(), getLogs("0x0", "0x4f"))
	if first.status != 200 || first.body != wholeAnswer(logsplit.Span{From: 0, To: 79}) || first.cache != "miss" {
		t.Fatalf("%d %s %.200s", first.status, first.cache, first.body)
	}
	calls := r.totalCalls()
	again := r.serveCtx(context.Background(), getLogs("0x0", "0x4f"))
	if again.body != first.body || again.cache != "hit" || r.totalCalls() != calls {
		t.Fatalf("again: %s, %d more calls", again.cache, r.totalCalls()-calls)
	}
	piece := r.serveCtx(context.Background(), getLogs("0x0", "0x9"))
	if piece.cache == "hit" {
		t.Fatal("a piece was stored on its own")
	}
}

// Results in ahead of their turn (the pieces before them refused and cut again) count against
// logs_max_answer_bytes with the merged bytes: the request ends as soon as they are over it, not after every piece.
func TestLogsAheadBounded(t *testing.T) {
	refuse := func(logsplit.Span) string { return "block range too large" }
	ns := map[string]*logsNode{}
	ups := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		ns[n] = &logsNode{narrowBelow: 16, refuse: refuse}
		ups[n] = `"max_logs_range":16`
	}
	r := logsRig(t, ns, ups, `,"logs_max_answer_bytes":8000`)
	status, body := r.serve(getLogs("0x0", "0x5f"))
	if _, code := answer(t, body); status != 413 || code != -32074 {
		t.Fatalf("%d %s: want 413 -32074", status, body)
	}
	if got := ns["a"].calls() + ns["b"].calls() + ns["c"].calls(); got != 4 {
		t.Fatalf("%d calls, want the first round's 4 only", got)
	}
}

// TestLogsRefusalTeachesNoLack: a provider's refusal of a too-wide eth_getLogs is about the request, not the
// node: no row of logsplit's table may read as a lack of the method or of state (retry.LackIn), or one indexer's
// wide range would keep eth_getLogs away from that upstream for capability_ttl.
func TestLogsRefusalTeachesNoLack(t *testing.T) {
	for _, r := range logsplit.Refusals {
		if l := retry.LackIn("eth_getLogs", r.Code, r.Example); l != retry.NoLack {
			t.Errorf("refusal %q reads as lack %q", r.Example, l)
		}
	}
}

// A results refusal teaches nothing of a width in blocks: the logs per block are the filter's and the range's, not
// the upstream's. After a dense range was split on "query returned more than 30 results", a wide range holding no
// logs goes whole, one call (a width learned from the dense range would cut it into thousands of pieces).
func TestLogsResultsRefusalNotLearned(t *testing.T) {
	ns := map[string]*logsNode{}
	for _, n := range []string{"a", "b", "c"} {
		ns[n] = &logsNode{maxLogs: 30, emptyFrom: 1000, code: -32005, refuse: func(logsplit.Span) string { return "query returned more than 30 results" }}
	}
	r := logsRig(t, ns, nil, "")
	if status, body := r.serve(getLogs("0x0", "0x5f")); status != 200 || body != wholeAnswer(logsplit.Span{From: 0, To: 95}) {
		t.Fatalf("%d %.300s", status, body)
	}
	before := ns["a"].calls() + ns["b"].calls() + ns["c"].calls()
	status, body := r.serve(getLogs("0x3e8", "0x1869f")) // blocks 1,000 to 99,999: no logs
	after := ns["a"].calls() + ns["b"].calls() + ns["c"].calls()
	if status != 200 || body != `{"jsonrpc":"2.0","id":7,"result":[]}` || after-before != 1 {
		t.Fatalf("a wide empty range after a dense one: %d calls, want 1; %d %.200s", after-before, status, body)
	}
}
