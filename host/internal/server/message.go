package server

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/evmlb/evmlb/internal/contract"
)

// The call protocol's metadata crosses as JSON text and bodies as Uint8Arrays (CONTRACT.md §3–4): a call is a
// handful of crossings between JS and Go, not one per field.

// message is a message of CONTRACT.md §4, decoded on the loop: strings and a byte copy, nothing of the realm.
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
	last              bool    // response: done too

	call    string // storage
	key     string
	prefix  string
	entries []string
	keys    []string
	time    float64
	ttl     float64 // cache put: seconds
	errText string  // done
	hasErr  bool

	tags       []string // socket send (nil with all)
	all        bool
	tag        string // socket close, attach; response accept
	attachment string
	code       int // socket close
	reason     string
	accept     bool // response: accept a WebSocket tagged tag with attachment
}

// wire is a message's JSON; pointers tell absent fields apart.
type wire struct {
	Op         string    `json:"op"`
	ID         *float64  `json:"id"`
	URL        *string   `json:"url"`
	Method     *string   `json:"method"`
	Headers    *[]string `json:"headers"`
	Timeout    *float64  `json:"timeout"`
	Limit      *float64  `json:"limit"`
	Namespace  *string   `json:"namespace"`
	Name       *string   `json:"name"`
	Path       *string   `json:"path"`
	Call       *string   `json:"call"`
	Key        *string   `json:"key"`
	Entries    *[]string `json:"entries"`
	Keys       *[]string `json:"keys"`
	Prefix     *string   `json:"prefix"`
	Time       *float64  `json:"time"`
	TTL        *float64  `json:"ttl"`
	MS         *float64  `json:"ms"`
	Target     *float64  `json:"target"`
	Status     *float64  `json:"status"`
	Error      *string   `json:"error"`
	Done       *bool     `json:"done"`
	Tags       *[]string `json:"tags"`
	All        *bool     `json:"all"`
	Tag        *string   `json:"tag"`
	Attachment *string   `json:"attachment"`
	Code       *float64  `json:"code"`
	Reason     *string   `json:"reason"`
	Accept     *[]string `json:"accept"`
}

// decoder checks the fields of one message, recording the first problem.
type decoder struct {
	w *wire
	m *message
}

func (d *decoder) problem(format string, args ...any) {
	if d.m.bad == "" {
		d.m.bad = d.m.op + ": " + fmt.Sprintf(format, args...)
	}
}

func (d *decoder) str(p *string, key string) string {
	if p == nil {
		d.problem("no %s", key)
		return ""
	}
	return *p
}

func (d *decoder) num(p *float64, key string, min float64, strictlyAbove bool) float64 {
	if p == nil || math.IsNaN(*p) || *p < min || strictlyAbove && *p == min {
		d.problem("%s is missing or out of range", key)
		return 0
	}
	return *p
}

func (d *decoder) strs(p *[]string, key string, pairs bool) []string {
	if p == nil {
		d.problem("no %s", key)
		return nil
	}
	if pairs && len(*p)%2 != 0 {
		d.problem("%s has an odd length", key)
	}
	return *p
}

func isInt(f float64) bool { return f == math.Trunc(f) && !math.IsInf(f, 0) }

// decode reads a message Go delivered: its JSON text and its body (copied out of Go's memory; nil: none). On
// the loop.
func decode(text string, body []byte) *message {
	m := &message{op: "?"}
	var w wire
	if err := readWire(text, &w); err != nil {
		m.bad = fmt.Sprintf("the message is not a message of the contract: %v", err)
		if w.ID != nil && isInt(*w.ID) && *w.ID >= 0 {
			m.id, m.hasID = *w.ID, true // so that the operation can be answered
		}
		return m
	}
	m.op = w.Op
	if w.ID != nil && isInt(*w.ID) && *w.ID >= 0 {
		m.id, m.hasID = *w.ID, true
	}
	d := &decoder{w: &w, m: m}
	if body != nil {
		if m.op != contract.OpFetch && m.op != contract.OpObject && m.op != contract.OpResponse &&
			!(m.op == contract.OpCache && w.Call != nil && *w.Call == contract.CachePut) &&
			!(m.op == contract.OpSocket && w.Call != nil && *w.Call == contract.SocketSend) {
			d.problem("a body with a message that carries none")
		}
		m.body = body
	}
	needID := func() {
		if !m.hasID {
			d.problem("no operation id")
		}
	}
	switch m.op {
	case contract.OpFetch:
		needID()
		m.url, m.method = d.str(w.URL, "url"), d.str(w.Method, "method")
		m.headers = d.strs(w.Headers, "headers", true)
		m.timeout, m.limit = d.num(w.Timeout, "timeout", 0, true), d.num(w.Limit, "limit", 0, false)
	case contract.OpObject:
		needID()
		m.namespace, m.name = d.str(w.Namespace, "namespace"), d.str(w.Name, "name")
		m.method, m.path = d.str(w.Method, "method"), d.str(w.Path, "path")
		m.headers = d.strs(w.Headers, "headers", true)
		m.timeout = d.num(w.Timeout, "timeout", 0, true)
		switch m.namespace {
		case contract.BindingChain, contract.BindingUpstream, contract.BindingSubs, contract.BindingBudget:
		default:
			d.problem("unknown namespace %q", m.namespace)
		}
		if !strings.HasPrefix(m.path, "/") {
			d.problem("path does not start with /")
		}
	case contract.OpUpgrade:
		needID()
		m.namespace, m.name = d.str(w.Namespace, "namespace"), d.str(w.Name, "name")
		m.path = d.str(w.Path, "path")
		m.headers = d.strs(w.Headers, "headers", true)
		m.timeout = d.num(w.Timeout, "timeout", 0, true)
		if m.namespace != contract.BindingSubs {
			d.problem("an upgrade goes to %s, not %q", contract.BindingSubs, m.namespace)
		}
		if !strings.HasPrefix(m.path, "/") {
			d.problem("path does not start with /")
		}
		if !hasUpgrade(m.headers) {
			d.problem("the headers do not carry upgrade: websocket")
		}
	case contract.OpSocket:
		needID()
		m.call = d.str(w.Call, "call")
		switch m.call {
		case contract.SocketSend:
			switch {
			case w.All != nil && *w.All:
				m.all = true
				if w.Tags != nil {
					d.problem("both tags and all")
				}
			default:
				m.tags = d.strs(w.Tags, "tags", false)
			}
			if body == nil {
				d.problem("a send without a body")
			} else if !utf8.Valid(body) {
				d.problem("a send's text is not UTF-8")
			}
		case contract.SocketClose:
			m.tag, m.reason = d.str(w.Tag, "tag"), d.str(w.Reason, "reason")
			code := d.num(w.Code, "code", 0, false)
			if m.code = int(code); !isInt(code) || !contract.ValidCloseCode(m.code) {
				d.problem("close code %v is not one Go may send", code)
			}
			if len(m.reason) > contract.MaxCloseReasonBytes {
				d.problem("the reason is longer than %d bytes", contract.MaxCloseReasonBytes)
			}
		case contract.SocketAttach:
			m.tag, m.attachment = d.str(w.Tag, "tag"), d.str(w.Attachment, "attachment")
			if len(m.attachment) > contract.MaxAttachmentBytes {
				d.problem("the attachment is longer than %d bytes", contract.MaxAttachmentBytes)
			}
		case contract.SocketList:
		default:
			d.problem("unknown socket call %q", m.call)
		}
	case contract.OpStorage:
		needID()
		m.call = d.str(w.Call, "call")
		switch m.call {
		case contract.StorageGet:
			m.key = d.str(w.Key, "key")
		case contract.StoragePut:
			m.entries = d.strs(w.Entries, "entries", true)
		case contract.StorageDelete:
			m.keys = d.strs(w.Keys, "keys", false)
		case contract.StorageList:
			if w.Prefix != nil {
				m.prefix = *w.Prefix
			}
		case contract.StorageSetAlarm:
			m.time = d.num(w.Time, "time", 0, false)
		case contract.StorageDeleteAll, contract.StorageGetAlarm, contract.StorageDeleteAlarm:
		default:
			d.problem("unknown storage call %q", m.call)
		}
	case contract.OpCache:
		needID()
		m.call, m.key = d.str(w.Call, "call"), d.str(w.Key, "key")
		switch m.call {
		case contract.CacheMatch:
			m.limit = d.num(w.Limit, "limit", 0, false)
		case contract.CachePut:
			if m.ttl = d.num(w.TTL, "ttl", 1, false); !isInt(m.ttl) {
				d.problem("ttl is not a whole number of seconds")
			}
			if body == nil {
				d.problem("a put without a body")
			}
		case contract.CacheDelete:
		default:
			d.problem("unknown cache call %q", m.call)
		}
	case contract.OpSleep:
		needID()
		m.ms = d.num(w.MS, "ms", 0, false)
	case contract.OpAbort:
		m.target = d.num(w.Target, "target", 0, false)
		if !isInt(m.target) {
			d.problem("target is not an operation id")
		}
	case contract.OpResponse:
		st := d.num(w.Status, "status", 0, false)
		if !isInt(st) {
			d.problem("status is not an integer")
		}
		m.status = int(st)
		m.headers = d.strs(w.Headers, "headers", true)
		m.last = w.Done != nil && *w.Done
		if w.Accept != nil {
			a := *w.Accept
			if len(a) != 2 {
				d.problem("accept is not [tag, attachment]")
				break
			}
			m.accept, m.tag, m.attachment = true, a[0], a[1]
			switch {
			case m.status != 101:
				d.problem("accept with status %d, not 101", m.status)
			case body != nil && len(body) > 0:
				d.problem("accept with a body")
			case m.tag == "" || len(m.tag) > contract.MaxTagBytes:
				d.problem("the tag is not 1 to %d bytes", contract.MaxTagBytes)
			case len(m.attachment) > contract.MaxAttachmentBytes:
				d.problem("the attachment is longer than %d bytes", contract.MaxAttachmentBytes)
			}
		}
	case contract.OpDone:
		if w.Error != nil {
			m.errText, m.hasErr = *w.Error, true
		}
	default:
		m.bad = fmt.Sprintf("unknown op %q", m.op)
	}
	return m
}

// ends reports whether the message is the call's last.
func (m *message) ends() bool {
	return m.op == contract.OpDone || m.op == contract.OpResponse && m.last && m.bad == ""
}

// hasUpgrade reports whether flat headers carry upgrade: websocket.
func hasUpgrade(h []string) bool {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], "upgrade") && strings.EqualFold(strings.TrimSpace(h[i+1]), "websocket") {
			return true
		}
	}
	return false
}

// responseProblem is what workerd's Response would refuse: a status outside 200–599 (101 only when it accepts a
// WebSocket), a body with a null-body status.
func (m *message) responseProblem() string {
	if m.accept {
		return ""
	}
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

// result is an operation's result (CONTRACT.md §4).
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
	hit        bool // cache match: body is the entry

	count    int // socket send, close, attach
	hasCount bool
	sock     *socket // an upgrade's answer that accepted a WebSocket: the socket, for the worker's handler
	upgraded bool    // an upgrade's result for Go: [status]
}

func errResult(code, msg string) result { return result{err: code, msg: msg} }

// internalErrorResult is the answer of a fetch call Go could not answer (CONTRACT.md §5).
func internalErrorResult() result {
	return result{resp: true, status: 500, headers: []string{"content-type", "application/json"},
		body: []byte(contract.InternalErrorBody)}
}

// encode is the result's JSON text, [error, message, payload…], and its body (nil: null).
func (r *result) encode() (string, []byte) {
	if r.err != "" {
		return contract.Strings(r.err, r.msg), nil
	}
	f := []string{"", ""}
	var body []byte
	switch {
	case r.resp:
		f = append(append(f, strconv.Itoa(r.status)), r.headers...)
		body = r.body
		if body == nil {
			body = []byte{}
		}
	case r.hasValue:
		f = append(f, r.value)
	case r.hasEntries:
		f = append(f, r.entries...)
	case r.hasTime:
		f = append(f, strconv.FormatFloat(r.time, 'f', -1, 64))
	case r.hasCount:
		f = append(f, strconv.Itoa(r.count))
	case r.upgraded:
		f = append(f, strconv.Itoa(r.status))
	case r.hit:
		body = r.body
		if body == nil {
			body = []byte{}
		}
	}
	return contract.Strings(f...), body
}
