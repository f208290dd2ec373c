package server

import (
	"fmt"
	"math"
	"strings"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// message is a message of CONTRACT.md §4, decoded on the loop: strings and byte copies, nothing of the realm.
type message struct {
	op    string
	id    float64
	hasID bool
	bad   string // why the message cannot be understood; then nothing else counts

	url, method, path string // fetch, object
	namespace, name   string // object
	headers           []string
	body              []byte // nil: none
	timeout, limit    float64
	ms                float64 // sleep
	target            float64 // abort
	status            int     // response

	call    string // storage
	key     string
	prefix  string
	entries []string
	keys    []string
	time    float64
	errText string // done
	hasErr  bool
}

// decoder reads the fields of one message, recording the first problem.
type decoder struct {
	o jsrt.Object
	m *message
}

func (d *decoder) problem(format string, args ...any) {
	if d.m.bad == "" {
		d.m.bad = d.m.op + ": " + fmt.Sprintf(format, args...)
	}
}

func (d *decoder) str(key string) string {
	s, ok := d.o.Get(key).(string)
	if !ok {
		d.problem("%s is not a string", key)
	}
	return s
}

func (d *decoder) optStr(key string) string {
	switch v := d.o.Get(key).(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		if v != jsrt.Undefined {
			d.problem("%s is not a string", key)
		}
		return ""
	}
}

func (d *decoder) num(key string, min float64) float64 {
	f, ok := d.o.Get(key).(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < min {
		d.problem("%s is not a number ≥ %v", key, min)
	}
	return f
}

func (d *decoder) positive(key string) float64 {
	f, ok := d.o.Get(key).(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		d.problem("%s is not a positive number", key)
	}
	return f
}

// strings reads an array of strings; pairs demands an even length (a flat list of names and values).
func (d *decoder) strings(key string, pairs bool) []string {
	a, ok := d.o.Get(key).(*jsrt.Array)
	if !ok {
		d.problem("%s is not an array", key)
		return nil
	}
	if pairs && len(a.Elems)%2 != 0 {
		d.problem("%s has an odd length", key)
		return nil
	}
	out := make([]string, len(a.Elems))
	for i, e := range a.Elems {
		s, ok := e.(string)
		if !ok {
			d.problem("%s[%d] is not a string", key, i)
			return nil
		}
		out[i] = s
	}
	return out
}

// body copies a Uint8Array out of the realm; null (or no field) is no body.
func (d *decoder) body(key string) []byte {
	switch v := d.o.Get(key).(type) {
	case *jsrt.Uint8Array:
		b := make([]byte, v.Length)
		copy(b, v.Bytes())
		return b
	case nil:
		return nil
	default:
		if v != jsrt.Undefined {
			d.problem("%s is not a Uint8Array or null", key)
		}
		return nil
	}
}

func (d *decoder) needID() {
	if !d.m.hasID {
		d.problem("no operation id")
	}
}

func isInt(f float64) bool { return f == math.Trunc(f) && !math.IsInf(f, 0) }

// decode reads a message Go delivered. On the loop.
func decode(v jsrt.Value) *message {
	m := &message{}
	o, ok := v.(jsrt.Object)
	if !ok {
		m.op, m.bad = "?", "the message is not an object"
		return m
	}
	if m.op, ok = o.Get("op").(string); !ok {
		m.op, m.bad = "?", "the message has no op"
		return m
	}
	if id, ok := o.Get("id").(float64); ok && isInt(id) {
		m.id, m.hasID = id, true
	}
	d := &decoder{o: o, m: m}
	switch m.op {
	case "fetch":
		d.needID()
		m.url, m.method = d.str("url"), d.str("method")
		m.headers, m.body = d.strings("headers", true), d.body("body")
		m.timeout, m.limit = d.positive("timeout"), d.positive("limit")
	case "object":
		d.needID()
		m.namespace, m.name = d.str("namespace"), d.str("name")
		m.method, m.path = d.str("method"), d.str("path")
		m.headers, m.body = d.strings("headers", true), d.body("body")
		m.timeout = d.positive("timeout")
		if m.namespace != contract.BindingChain && m.namespace != contract.BindingUpstream && m.bad == "" {
			d.problem("unknown namespace %q", m.namespace)
		}
		if !strings.HasPrefix(m.path, "/") {
			d.problem("path does not start with /")
		}
	case "storage":
		d.needID()
		m.call = d.str("call")
		switch m.call {
		case "get":
			m.key = d.str("key")
		case "put":
			m.entries = d.strings("entries", true)
		case "delete":
			m.keys = d.strings("keys", false)
		case "list":
			m.prefix = d.optStr("prefix")
		case "setAlarm":
			m.time = d.num("time", 0)
		case "deleteAll", "getAlarm", "deleteAlarm":
		default:
			d.problem("unknown storage call %q", m.call)
		}
	case "sleep":
		d.needID()
		m.ms = d.num("ms", 0)
	case "abort":
		t, ok := o.Get("target").(float64)
		if !ok || !isInt(t) {
			d.problem("target is not an operation id")
		}
		m.target = t
	case "response":
		s := d.num("status", 0)
		m.status = int(s)
		if !isInt(s) {
			d.problem("status is not an integer")
		}
		m.headers, m.body = d.strings("headers", true), d.body("body")
	case "done":
		switch e := o.Get("error").(type) {
		case string:
			m.errText, m.hasErr = e, true
		case nil:
		default:
			if e != jsrt.Undefined {
				m.errText, m.hasErr = jsrt.ToString(e), true
			}
		}
	default:
		m.bad = fmt.Sprintf("unknown op %q", m.op)
	}
	return m
}

// responseProblem is what workerd's Response would refuse: a status outside 200–599, a body with a null-body
// status.
func (m *message) responseProblem() string {
	if m.status < 200 || m.status > 599 {
		return fmt.Sprintf("response status %d is outside 200–599", m.status)
	}
	if len(m.body) > 0 && nullBodyStatus(m.status) {
		return fmt.Sprintf("response with status %d has a body", m.status)
	}
	return ""
}

func nullBodyStatus(status int) bool {
	return status == 101 || status == 204 || status == 205 || status == 304
}

// result is an operation's result (CONTRACT.md §4), built into a JS object on the loop.
type result struct {
	err, msg string // a failed operation

	resp    bool // fetch and object: status, headers, body
	status  int
	headers []string
	body    []byte

	value      string // storage get
	hasValue   bool
	entries    []string // storage list
	hasEntries bool
	time       float64 // storage getAlarm
	hasTime    bool
}

func errResult(code, msg string) result { return result{err: code, msg: msg} }

// internalErrorResult is the answer of a fetch call Go could not answer (CONTRACT.md §5).
func internalErrorResult() result {
	return result{resp: true, status: 500, headers: []string{"content-type", "application/json"},
		body: []byte(contract.InternalErrorBody)}
}

// js builds the result object in r. The body is handed over, not copied: the host copied it already.
func (res *result) js(r *jsrt.Realm) jsrt.Value {
	if res.err != "" {
		return r.NewObject("error", res.err, "message", res.msg)
	}
	o := r.NewObject()
	if res.resp {
		o.Set("status", float64(res.status))
		o.Set("headers", stringArray(r, res.headers))
		body := res.body
		if body == nil {
			body = []byte{}
		}
		o.Set("body", r.NewUint8Array(body))
	}
	if res.hasValue {
		o.Set("value", res.value)
	}
	if res.hasEntries {
		o.Set("entries", stringArray(r, res.entries))
	}
	if res.hasTime {
		o.Set("time", res.time)
	}
	return o
}

func stringArray(r *jsrt.Realm, ss []string) *jsrt.Array {
	vs := make([]jsrt.Value, len(ss))
	for i, s := range ss {
		vs[i] = s
	}
	return r.NewArray(vs...)
}
