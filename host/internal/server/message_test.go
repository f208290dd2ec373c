package server

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/contract"
)

func TestDecode(t *testing.T) {
	body := []byte("payload")
	m := decode(`{"op":"fetch","id":3,"url":"http://x/","method":"POST","headers":["a","1"],"timeout":100,"limit":0}`, body)
	if m.bad != "" || m.id != 3 || !m.hasID || m.url != "http://x/" || string(m.body) != "payload" || m.limit != 0 || m.timeout != 100 {
		t.Fatalf("%+v", m)
	}
	m = decode(`{"op":"response","status":200,"headers":[],"done":true}`, nil)
	if m.bad != "" || !m.ends() || m.body != nil {
		t.Fatalf("%+v", m)
	}
	for _, ns := range []string{contract.BindingChain, contract.BindingUpstream, contract.BindingSubs, contract.BindingBudget} {
		if m := decode(`{"op":"object","id":1,"namespace":"`+ns+`","name":"n","method":"GET","path":"/","headers":[],"timeout":1}`, nil); m.bad != "" {
			t.Errorf("an object call to %s: %s", ns, m.bad)
		}
	}
	for text, bad := range map[string]string{
		`{"op":"fetch","id":1,"url":"u","method":"GET","headers":[],"limit":0}`:                                   "fetch: timeout is missing or out of range",
		`{"op":"fetch","id":1,"url":"u","method":"GET","headers":["odd"],"timeout":1,"limit":0}`:                  "fetch: headers has an odd length",
		`{"op":"sleep","id":1,"ms":1,"colour":"red"}`:                                                             `json: unknown field "colour"`,
		`{"op":"object","id":1,"namespace":"NOPE","name":"n","method":"GET","path":"/","headers":[],"timeout":1}`: `unknown namespace "NOPE"`,
		`{"op":"storage","id":1,"call":"drop"}`:                                                                   `unknown storage call "drop"`,
		`{"op":"teleport","id":1}`:                                                                                `unknown op "teleport"`,
		`{"op":"sleep","ms":1}`:                                                                                   "sleep: no operation id",
		`not json`:                                                                                                "the message is not a message of the contract",
	} {
		if m := decode(text, nil); !strings.Contains(m.bad, bad) {
			t.Errorf("%s: %q, want %q", text, m.bad, bad)
		}
	}
	if m := decode(`{"op":"sleep","id":4,"ms":"soon"}`, nil); m.bad == "" || !m.hasID || m.id != 4 {
		t.Fatalf("the id of a message that does not decode is kept, to answer it: %+v", m)
	}
	if m := decode(`{"op":"storage","id":1,"call":"deleteAll"}`, body); !strings.Contains(m.bad, "a body with a message that carries none") {
		t.Fatal(m.bad)
	}
}

// TestDecodeSockets: the WebSocket messages of contract 6, and what each refuses.
func TestDecodeSockets(t *testing.T) {
	m := decode(`{"op":"socket","id":1,"call":"send","tags":["a"]}`, []byte("hi"))
	if m.bad != "" || m.call != "send" || len(m.tags) != 1 || string(m.body) != "hi" {
		t.Fatalf("%+v", m)
	}
	m = decode(`{"op":"response","status":101,"headers":[],"accept":["t","att"]}`, nil)
	if m.bad != "" || !m.accept || m.tag != "t" || m.attachment != "att" || m.responseProblem() != "" {
		t.Fatalf("%+v", m)
	}
	m = decode(`{"op":"upgrade","id":1,"namespace":"SUBS","name":"c","path":"/","headers":["upgrade","websocket"],"timeout":5}`, nil)
	if m.bad != "" {
		t.Fatal(m.bad)
	}
	long := strings.Repeat("x", 16385)
	for text, bad := range map[string]string{
		`{"op":"socket","id":1,"call":"send","tags":["a"],"all":true}`:                                                    "both tags and all",
		`{"op":"socket","id":1,"call":"send","all":true}`:                                                                 "a send without a body",
		`{"op":"socket","id":1,"call":"close","tag":"a","code":1005,"reason":""}`:                                         "close code 1005 is not one Go may send",
		`{"op":"socket","id":1,"call":"close","tag":"a","code":1000,"reason":"` + long[:124] + `"}`:                       "the reason is longer than 123 bytes",
		`{"op":"socket","id":1,"call":"attach","tag":"a","attachment":"` + long + `"}`:                                    "the attachment is longer than 16384 bytes",
		`{"op":"socket","id":1,"call":"shout"}`:                                                                           `unknown socket call "shout"`,
		`{"op":"response","status":200,"headers":[],"accept":["t","a"]}`:                                                  "accept with status 200, not 101",
		`{"op":"response","status":101,"headers":[],"accept":["t"]}`:                                                      "accept is not [tag, attachment]",
		`{"op":"response","status":101,"headers":[],"accept":["` + long[:257] + `",""]}`:                                  "the tag is not 1 to 256 bytes",
		`{"op":"upgrade","id":1,"namespace":"CHAIN","name":"c","path":"/","headers":["upgrade","websocket"],"timeout":5}`: "an upgrade goes to SUBS",
		`{"op":"upgrade","id":1,"namespace":"SUBS","name":"c","path":"/","headers":[],"timeout":5}`:                       "the headers do not carry upgrade: websocket",
	} {
		if m := decode(text, nil); !strings.Contains(m.bad, bad) {
			t.Errorf("%.80s: %q, want %q", text, m.bad, bad)
		}
	}
	if m := decode(`{"op":"socket","id":1,"call":"send","tags":[]}`, []byte{0xff}); !strings.Contains(m.bad, "not UTF-8") {
		t.Fatal(m.bad)
	}
}

func TestResultEncode(t *testing.T) {
	for _, tc := range []struct {
		r        result
		text     string
		withBody bool
	}{
		{errResult(contract.ErrTimeout, "late"), `["timeout","late"]`, false},
		{result{resp: true, status: 307, headers: []string{"location", "/x"}}, `["","","307","location","/x"]`, true},
		{result{value: "v", hasValue: true}, `["","","v"]`, false},
		{result{}, `["",""]`, false},
		{result{entries: []string{"a", "1"}, hasEntries: true}, `["","","a","1"]`, false},
		{result{time: 1700000000123, hasTime: true}, `["","","1700000000123"]`, false},
	} {
		text, body := tc.r.encode()
		if text != tc.text || (body != nil) != tc.withBody {
			t.Errorf("%+v: %s %v", tc.r, text, body)
		}
	}
}

func TestCallMetaAndHeaders(t *testing.T) {
	rt := &runtime{requestHeaders: []string{"content-type", "origin"}}
	h := rt.selectHeaders(func(name string) []string {
		return map[string][]string{"content-type": {"a", "b"}, "cookie": {"no"}}[name]
	})
	got := callMeta(contract.CallFetch, "worker", "", "", "POST", "http://h/p", true, 0, h)
	want := `["fetch","worker","","","POST","http://h/p","1","0","content-type","a, b"]`
	if contract.Strings(got...) != want {
		t.Fatal(contract.Strings(got...))
	}
}

// FuzzReadWire holds the hand reader of messages to encoding/json with DisallowUnknownFields: the same texts are
// accepted, and they read the same.
func FuzzReadWire(f *testing.F) {
	for _, s := range []string{
		`{"op":"fetch","id":3,"url":"http://x/","method":"POST","headers":["a","1"],"timeout":100,"limit":0}`,
		`{"op":"response","status":200,"headers":[],"done":true}`, `{"op":"storage","id":1,"call":"put","entries":["k","v"]}`,
		`{"op":"sleep","id":1,"ms":1,"colour":"red"}`, `{"op":"fetch","url":42}`, `{"op":null,"id":1e3,"done":false}`,
		`{"op":"x","keys":null,"headers":[1]}`, `{"a":{"b":[1,{"c":null}]}}`, `not json`, `{"op":"done"} x`, `{"id":-0.5e-3}`,
		`{"op":"\u00e9\ud83c\udf89","error":"\n"}`, `{"OP":"done","Id":1,"ſtatus":200,"K\u212aey":"x"}`, `[]`, `{"id":01}`, `{"done":"yes"}`, `{"entries":["a",]}`,
		`{"op":"socket","id":2,"call":"send","tags":["a","b"],"all":false}`, `{"op":"socket","id":2,"call":"close","tag":"a","code":4001,"reason":"r"}`,
		`{"op":"response","status":101,"headers":[],"accept":["t","a"],"done":true}`, `{"all":"yes","code":"x","accept":[1]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var got, want wire
		err := readWire(text, &got)
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		werr := dec.Decode(&want)
		if werr == nil && dec.More() {
			werr = errors.New("more")
		}
		if werr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				werr = errors.New("trailing data")
			}
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: hand reader %v, encoding/json %v", text, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: read %s, encoding/json %s", text, dump(got), dump(want))
		}
	})
}

func dump(w wire) string { b, _ := json.Marshal(w); return string(b) }
