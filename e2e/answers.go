package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
	"github.com/evmlb/evmlb/e2e/internal/target"
)

// badAnswerScenarios are issue 18's: an upstream whose answers do not answer the calls sent, per shape, and one
// whose answers nest 9,000, 10,000 and 10,001 deep.
func badAnswerScenarios() []Scenario {
	var sc []Scenario
	for _, k := range []faultproxy.Kind{faultproxy.WrongID, faultproxy.ArrayForSingle, faultproxy.ObjectForBatch,
		faultproxy.ShortBatch, faultproxy.LongBatch, faultproxy.DupBatch, faultproxy.BadUTF8} {
		sc = append(sc, Scenario{"bad-answer-" + k.String(), 18, func(s *S) { scBadAnswer(s, k, 0) }})
	}
	for _, depth := range []int{9000, 10000, 10001} {
		sc = append(sc, Scenario{fmt.Sprintf("deep-answer-%d", depth), 18, func(s *S) { scBadAnswer(s, faultproxy.Deep, depth) }})
	}
	return sc
}

// answerCheck says what is wrong with an answer to a request of ids (raw JSON, one for a single call), "" when
// nothing: 200, valid JSON in UTF-8, a JSON-RPC 2.0 response per id with that id, each id once, and, unless
// badOK, no element of the fault proxy's own (faultproxy.BadResult).
func answerCheck(r *rpc.Response, ids []string, batch, badOK bool) string {
	if r.Status != http.StatusOK || !json.Valid(r.Body) || !utf8.Valid(r.Body) {
		return fmt.Sprintf("status %d, valid JSON %v", r.Status, json.Valid(r.Body))
	}
	var elems []map[string]json.RawMessage
	if batch {
		if json.Unmarshal(r.Body, &elems) != nil {
			return "a batch not answered by an array of objects"
		}
	} else {
		var m map[string]json.RawMessage
		if json.Unmarshal(r.Body, &m) != nil {
			return "a single call not answered by an object"
		}
		elems = append(elems, m)
	}
	if len(elems) != len(ids) {
		return fmt.Sprintf("%d answers for %d calls", len(elems), len(ids))
	}
	seen := map[string]bool{}
	for _, e := range elems {
		_, res := e["result"]
		_, rpcErr := e["error"]
		if string(e["jsonrpc"]) != `"2.0"` || res == rpcErr {
			return "not a JSON-RPC 2.0 response: " + rpc.Trunc(r.Body, 200)
		}
		id := string(e["id"])
		if seen[id] || !strings.Contains(strings.Join(ids, " "), id) || id == "" {
			return "id " + id + " is not one of the client's, or comes twice"
		}
		seen[id] = true
		if !badOK && string(e["result"]) == faultproxy.BadResult {
			return "the faulty upstream's answer passed on"
		}
	}
	return ""
}

// Issue 18: upstream "bad" (the higher, so tried first) answers eth_getBalance with kind (and a depth for Deep)
// beside a good one. Every client gets a valid JSON-RPC answer with its own ids within the request timeout: the
// good upstream's when bad's answer does not answer the calls (it is never passed on), bad's own when it does (an
// answer nested 10,000 deep is valid JSON-RPC). With both faulty, a clear JSON-RPC error (-32070) with the
// client's ids. The host's output never says "Maximum call stack", nothing throws through Go, and after 100 deep
// answers the runtimes' memory_bytes has not grown.
func scBadAnswer(s *S, kind faultproxy.Kind, depth int) {
	n := s.Node(31337, 10)
	bad, ubad := s.Upstream(n, "ethereum", "bad")
	good, ugood := s.Upstream(n, "ethereum", "good")
	good.SetHeightOffset(-2) // bad is the higher: tried first
	// The cache off: each phase sends the same reads again, and each must reach the upstreams (issue 19).
	b := s.StartConfig(target.Config{Upstreams: []target.Upstream{ubad, ugood}, Chains: `{"ethereum":{"cache":false}}`})
	b.waitHead("ethereum", "0xa")
	bad.SetAnswerDepth(depth)
	s.must(bad.SetFault(kind, "eth_getBalance") == nil, "SetFault")
	call := func(id string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_getBalance","params":["` + anvil.DevAddress + `","latest"]}`
	}
	single := []byte(call("7"))
	batch := []byte("[" + call("1") + "," + call("2") + "," + call(`"3"`) + "]")
	// Which of bad's answers are good JSON-RPC answers to the calls: those it may pass on.
	valid := func(isBatch bool) bool {
		switch kind {
		case faultproxy.ObjectForBatch, faultproxy.DupBatch:
			return !isBatch // one call: an object with its own id
		case faultproxy.ArrayForSingle:
			return isBatch // a batch's answer is an array
		case faultproxy.Deep:
			return depth <= 10000
		}
		return false
	}
	post := func(body []byte, ids []string, isBatch, badOK bool, what string) {
		s.Helper()
		start := time.Now()
		r := b.Post("ethereum", body)
		if took := time.Since(start); took > 30*time.Second {
			s.Errorf("%s: answered after %v", what, took)
		}
		if p := answerCheck(r, ids, isBatch, badOK); p != "" {
			s.Errorf("%s: %s\n%d %s", what, p, r.Status, rpc.Trunc(r.Body, 300))
		}
	}
	post(single, []string{"7"}, false, valid(false), "one call")
	post(batch, []string{"1", "2", `"3"`}, true, valid(true), "a batch")
	s.must(bad.Count("eth_getBalance") >= 1, "the faulty upstream was never tried")
	if kind == faultproxy.Deep && depth == 9000 {
		// memory_bytes stays flat over 100 such answers (workerd's isolate grew past 128 MB over 25).
		// After 100 to warm up (Go's heap grows to its working size: measured, 8.9 → 11.7 MB over the first 120,
		// then flat over 400 more), 100 more grow less than one heap arena of Go's wasm port (4 MiB).
		deep := func(n int) {
			for range n {
				if r := b.Post("ethereum", single); r.Status != http.StatusOK {
					s.Fatalf("deep answer: %d %s", r.Status, rpc.Trunc(r.Body, 300))
				}
			}
		}
		deep(100)
		before := maxMemory(runtimes(s, b))
		deep(100)
		after := maxMemory(runtimes(s, b))
		s.Logf("memory_bytes: %d before 100 answers nested %d deep, %d after", before, depth, after)
		if after >= before+4<<20 {
			s.Errorf("memory_bytes %d before 100 answers nested %d deep, %d after", before, depth, after)
		}
	}
	// Only faulty upstreams: a clear error, the client's ids.
	good.SetAnswerDepth(depth)
	s.must(good.SetFault(kind, "eth_getBalance") == nil, "SetFault")
	for _, c := range []struct {
		body    []byte
		isBatch bool
		ids     []string
	}{{single, false, []string{"7"}}, {batch, true, []string{"1", "2", `"3"`}}} {
		if valid(c.isBatch) {
			continue
		}
		r := b.Post("ethereum", c.body)
		ok := r.Status == http.StatusServiceUnavailable && bytes.Contains(r.Body, []byte("-32070"))
		for _, id := range c.ids {
			ok = ok && bytes.Contains(r.Body, []byte(`"id":`+id+`,`))
		}
		if !ok {
			s.Errorf("with no good upstream (batch %v): %d %s, want 503 -32070 with the client's ids", c.isBatch, r.Status, rpc.Trunc(r.Body, 300))
		}
	}
	logs := b.Inst.Logs()
	for _, f := range []string{"Maximum call stack", "threw", "Uncaught", "protocol violation"} {
		if strings.Contains(logs, f) {
			s.Errorf("the host's output says %q:\n%s", f, tail(logs, 3000))
		}
	}
}

func maxMemory(rts map[time.Time]runtimeSeen) uint64 {
	var m uint64
	for _, r := range rts {
		m = max(m, r.memory)
	}
	return m
}
