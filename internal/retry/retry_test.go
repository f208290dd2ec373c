package retry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The classes of single answers and whole batches, as the data plane reads them.
func TestAnswerClasses(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Class
	}{
		{`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, OK},
		{`{"jsonrpc":"2.0","id":1,"result":null}`, OK},
		{`  [{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":3,"message":"execution reverted"}}]`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted: nope","data":"0x08c379a0"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid argument 0"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}`, MissingData},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"missing trie node 1234 (path )"}}`, MissingData},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"query returned more than 10000 results"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Daily request count exceeded"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method foo does not exist/is not available"}}`, Unsupported},
		{`<html>502 Bad Gateway</html>`, NonJSON},
		{``, NonJSON},
		{`{"jsonrpc":"2.0","id":1,"res`, NonJSON},
		{`"hello"`, NonJSON},
		{`{"hello":1}`, NonJSON},
		{`[{"jsonrpc":"2.0","id":1,"result":"0x1"}, 5]`, NonJSON},
	} {
		if got := Answer([]byte(tc.body)); got != tc.want {
			t.Errorf("Answer(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	for status, want := range map[int]Class{200: OK, 204: OK, 429: HTTP429, 500: HTTP5xx, 503: HTTP5xx, 401: HTTPOther, 404: HTTPOther, 301: HTTPRedirect, 302: HTTPRedirect, 307: HTTPRedirect, 308: HTTPRedirect, 304: HTTPRedirect, 199: HTTPOther, 400: HTTPOther} {
		if got := HTTPStatus(status); got != want {
			t.Errorf("HTTPStatus(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestTransport(t *testing.T) {
	for _, tc := range []struct {
		err      error
		timedOut bool
		want     Class
	}{
		{nil, false, OK},
		{nil, true, Timeout},
		{errors.New(`Post "http://127.0.0.1:1/key": dial tcp 127.0.0.1:1: connect: connection refused`), false, Refused},
		{errors.New(`dial tcp: lookup nowhere.invalid: no such host`), false, Refused},
		{errors.New(`read tcp 127.0.0.1:5->127.0.0.1:6: read: connection reset by peer`), false, Network},
		{errors.New(`net/http: fetch() failed: Network connection lost.`), false, Network},
		{fmt.Errorf("wrapped: %w", errors.New("context deadline exceeded")), false, Timeout},
	} {
		if got := Transport(tc.err, tc.timedOut); got != tc.want {
			t.Errorf("Transport(%v, %v) = %q, want %q", tc.err, tc.timedOut, got, tc.want)
		}
	}
}

func TestRetryableNeverResendsWrites(t *testing.T) {
	for _, row := range Table {
		read := Retryable("eth_call", row.Class)
		write := Retryable("eth_sendRawTransaction", row.Class)
		if read != row.NextUpstream {
			t.Errorf("%q: read retry %v, table says %v", row.Class, read, row.NextUpstream)
		}
		if write != (row.NextUpstream && row.WriteSafe) {
			t.Errorf("%q: write retry %v", row.Class, write)
		}
		if write && row.Class != Refused {
			t.Errorf("%q: a write is re-sent although the request may have reached the upstream", row.Class)
		}
	}
	if Retryable("eth_call", OK) || Retryable("eth_sendRawTransaction", Timeout) || !Retryable("eth_sendRawTransaction", Refused) {
		t.Fatal("basic retry policy broken")
	}
	if got := Lookup("no-such-class"); got.Class != Network {
		t.Fatalf("unknown class looks up as %q, want network", got.Class)
	}
}

func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Class
	}{
		{"single result", `{"jsonrpc":"2.0","id":1,"result":"0x1"}`, OK},
		{"single missing data", `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}`, MissingData},
		{"single revert is an answer", `{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}`, OK},
		{"batch all ok", `[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":3,"message":"execution reverted"}}]`, OK},
		{"batch with one missing-data element", ` [{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"missing trie node abc"}}]`, MissingData},
		{"batch: the first retry element's class", `[{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"limit exceeded"}},{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"header not found"}}]`, Overloaded},
		{"empty batch", `[]`, OK},
		{"non-JSON", `<html>bad gateway</html>`, NonJSON},
		{"truncated batch", `[{"jsonrpc":"2.0","id":1,"result":"0x1"}`, NonJSON},
	} {
		if got := Answer([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: Answer = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkAnswer classifies an 8 MB answer (a large eth_getLogs), single and as one element of a batch.
//
//	go test ./internal/retry -run - -bench Answer -benchmem
func BenchmarkAnswer(b *testing.B) {
	single := []byte(`{"jsonrpc":"2.0","id":1,"result":"0x` + strings.Repeat("ab", 4<<20) + `"}`)
	batch := append(append([]byte("["), single...), []byte(`,{"jsonrpc":"2.0","id":2,"result":"0x1"}]`)...)
	for _, tc := range []struct {
		name string
		body []byte
	}{{"single-8MB", single}, {"batch-8MB", batch}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if c := Answer(tc.body); c != OK {
					b.Fatal(c)
				}
			}
		})
	}
}

// Every class the balancer uses has its row: nothing falls back to Lookup's default by accident.
func TestEveryClassHasARow(t *testing.T) {
	for _, c := range []Class{OK, Refused, Network, Timeout, HTTP5xx, HTTP429, HTTPRedirect, HTTPOther, NonJSON,
		MissingData, Overloaded, Unsupported, WrongChain, TooLarge, Canceled, NoAttempt, HealthRPCError, HealthBadResult} {
		if _, ok := byClass[c]; !ok {
			t.Errorf("class %q has no row in Table", c)
		}
	}
	// One client's oversized answer must not count against the upstreams (it could open every breaker).
	if Lookup(TooLarge).Penalise || !Lookup(TooLarge).NextUpstream {
		t.Errorf("too_large: %+v", Lookup(TooLarge))
	}
	if r := Lookup(Canceled); r.Penalise || r.NextUpstream {
		t.Errorf("canceled: %+v", r)
	}
}

// referenceAnswer is Answer as encoding/json reads an answer: the whole body decoded, members matched exactly
// (after unescaping), the last of duplicates winning.
func referenceAnswer(body []byte) Class {
	if !json.Valid(body) {
		return NonJSON
	}
	elem := func(raw json.RawMessage) Class {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return NonJSON
		}
		var mm members
		if v, ok := m["jsonrpc"]; ok {
			mm.jsonrpc = v
		}
		if v, ok := m["result"]; ok {
			mm.result = v
		}
		if v, ok := m["error"]; ok {
			mm.err = v
		}
		return classify(mm)
	}
	b := bytes.TrimSpace(body)
	switch b[0] {
	case '{':
		return elem(b)
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(b, &elems) != nil {
			return NonJSON
		}
		class := OK
		for _, e := range elems {
			c := elem(e)
			if c == NonJSON {
				return NonJSON
			}
			if class == OK && Lookup(c).NextUpstream {
				class = c
			}
		}
		return class
	}
	return NonJSON
}

// FuzzAnswer: the one-pass scanner accepts exactly what json.Valid accepts, and Answer classifies as a full
// encoding/json decode would.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, `[{"error":{"code":-32005,"message":"x"}}]`,
		`{"jsonrpc":"2.0","error":null,"result":{"error":1}}`, `{"\u0065rror":{"code":-32000,"message":"header not found"}}`,
		`[1,{"result":[]},"x"]`, `{"result":-0.5e+3,"a":[true,false,null,{}]}`, `{"result":"\ud83c\udf89\n"}`, `<html>`, `[]`, ` {} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _, ok := scanAnswer(b)
		if ok != json.Valid(b) {
			t.Fatalf("scanAnswer ok=%v, json.Valid %v: %q", ok, json.Valid(b), b)
		}
		if got, want := Answer(b), referenceAnswer(b); got != want {
			t.Fatalf("Answer %q, encoding/json reads %q: %q", got, want, b)
		}
	})
}

// Traces names the calls a dropped connection can be blamed on (the trace families, any case; not eth_call).
func TestTraces(t *testing.T) {
	for m, want := range map[string]bool{
		"eth_call": false, "eth_estimateGas": false, "debug_traceCall": true, "DEBUG_traceTransaction": true,
		"trace_block": true, "eth_simulateV1": false, "eth_getBalance": false, "eth_blockNumber": false, "debug_": false,
		"eth_getLogs": false, "eth_sendRawTransaction": false, "debug": false, "": false,
	} {
		if got := Traces(m); got != want {
			t.Errorf("Traces(%q) = %v, want %v", m, got, want)
		}
	}
}
