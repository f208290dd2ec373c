package retry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// ids is a list of raw ids; "" stands for a notification.
func ids(raw ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(raw))
	for i, r := range raw {
		if r != "" {
			out[i] = json.RawMessage(r)
		}
	}
	return out
}

var one = Expect{IDs: ids("1")}

// The classes of single answers, as the data plane reads them.
func TestAnswerClasses(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Class
	}{
		{`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, OK},
		{`{"jsonrpc":"2.0","id":1,"result":null}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted: nope","data":"0x08c379a0"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid argument 0"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}`, MissingData},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"missing trie node 1234 (path )"}}`, MissingData},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"query returned more than 10000 results"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Daily request count exceeded"}}`, Overloaded},
		// Providers' refusals for their plans' limits, as they word them.
		{`{"jsonrpc":"2.0","id":1,"error":{"code":429,"message":"Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message. If not, check out https://docs.alchemy.com/reference/throughput"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32007,"message":"10/second request limit reached - reduce calls per second or upgrade your account at quicknode.com"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"project ID request rate exceeded"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"You have exceeded your monthly quota"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"request throttled, retry later"}}`, Overloaded},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Too many requests, reason: call rate limit exhausted, retry in 10s"}}`, Overloaded},
		// The caller's own errors that sound alike stay answers.
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"max code size exceeded"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"too many arguments, want at most 1"}}`, OK},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method foo does not exist/is not available"}}`, Unsupported},
		{`<html>502 Bad Gateway</html>`, NonJSON},
		{``, NonJSON},
		{`{"jsonrpc":"2.0","id":1,"res`, NonJSON},
		{`"hello"`, NonJSON},
		{`{"hello":1}`, NonJSON},
	} {
		if got := Answer([]byte(tc.body), one); got != tc.want {
			t.Errorf("Answer(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// deep is a result nested n arrays deep.
func deep(n int) string {
	return `{"jsonrpc":"2.0","id":1,"result":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
}

// Issue 18: every answer is validated against the calls sent, before it is used. Each shape a probe found passed
// on, and each rule of a JSON-RPC 2.0 response.
func TestAnswerValidated(t *testing.T) {
	three := Expect{Batch: true, IDs: ids("1", "2", "3")}
	r := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"result":"0x1"}` }
	for _, tc := range []struct {
		name string
		body string
		want Expect
		c    Class
	}{
		{"the call's id", r("7"), Expect{IDs: ids("7")}, OK},
		{"another id", r("999999"), Expect{IDs: ids("7")}, BadAnswer},
		{"an array for one call", `[` + r("1") + `]`, one, BadAnswer},
		{"an object for a batch", r("1"), three, BadAnswer},
		{"a batch", `[` + r("2") + `,` + r("3") + `,` + r("1") + `]`, three, OK},
		{"a batch answer missing an element", `[` + r("1") + `,` + r("2") + `]`, three, BadAnswer},
		{"an extra element", `[` + r("1") + `,` + r("2") + `,` + r("3") + `,` + r("424242") + `]`, three, BadAnswer},
		{"three elements all id 1", `[` + r("1") + `,` + r("1") + `,` + r("1") + `]`, three, BadAnswer},
		{"an empty array for a batch", `[]`, three, BadAnswer},
		{"a batch of one", `[` + r("1") + `]`, Expect{Batch: true, IDs: ids("1")}, OK},
		{"a batch of one, another id", `[` + r("2") + `]`, Expect{Batch: true, IDs: ids("1")}, BadAnswer},
		{"a client's ids twice, answered twice", `[` + r("1") + `,` + r("1") + `]`, Expect{Batch: true, IDs: ids("1", "1")}, OK},
		{"notifications answered with null ids", `[` + r("null") + `,` + r("1") + `]`, Expect{Batch: true, IDs: ids("", "1")}, OK},
		{"more null ids than notifications", `[` + r("null") + `,` + r("null") + `,` + r("1") + `]`, Expect{Batch: true, IDs: ids("", "1")}, BadAnswer},
		{"a notification answered", r("null"), Expect{IDs: ids("")}, OK},
		{"a notification answered with an id", r("1"), Expect{IDs: ids("")}, BadAnswer},
		{"a null id for a call with an id", r("null"), one, BadAnswer},
		{"an error with a null id for a call with an id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid id"}}`, one, OK},
		{"a missing-data error with a null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"header not found"}}`, one, MissingData},
		{"an error with a null id in a batch", `[` + r("1") + `,{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid id"}}]`, Expect{Batch: true, IDs: ids("1", "2")}, BadAnswer},
		{"invalid UTF-8", `{"jsonrpc":"2.0","id":1,"result":"` + "\xff" + `"}`, one, NonJSON},
		{"a UTF-8 surrogate", `{"jsonrpc":"2.0","id":1,"result":"` + "\xed\xa0\x80" + `"}`, one, NonJSON},
		{"a lone surrogate escape", `{"jsonrpc":"2.0","id":1,"result":"\ud800"}`, one, NonJSON},
		{"a lone low surrogate escape", `{"jsonrpc":"2.0","id":1,"result":"\udc00x"}`, one, NonJSON},
		{"a surrogate pair", `{"jsonrpc":"2.0","id":1,"result":"\ud83c\udf89 é"}`, one, OK},
		{"a control character", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\t\"}", one, NonJSON},
		{"nested 9,000 deep", deep(9000), one, OK},
		{"nested 10,000 deep", deep(MaxAnswerDepth), one, OK},
		{"nested 10,001 deep", deep(MaxAnswerDepth + 1), one, NonJSON},
		{"no jsonrpc", `{"id":1,"result":"0x1"}`, one, NonJSON},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"result":"0x1"}`, one, NonJSON},
		{"jsonrpc escaped", `{"jsonrpc":"\u0032.0","id":1,"result":"0x1"}`, one, OK},
		{"no id", `{"jsonrpc":"2.0","result":"0x1"}`, one, NonJSON},
		{"an object id", `{"jsonrpc":"2.0","id":{},"result":"0x1"}`, one, NonJSON},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":"0x1","error":{"code":1,"message":"x"}}`, one, NonJSON},
		{"result and a null error", `{"jsonrpc":"2.0","id":1,"result":"0x1","error":null}`, one, OK},
		{"neither result nor error", `{"jsonrpc":"2.0","id":1}`, one, NonJSON},
		{"a null error alone", `{"jsonrpc":"2.0","id":1,"error":null}`, one, NonJSON},
		{"an error that is a string", `{"jsonrpc":"2.0","id":1,"error":"header not found"}`, one, NonJSON},
		{"an error without a code", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, one, NonJSON},
		{"an error with a fractional code", `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}`, one, NonJSON},
		{"an id twice", `{"jsonrpc":"2.0","id":1,"id":2,"result":"0x1"}`, one, NonJSON},
		{"a result twice", `{"jsonrpc":"2.0","id":1,"result":"0x1","result":"0x2"}`, one, NonJSON},
		{"a Result beside result", `{"jsonrpc":"2.0","id":1,"result":"0x1","Result":"0x2"}`, one, NonJSON},
		{"ID for id", `{"jsonrpc":"2.0","ID":1,"result":"0x1"}`, one, NonJSON},
		{"a batch element that is not an object", `[` + r("1") + `, 5]`, Expect{Batch: true, IDs: ids("1", "2")}, NonJSON},
		{"a number for a batch", `5`, three, NonJSON},
		{"1.0 for 1", r("1.0"), one, OK},
		{"10e-1 for 1", r("10e-1"), one, OK},
		{`"1" for 1`, r(`"1"`), one, BadAnswer},
		{`1 for "1"`, r("1"), Expect{IDs: ids(`"1"`)}, BadAnswer},
		{`"1" for "1"`, r(`"1"`), Expect{IDs: ids(`"1"`)}, OK},
		{`"a" for "A"`, r(`"a"`), Expect{IDs: ids(`"A"`)}, BadAnswer},
		{"-0 for 0", r("-0"), Expect{IDs: ids("0")}, OK},
		{"100 for 1e2", r("100"), Expect{IDs: ids("1e2")}, OK},
		{"-1 for 1", r("-1"), one, BadAnswer},
		{"2 for 1", r("2"), one, BadAnswer},
		{"a large id", r("123456789012345678901234567890"), Expect{IDs: ids("123456789012345678901234567890")}, OK},
		{"a large id off by one", r("123456789012345678901234567891"), Expect{IDs: ids("123456789012345678901234567890")}, BadAnswer},
		{"missing data in a batch", `[` + r("1") + `,{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"header not found"}}]`, Expect{Batch: true, IDs: ids("1", "2")}, MissingData},
		{"missing data in a short batch", `[{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"header not found"}}]`, Expect{Batch: true, IDs: ids("1", "2")}, BadAnswer},
	} {
		got, nullIDError := AnswerOf([]byte(tc.body), tc.want)
		if got != tc.c {
			t.Errorf("%s: Answer = %q, want %q", tc.name, got, tc.c)
		}
		if want := strings.Contains(tc.name, "error with a null id") && !tc.want.Batch; nullIDError != want {
			t.Errorf("%s: null-id error %v, want %v", tc.name, nullIDError, want)
		}
	}
}

// The scanner holds no recursion: an answer nested to the bound costs no more stack than a flat one (checked
// natively here; in workerd a recursive scanner overflowed V8's stack near 9,000, e2e's deep-answer scenarios).
func TestScanAnswerDepthBound(t *testing.T) {
	for _, n := range []int{1, 2, MaxAnswerDepth - 1, MaxAnswerDepth} {
		if _, _, _, ok := scanAnswer([]byte(strings.Repeat("[", n) + strings.Repeat("]", n))); !ok {
			t.Errorf("arrays %d deep refused", n)
		}
		if _, _, _, ok := scanAnswer([]byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))); !ok {
			t.Errorf("objects %d deep refused", n)
		}
	}
	for _, n := range []int{MaxAnswerDepth + 1, 100000} {
		if _, _, _, ok := scanAnswer([]byte(strings.Repeat("[", n) + strings.Repeat("]", n))); ok {
			t.Errorf("arrays %d deep accepted", n)
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
		if write && row.Class != Refused && row.Class != OverBudget { // OverBudget: never sent
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
		{"non-JSON", `<html>bad gateway</html>`, NonJSON},
		{"truncated batch", `[{"jsonrpc":"2.0","id":1,"result":"0x1"}`, NonJSON},
	} {
		want := one
		if strings.HasPrefix(strings.TrimSpace(tc.body), "[") {
			want = Expect{Batch: true, IDs: ids("1", "2")}
		}
		if got := Answer([]byte(tc.body), want); got != tc.want {
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
				want := one
				if tc.body[0] == '[' {
					want = Expect{Batch: true, IDs: ids("1", "2")}
				}
				if c := Answer(tc.body, want); c != OK {
					b.Fatal(c)
				}
			}
		})
	}
}

// Every class the balancer uses has its row: nothing falls back to Lookup's default by accident.
func TestEveryClassHasARow(t *testing.T) {
	for _, c := range []Class{OK, Refused, Network, Timeout, HTTP5xx, HTTP429, HTTPRedirect, HTTPOther, NonJSON, BadAnswer,
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

// referenceAnswer is Answer as encoding/json reads an answer: validity from json.Valid, utf8.Valid and a plain
// walk for escapes of lone surrogates; each response decoded into a map, its keys listed with a json.Decoder; ids
// compared as big.Rat values or decoded strings.
func referenceAnswer(body []byte, want Expect) Class {
	if !json.Valid(body) || !utf8.Valid(body) || loneSurrogate(body) {
		return NonJSON
	}
	elem := func(raw json.RawMessage) (Class, json.RawMessage, bool) {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return NonJSON, nil, false
		}
		for _, k := range topKeys(raw) {
			if (strings.EqualFold(k, "jsonrpc") || strings.EqualFold(k, "id") || strings.EqualFold(k, "result") ||
				strings.EqualFold(k, "error")) && (m[strings.ToLower(k)] == nil || k != strings.ToLower(k)) {
				return NonJSON, nil, false // "ID", "Result": only under case folding
			}
		}
		if len(topKeys(raw)) != len(m) {
			return NonJSON, nil, false // a key twice
		}
		var v string
		id := m["id"]
		if json.Unmarshal(m["jsonrpc"], &v) != nil || v != "2.0" || id == nil || id[0] == '{' || id[0] == '[' || id[0] == 't' || id[0] == 'f' {
			return NonJSON, nil, false
		}
		e, hasErr := m["error"]
		hasErr = hasErr && string(e) != "null"
		_, hasResult := m["result"]
		if hasErr == hasResult {
			return NonJSON, nil, false
		}
		if !hasErr {
			return OK, id, false
		}
		var rpc map[string]json.RawMessage
		var code int64
		var msg string
		if json.Unmarshal(e, &rpc) != nil || rpc == nil || json.Unmarshal(rpc["code"], &code) != nil || rpc["message"] == nil ||
			rpc["message"][0] != '"' || json.Unmarshal(rpc["message"], &msg) != nil {
			return NonJSON, nil, false
		}
		return RPCError(code, msg), id, true
	}
	b := bytes.TrimSpace(body)
	if !want.Batch {
		if b[0] == '[' {
			return BadAnswer
		}
		c, id, isErr := elem(b)
		if c == NonJSON {
			return NonJSON
		}
		w := json.RawMessage("null")
		if len(want.IDs) == 1 && want.IDs[0] != nil {
			w = want.IDs[0]
		}
		if !sameValue(w, id) && !(isErr && string(id) == "null") { // an error for an id the node could not read
			return BadAnswer
		}
		return c
	}
	switch b[0] {
	case '{':
		return BadAnswer
	case '[':
	default:
		return NonJSON
	}
	var elems []json.RawMessage
	if json.Unmarshal(b, &elems) != nil {
		return NonJSON
	}
	class := OK
	var got []json.RawMessage
	for _, e := range elems {
		c, id, _ := elem(e)
		if c == NonJSON {
			return NonJSON
		}
		got = append(got, id)
		if class == OK && Lookup(c).NextUpstream {
			class = c
		}
	}
	// Each call with an id takes one element of an equal id; what is left may only be null ids, one per
	// notification.
	used := make([]bool, len(got))
	notes := 0
	for _, w := range want.IDs {
		if w == nil {
			notes++
			continue
		}
		found := false
		for j, g := range got {
			if !used[j] && sameValue(w, g) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			return BadAnswer
		}
	}
	for j, g := range got {
		if !used[j] {
			if string(g) != "null" || notes == 0 {
				return BadAnswer
			}
			notes--
		}
	}
	return class
}

// sameValue compares two JSON ids: numbers as big.Rat, strings decoded, null as null.
func sameValue(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	switch {
	case a[0] == 'n' || b[0] == 'n':
		return string(a) == "null" && string(b) == "null"
	case a[0] == '"' || b[0] == '"':
		var x, y string
		return a[0] == '"' && b[0] == '"' && json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && x == y
	}
	x, okx := new(big.Rat).SetString(string(a))
	y, oky := new(big.Rat).SetString(string(b))
	if !okx || !oky {
		return string(a) == string(b)
	}
	return x.Cmp(y) == 0
}

// topKeys lists the keys of the JSON object raw, in order, duplicates included.
func topKeys(raw []byte) []string {
	d := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	depth := 0
	expectKey := false
	for {
		tok, err := d.Token()
		if err != nil {
			return keys
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
			} else {
				depth--
			}
			// Inside the object, after its '{' or a member's value that closed: a key comes next.
			expectKey = depth == 1
			continue
		case string:
			if depth == 1 && expectKey {
				keys = append(keys, t)
				expectKey = false
				continue
			}
		}
		if depth == 1 {
			expectKey = true
		}
	}
}

// loneSurrogate reports whether the valid JSON b has, in a string, an escape of a UTF-16 surrogate that is not a
// high one followed by an escaped low one.
func loneSurrogate(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch {
		case !in:
			in = b[i] == '"'
		case b[i] == '"':
			in = false
		case b[i] == '\\' && b[i+1] == 'u':
			r, _ := strconv.ParseUint(string(b[i+2:i+6]), 16, 32)
			i += 5
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return true
			case r >= 0xd800 && r <= 0xdbff:
				if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return true
				}
				r2, _ := strconv.ParseUint(string(b[i+3:i+7]), 16, 32)
				if r2 < 0xdc00 || r2 > 0xdfff {
					return true
				}
				i += 6
			}
		case b[i] == '\\':
			i++
		}
	}
	return false
}

// fuzzIDs are the ids an input of FuzzAnswer picks from.
var fuzzIDs = ids("", "1", "2", `"1"`, "null", "1.0", `"a"`, "0")

// FuzzAnswer: the one-pass scanner accepts exactly the JSON in UTF-8 without lone surrogates that json.Valid
// accepts, and Answer validates and classifies as a full encoding/json decode would, for the calls that pick
// (each 3 bits, up to 5 calls; the top bit: a batch) names.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, `[{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"x"}}]`,
		`{"jsonrpc":"2.0","error":null,"result":{"error":1},"id":1}`, `{"\u0065rror":{"code":-32000,"message":"header not found"},"id":1,"jsonrpc":"2.0"}`,
		`[1,{"result":[]},"x"]`, `{"result":-0.5e+3,"a":[true,false,null,{}]}`, `{"result":"\ud83c\udf89\n"}`, `<html>`, `[]`, ` {} `,
		`[{"jsonrpc":"2.0","id":2,"result":1},{"jsonrpc":"2.0","id":1,"result":1}]`, `{"jsonrpc":"2.0","id":1,"result":"\ud800"}`,
		`{"jsonrpc":"2.0","id":1,"ID":1,"result":0}`, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}"} {
		f.Add([]byte(s), uint16(1))
		f.Add([]byte(s), uint16(1<<15|2<<3|1))
	}
	f.Fuzz(func(t *testing.T, b []byte, pick uint16) {
		_, _, _, ok := scanAnswer(b)
		if valid := json.Valid(b) && utf8.Valid(b) && !loneSurrogate(b); ok != valid {
			t.Fatalf("scanAnswer ok=%v, reference %v: %q", ok, valid, b)
		}
		want := Expect{Batch: pick&(1<<15) != 0}
		for p := pick & 0x7fff; len(want.IDs) == 0 || p != 0; p >>= 3 {
			want.IDs = append(want.IDs, fuzzIDs[p&7])
		}
		if !want.Batch {
			want.IDs = want.IDs[:1]
		}
		if got, ref := Answer(b, want), referenceAnswer(b, want); got != ref {
			t.Fatalf("Answer %q, encoding/json reads %q: %q for %s", got, ref, b, want.IDs)
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
