package subs

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Sub is one subscription of a socket: its id and, for logs, its filter (nil: newHeads).
type Sub struct {
	ID   string  `json:"i"`
	Logs *Filter `json:"l,omitempty"`
}

// Socket is the state of one WebSocket session: its subscriptions, in the order they were made. The wiring keeps
// it in the socket's attachment (serializeAttachment), so it marshals compactly and Handle refuses a
// subscription that would make it longer than Limits.MaxBytes.
type Socket struct {
	Subs []Sub `json:"s,omitempty"`
}

// Limits bound a socket. The zero value of a field means its default.
type Limits struct {
	// MaxSubs is the number of subscriptions a socket may hold (default 32).
	MaxSubs int
	// MaxBytes bounds the Socket's JSON (default AttachmentBytes).
	MaxBytes int
	// MaxBatch is the number of calls one message may hold, as the data plane's batch limit (default 100).
	MaxBatch int
}

// AttachmentBytes is the default bound of a Socket's JSON: Cloudflare's serializeAttachment takes at most 16 KiB
// (16,384 bytes) of structured-clone data; 384 bytes are left for the clone's own framing and for what the wiring
// keeps beside the subscriptions.
const AttachmentBytes = 16000

const (
	defaultMaxSubs  = 32
	defaultMaxBatch = 100
)

func (l Limits) withDefaults() Limits {
	if l.MaxSubs <= 0 {
		l.MaxSubs = defaultMaxSubs
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = AttachmentBytes
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = defaultMaxBatch
	}
	return l
}

// The errors of a session, beside jsonrpc's table (parse error, invalid request). Codes and texts are geth's
// where geth has the case: -32602 for bad params, -32601 for a subscription kind it does not serve, -32000 for
// an unknown subscription id (rpc.ErrSubscriptionNotFound, which geth answers with its default code). The two
// limits are the balancer's own, in its range -32060..-32079 (they join jsonrpc.Table and README's table of
// errors when the session is served).
var (
	ErrTooManySubs = jsonrpc.ErrTooManySubs
	ErrSubTooLarge = jsonrpc.ErrSubTooLarge
	ErrSubNotFound = &jsonrpc.Error{Code: -32000, Message: "subscription not found"}
)

func invalidParams(msg string) *jsonrpc.Error {
	return &jsonrpc.Error{Code: -32602, Message: msg}
}

// kindNotFound is geth's subscriptionNotFoundError, with why.
func kindNotFound(name string) *jsonrpc.Error {
	n, _ := json.Marshal(name)
	return &jsonrpc.Error{Code: -32601, Message: "no " + string(n) + " subscription in eth namespace",
		Detail: "this balancer serves newHeads and logs"}
}

// Result is what Handle makes of one client message.
type Result struct {
	// Reply is the whole answer to send now, when the message holds no plain call; nil when nothing is to be sent
	// (a message of notifications only).
	Reply []byte
	// Plain holds the message's other calls, for the data plane, in order; a batch when the message was one. Nil
	// when there are none.
	Plain *jsonrpc.Request
	// Own are the answers to the message's subscription calls when Plain is a batch: Merge puts them into the data
	// plane's answer array (a batch's answers may come in any order, JSON-RPC 2.0 §6).
	Own [][]byte
	// Changed is true when the socket's subscriptions changed: the wiring writes the attachment again.
	Changed bool
}

// Handle reads one text message of the client against the socket: eth_subscribe and eth_unsubscribe are done and
// answered here, every other call is handed back in Plain. random is the source of subscription ids
// (crypto/rand.Reader in production). A malformed message is answered with jsonrpc's parse or invalid-request
// error, as the data plane answers an HTTP body.
func (s *Socket) Handle(msg []byte, lim Limits, random io.Reader) Result {
	lim = lim.withDefaults()
	req, perr := jsonrpc.Parse(msg, lim.MaxBatch)
	if perr != nil {
		return Result{Reply: perr.BodyFor(req)}
	}
	var res Result
	var own [][]byte
	var plain []jsonrpc.Call
	for _, c := range req.Calls {
		var answer []byte
		switch c.Method {
		case "eth_subscribe":
			if c.Notification() {
				continue // an id the client can never learn would only hold a slot: geth's too is unreachable
			}
			id, err := s.subscribe(c.Params, lim, random)
			if err != nil {
				answer = err.Body(c.ID)
			} else {
				answer = result(c.ID, `"`+id+`"`)
				res.Changed = true
			}
		case "eth_unsubscribe":
			err := s.unsubscribe(c.Params)
			if err == nil {
				res.Changed = true
			}
			if c.Notification() {
				continue
			}
			if err != nil {
				answer = err.Body(c.ID)
			} else {
				answer = result(c.ID, "true")
			}
		default:
			plain = append(plain, c)
			continue
		}
		own = append(own, answer)
	}
	switch {
	case len(plain) > 0:
		res.Plain = &jsonrpc.Request{Batch: req.Batch, Calls: plain}
		res.Own = own
	case len(own) == 0:
	case !req.Batch:
		res.Reply = own[0]
	default:
		res.Reply = append(append([]byte{'['}, bytes.Join(own, []byte{','})...), ']')
	}
	return res
}

// Merge is the answer to a batch whose plain calls the data plane answered with plain (an array, or one error
// object for the whole batch) and whose subscription calls Handle answered with own.
func Merge(plain []byte, own [][]byte) []byte {
	if len(own) == 0 {
		return plain
	}
	b := []byte{'['}
	b = append(b, bytes.Join(own, []byte{','})...)
	p := bytes.TrimSpace(plain)
	switch {
	case len(p) >= 2 && p[0] == '[' && len(bytes.TrimSpace(p[1:len(p)-1])) > 0:
		b = append(append(b, ','), p[1:len(p)-1]...)
	case len(p) > 0 && p[0] == '{':
		b = append(append(b, ','), p...)
	}
	return append(b, ']')
}

func result(id json.RawMessage, r string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(jsonrpc.IDOrNull(id))
	b.WriteString(`,"result":`)
	b.WriteString(r)
	b.WriteByte('}')
	return b.Bytes()
}

// subscribe reads eth_subscribe's params as geth's handleSubscribe does (parseSubscriptionName, then the
// arguments of the kind) and adds the subscription.
func (s *Socket) subscribe(params json.RawMessage, lim Limits, random io.Reader) (string, *jsonrpc.Error) {
	args, ok := jsonrpc.Array(params)
	if !ok {
		return "", invalidParams("non-array args")
	}
	name, ok := "", len(args) > 0
	if ok {
		name, ok = str(args[0])
	}
	if !ok {
		return "", invalidParams("expected subscription name as first argument")
	}
	sub := Sub{}
	switch name {
	case "newHeads":
		if len(args) > 1 {
			return "", invalidParams("too many arguments, want at most 1")
		}
	case "logs":
		switch {
		case len(args) > 2:
			return "", invalidParams("too many arguments, want at most 2")
		case len(args) < 2:
			return "", invalidParams("missing value for required argument 1")
		}
		f, err := parseFilter(args[1])
		if errors.Is(err, errPendingLogsUnsupported) || errors.Is(err, errInvalidBlockRange) {
			return "", invalidParams(err.Error()) // SubscribeLogs' own errors, after the arguments were read
		} else if err != nil {
			return "", invalidParams("invalid argument 1: " + err.Error())
		}
		sub.Logs = f
	default:
		return "", kindNotFound(name)
	}
	if len(s.Subs) >= lim.MaxSubs {
		return "", ErrTooManySubs.With("at most " + itoa(lim.MaxSubs))
	}
	for {
		var b [16]byte
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return "", jsonrpc.ErrInternal
		}
		sub.ID = encodeID(b[:])
		if s.find(sub.ID) < 0 {
			break
		}
	}
	s.Subs = append(s.Subs, sub)
	if n := s.Size(); n > lim.MaxBytes {
		s.Subs = s.Subs[:len(s.Subs)-1]
		return "", ErrSubTooLarge.With("it would make them " + itoa(n) + " bytes, at most " + itoa(lim.MaxBytes))
	}
	return sub.ID, nil
}

// encodeID is geth's rpc.encodeID: 16 random bytes as a quantity (0x-hex without leading zeros).
func encodeID(b []byte) string {
	id := strings.TrimLeft(hex.EncodeToString(b), "0")
	if id == "" {
		id = "0"
	}
	return "0x" + id
}

// unsubscribe reads eth_unsubscribe's params as geth's parsePositionalArguments for one rpc.ID and removes it.
func (s *Socket) unsubscribe(params json.RawMessage) *jsonrpc.Error {
	var args []json.RawMessage
	if params != nil && string(params) != "null" {
		var ok bool
		if args, ok = jsonrpc.Array(params); !ok {
			return invalidParams("non-array args")
		}
	}
	switch {
	case len(args) == 0:
		return invalidParams("missing value for required argument 0")
	case len(args) > 1:
		return invalidParams("too many arguments, want at most 1")
	case string(args[0]) == "null":
		return ErrSubNotFound // geth decodes null into the empty id, which no subscription has
	}
	id, ok := str(args[0])
	if !ok {
		return invalidParams("invalid argument 0: json: cannot unmarshal " + kind(args[0]) + " into Go value of type rpc.ID")
	}
	i := s.find(id)
	if i < 0 {
		return ErrSubNotFound
	}
	s.Subs = append(s.Subs[:i], s.Subs[i+1:]...)
	return nil
}

func (s *Socket) find(id string) int {
	for i, sub := range s.Subs {
		if sub.ID == id {
			return i
		}
	}
	return -1
}

// Size is the length of the socket's JSON, what the attachment holds.
func (s *Socket) Size() int {
	b, _ := json.Marshal(s) // plain strings and numbers always marshal
	return len(b)
}

// Filters lists the socket's logs filters, for the follower.
func (s *Socket) Filters() []*Filter {
	var fs []*Filter
	for _, sub := range s.Subs {
		if sub.Logs != nil {
			fs = append(fs, sub.Logs)
		}
	}
	return fs
}

// Notifications are the messages the socket receives for the follower's events, in the events' order: each
// newHeads event to every newHeads subscription, each log to every logs subscription whose filter it passes.
func (s *Socket) Notifications(events []Event) [][]byte {
	var out [][]byte
	for i := range events {
		e := &events[i]
		for _, sub := range s.Subs {
			if e.Kind == KindHead && sub.Logs == nil || e.Kind == KindLog && sub.Logs != nil && sub.Logs.Match(&e.Log) {
				out = append(out, Notification(sub.ID, e.Result))
			}
		}
	}
	return out
}

// Notification is geth's subscription notification (rpc.jsonrpcSubscriptionNotification), members in its order.
func Notification(id string, result json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":`)
	q, _ := json.Marshal(id)
	b.Write(q)
	b.WriteString(`,"result":`)
	b.Write(result)
	b.WriteString(`}}`)
	return b.Bytes()
}
