package durable

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/subs"
)

// The subscription object (issue 21): one SubscriptionDurableObject per chain (SUBS, idFromName(chain)) holds the
// chain's WebSockets through the host (CONTRACT.md §7: tags and attachments, never in Go's memory), answers their
// messages (internal/subs's session; plain calls through the data plane, as POST /{chain}), and, while one of its
// sockets has a subscription, follows the chain's verified head on an alarm (internal/subs's follower) and sends
// the events. Between two calls it keeps nothing in memory that is not in storage or in the attachments: an
// evicted (wazero) or hibernated (workerd) object loses nothing.

// Storage keys of a subscription object.
const (
	keySubsChain  = "chain"  // the chain's name, written by the first upgrade (the object id cannot be reversed)
	keySubsState  = "state"  // the follower's subs.State, JSON; deleted when the last subscription goes
	keySubsCounts = "counts" // SubsCounts, written with the state
)

// The close codes the session sends (README.md "WebSocket subscriptions").
const (
	CloseUnsupported = 1003 // a binary frame: the session is JSON text
	ClosePolicy      = 1008 // MaxStrikes malformed or rate-refused messages in a row
	CloseTooBig      = 1009 // a frame over EVMLB_MAX_BODY_BYTES
)

// MaxStrikes is how many messages in a row a socket may send that are not JSON-RPC or are over its rate before it
// is closed with ClosePolicy.
const MaxStrikes = 10

// maxSteps bounds the follower's fetches in one alarm (each one batch); what is left waits for the next alarm.
const maxSteps = 64

// PathSubsStatus is the subscription object's status (SubsStatus as JSON): a fetch call that is no upgrade.
const PathSubsStatus = "/status"

// Follow is what the follower takes from the data plane (internal/proxy.Plane): the chain's verified head and its
// upstreams in routing order (the first primary in rotation), and one batch to one upstream, answers by call.
type Follow interface {
	Rotation(ctx context.Context, chain string) (head uint64, ups []string, primary int, ok bool)
	Batch(ctx context.Context, chain, up string, calls []jsonrpc.Call) ([][]byte, error)
}

// ServeFunc answers a socket's plain calls as POST /{chain} would (deny list, data plane): the answer's JSON, or
// nil when there is none (notifications only).
type ServeFunc func(ctx context.Context, chain string, req *jsonrpc.Request, body []byte) []byte

// AdmitFunc decides a message of a socket opened with a client key (CLIENT_KEYS) as POST /{chain}/{key} decides
// a body: the key's list of methods, then its budget (a call spends one, subscription calls too). nil: go on;
// else the refusal's answer, and limited when the key's limit refused it (a strike, as the socket's own rate's).
type AdmitFunc func(ctx context.Context, chain, client string, req *jsonrpc.Request) (refusal []byte, limited bool)

// HeaderSocketClient names, on the upgrade the Worker hands to a subscription object, the client whose key opened
// the socket (its name in CLIENT_KEYS, never the key). Only the Worker calls the object: a client cannot set it.
// The hosts pass it to Go (contract.RequestHeaders).
const HeaderSocketClient = "x-evmlb-client"

// Subs serves every SubscriptionDurableObject instance of the runtime.
type Subs struct {
	env    Env
	follow Follow
	serve  ServeFunc
	// Admit decides the messages of sockets opened with a client key (nil: every message goes on).
	Admit AdmitFunc
	// Random is the source of tags and subscription ids (crypto/rand.Reader).
	Random io.Reader
	locks  sync.Map // object id + "/" + tag → *sockLock
}

// NewSubs makes the subscription objects' handler.
func NewSubs(env Env, follow Follow, serve ServeFunc) *Subs {
	return &Subs{env: env, follow: follow, serve: serve, Random: rand.Reader}
}

// attachment is a socket's attachment: its chain, the client whose key opened it, its rate bucket and strikes,
// and its subscriptions.
type attachment struct {
	Chain   string  `json:"c"`
	Client  string  `json:"k,omitempty"` // a CLIENT_KEYS name, when a key opened the socket
	Tokens  float64 `json:"t"`           // the rate bucket's tokens
	At      int64   `json:"w"`           // when they were counted, Unix ms
	Strikes int     `json:"g,omitempty"` // malformed or rate-refused messages in a row
	subs.Socket
}

func (a *attachment) encode() string {
	b, err := json.Marshal(a)
	if err != nil {
		panic(err) // our own type always marshals; recovered by the app
	}
	return string(b)
}

func decodeAttachment(s string) (attachment, bool) {
	var a attachment
	return a, json.Unmarshal([]byte(s), &a) == nil && a.Chain != ""
}

// SubsCounts and SubsStatus are the subscription object's counts and its PathSubsStatus answer.
type (
	SubsCounts = adminapi.SubsCounts
	SubsStatus = adminapi.SubsStatus
)

func (ss *Subs) limits(a *attachment) subs.Limits {
	s := ss.env.Settings
	return subs.Limits{MaxSubs: s.WSMaxSubscriptions, MaxBatch: s.MaxBatch,
		MaxBytes: subs.AttachmentBytes - len(a.Chain) - len(a.Client) - 104} // room for the chain, the client, the bucket and the strikes
}

func (ss *Subs) newTag() string {
	var b [16]byte
	_, _ = io.ReadFull(ss.Random, b[:])
	return hex.EncodeToString(b[:])
}

// ServeHTTP serves a fetch call of a subscription object: the upgrade the Worker handed over (GET /{chain} with
// Upgrade: websocket), or else PathSubsStatus (a chain may be named "status").
func (ss *Subs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.Header.Get(contract.HeaderObject)
	st := ss.env.P.StorageFor(id)
	if st == nil || ss.env.P.Sockets == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	socks, err := ss.env.P.Sockets.List(ctx)
	if err != nil {
		ss.env.P.Logf("subs object: list: %v", err)
		jsonrpc.ErrInternal.With("sockets").Write(w, nil)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") { // not an upgrade: the status (any path)
		s := SubsStatus{Sockets: len(socks)}
		for _, sk := range socks {
			if a, ok := decodeAttachment(sk.Attachment); ok {
				s.Subscriptions += len(a.Subs)
			}
		}
		if v, ok, _ := st.Get(ctx, keySubsCounts); ok {
			_ = json.Unmarshal([]byte(v), &s.Counts)
		}
		if v, ok, _ := st.Get(ctx, keySubsState); ok {
			var state subs.State
			if json.Unmarshal([]byte(v), &state) == nil {
				if tip, ok := state.Tip(); ok {
					s.Tip = tip.Number
				}
			}
		}
		writeJSON(w, s)
		return
	}
	chain := r.URL.Path[1:]
	if r.Method != http.MethodGet || !ss.env.Config.HasChain(chain) {
		jsonrpc.ErrNotFound.Write(w, nil)
		return
	}
	if len(socks) >= ss.env.Settings.WSMaxSockets {
		jsonrpc.ErrTooManySockets.Write(w, nil)
		return
	}
	if _, ok, err := st.Get(ctx, keySubsChain); err != nil {
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	} else if !ok {
		if err := st.Put(ctx, map[string]string{keySubsChain: chain}); err != nil {
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
	}
	a := attachment{Chain: chain, Client: r.Header.Get(HeaderSocketClient), Tokens: float64(2 * ss.env.Settings.WSRate), At: ss.env.P.Now().UnixMilli()}
	if err := ss.env.P.Sockets.Accept(ctx, ss.newTag(), a.encode()); err != nil {
		ss.env.P.Logf("subs object: accept: %v", err)
		jsonrpc.ErrInternal.With("accept").Write(w, nil)
		return
	}
	w.WriteHeader(http.StatusSwitchingProtocols)
}

// Socket runs a message or close call of a subscription object's socket.
func (ss *Subs) Socket(ctx context.Context, ev platform.SocketEvent) error {
	if ev.Kind != contract.CallMessage {
		ss.locks.Delete(ev.Object + "/" + ev.Tag)
		return nil // a close: the socket is gone with its attachment; nothing of it is kept elsewhere
	}
	sk := ss.env.P.Sockets
	a, ok := decodeAttachment(ev.Attachment)
	if !ok {
		_, err := sk.Close(ctx, ev.Tag, 1011, "the socket's state is unreadable")
		return err
	}
	switch {
	case ev.Binary:
		_, err := sk.Close(ctx, ev.Tag, CloseUnsupported, "binary frames are not served: send JSON-RPC as text")
		return err
	case ev.TooLarge:
		_, err := sk.Close(ctx, ev.Tag, CloseTooBig, "message over "+strconv.FormatInt(ss.env.Settings.MaxBodyBytes, 10)+" bytes (EVMLB_MAX_BODY_BYTES)")
		return err
	}
	// The attachment's read-modify-write is one socket's at a time (message calls of one socket may run at once
	// while their plain calls wait on the data plane); the latest attachment written is taken over the event's,
	// which may be older than a write another call of this socket just made.
	l := ss.lock(ev.Object, ev.Tag)
	l.mu.Lock()
	if l.att != "" {
		if latest, ok := decodeAttachment(l.att); ok {
			a = latest
		}
	}
	before := len(a.Subs)
	res, refused := ss.handle(ctx, &a, ev.Data)
	if a.Strikes >= MaxStrikes {
		l.mu.Unlock()
		_, err := sk.Close(ctx, ev.Tag, ClosePolicy, "too many malformed or rate-limited messages in a row")
		return err
	}
	var err error
	if res.Plain == nil && len(res.Reply) > 0 {
		// A subscription's answer goes before its attachment is written, so that no event of it (the alarm reads the
		// attachments) can reach the client before the id.
		_, err = sk.Send(ctx, res.Reply, ev.Tag)
	}
	if err == nil {
		l.att = a.encode()
		_, err = sk.Attach(ctx, ev.Tag, l.att)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if res.Changed && before == 0 && len(a.Subs) > 0 {
		if err := ss.startAlarm(ctx, ev.Object, a.Chain); err != nil {
			ss.env.P.Logf("subs object %s: alarm: %v", a.Chain, err)
		}
	}
	if refused != nil {
		_, err = sk.Send(ctx, refused, ev.Tag)
		return err
	}
	if res.Plain == nil {
		return nil
	}
	// The plain calls as a body of their own: the message less its subscription calls.
	answer := subs.Merge(ss.serve(ctx, a.Chain, res.Plain, encodeCalls(res.Plain)), res.Own)
	if len(answer) > 0 {
		_, err = sk.Send(ctx, answer, ev.Tag)
	}
	return err
}

// sockLock is one socket's lock and the attachment last written for it by this runtime.
type sockLock struct {
	mu  sync.Mutex
	att string
}

func (ss *Subs) lock(object, tag string) *sockLock {
	l, _ := ss.locks.LoadOrStore(object+"/"+tag, &sockLock{})
	return l.(*sockLock)
}

// handle reads one text message of a socket against its attachment (bucket, strikes, subscriptions): the session's
// result, or refused, the answer to a message over the socket's rate or refused by its client's key.
func (ss *Subs) handle(ctx context.Context, a *attachment, data []byte) (res subs.Result, refused []byte) {
	rate := float64(ss.env.Settings.WSRate)
	now := ss.env.P.Now().UnixMilli()
	if now > a.At {
		a.Tokens = min(2*rate, a.Tokens+float64(now-a.At)*rate/1000)
	}
	a.At = now
	if a.Tokens < 1 {
		a.Strikes++
		req, _ := jsonrpc.Parse(data, ss.env.Settings.MaxBatch)
		return subs.Result{}, jsonrpc.ErrSocketRate.BodyFor(req)
	}
	a.Tokens--
	if a.Client != "" && ss.Admit != nil {
		// A message that is not JSON-RPC is the session's to answer (and a strike); one that is spends the key's
		// budget as a request of as many calls would.
		if req, perr := jsonrpc.Parse(data, ss.env.Settings.MaxBatch); perr == nil {
			if body, limited := ss.Admit(ctx, a.Chain, a.Client, req); body != nil {
				if limited {
					a.Strikes++
				} else {
					a.Strikes = 0
				}
				return subs.Result{}, body
			}
		}
	}
	res = a.Socket.Handle(data, ss.limits(a), ss.Random)
	if res.Plain == nil && res.Own == nil && malformed(res.Reply) {
		a.Strikes++ // a parse or invalid-request error: the message was not JSON-RPC
	} else {
		a.Strikes = 0
	}
	return res, nil
}

// malformed reports whether reply is the answer to a message that is not JSON-RPC: a single parse or
// invalid-request error.
func malformed(reply []byte) bool {
	f, ok := jsonrpc.Fields(reply, "error")
	if !ok || f[0] == nil {
		return false
	}
	c, ok := jsonrpc.Fields(f[0], "code")
	if !ok {
		return false
	}
	code := string(c[0])
	return code == strconv.Itoa(jsonrpc.ErrParse.Code) || code == strconv.Itoa(jsonrpc.ErrInvalidRequest.Code)
}

// encodeCalls is req as a request body.
func encodeCalls(req *jsonrpc.Request) []byte {
	var b bytes.Buffer
	if req.Batch {
		b.WriteByte('[')
	}
	for i, c := range req.Calls {
		if i > 0 {
			b.WriteByte(',')
		}
		m, _ := json.Marshal(c.Method)
		b.WriteString(`{"jsonrpc":"2.0",`)
		if c.ID != nil {
			b.WriteString(`"id":`)
			b.Write(c.ID)
			b.WriteByte(',')
		}
		b.WriteString(`"method":`)
		b.Write(m)
		if c.Params != nil {
			b.WriteString(`,"params":`)
			b.Write(c.Params)
		}
		b.WriteByte('}')
	}
	if req.Batch {
		b.WriteByte(']')
	}
	return b.Bytes()
}

func (ss *Subs) poll(chain string) time.Duration {
	return ss.env.Config.ChainSettings(chain).WithDefaults().SubscriptionPoll
}

// startAlarm sets the object's alarm one poll from now unless one is set: the first subscription starts the
// follower.
func (ss *Subs) startAlarm(ctx context.Context, objectID, chain string) error {
	st := ss.env.P.StorageFor(objectID)
	if st == nil {
		return errors.New("no storage")
	}
	if _, set, err := st.GetAlarm(ctx); err != nil || set {
		return err
	}
	return st.SetAlarm(ctx, ss.env.P.Now().Add(ss.poll(chain)))
}

// Alarm runs the follower once: while the object has a subscription, the verified head's hash is decided, the
// follower fetches and applies what it plans, the state is stored and then the events are sent, and the next alarm
// is set. With no subscription left the state is dropped and no alarm is set.
func (ss *Subs) Alarm(ctx context.Context, objectID string) error {
	st := ss.env.P.StorageFor(objectID)
	if st == nil {
		return errors.New("no storage for this object")
	}
	chain, ok, err := st.Get(ctx, keySubsChain)
	if err != nil || !ok {
		return err
	}
	socks, err := ss.env.P.Sockets.List(ctx)
	if err != nil {
		return err
	}
	type sock struct {
		tag string
		s   subs.Socket
	}
	var live []sock
	var filters []*subs.Filter
	for _, sk := range socks {
		if a, ok := decodeAttachment(sk.Attachment); ok && len(a.Subs) > 0 {
			live = append(live, sock{sk.Tag, a.Socket})
			filters = append(filters, a.Filters()...)
		}
	}
	if len(live) == 0 {
		return st.Delete(ctx, keySubsState) // a later first subscriber adopts the head afresh
	}
	defer func() {
		if err := st.SetAlarm(ctx, ss.env.P.Now().Add(ss.poll(chain))); err != nil {
			ss.env.P.Logf("subs object %s: alarm: %v", chain, err)
		}
	}()
	var state subs.State
	var counts SubsCounts
	if v, ok, err := st.Get(ctx, keySubsState); err != nil {
		return err
	} else if ok && json.Unmarshal([]byte(v), &state) != nil {
		state = subs.State{} // unreadable: adopt the head again
	}
	if v, ok, _ := st.Get(ctx, keySubsCounts); ok {
		_ = json.Unmarshal([]byte(v), &counts)
	}
	height, ups, primary, ok := ss.follow.Rotation(ctx, chain)
	if !ok || height == 0 || len(ups) == 0 {
		return nil
	}
	if primary == 0 {
		return nil // none in rotation: an upstream out of rotation never speaks for the chain
	}
	ups = ups[:primary]
	lag := ss.env.Config.ChainSettings(chain).WithDefaults().MaxLagBlocks
	head, agreed := ss.look(ctx, chain, height, lag, ups)
	if !agreed {
		counts.HeadSkew++
		return ss.storeCounts(ctx, st, counts)
	}
	cfg := subs.Config{}
	// The upstream asked first: rotating with the head's height and over the steps, so that the fetches spread
	// over the upstreams in rotation.
	next := int(height % uint64(len(ups)))
	for step := 0; step < maxSteps; step++ {
		plan := subs.NextPlan(&state, head, cfg, len(filters) > 0)
		if !plan.Fetch {
			break
		}
		var events []subs.Event
		var rep subs.Report
		applied := false
		for i := range ups {
			up := ups[(next+i)%len(ups)]
			headers, logs, err := ss.fetch(ctx, chain, up, plan, filters)
			if err != nil {
				continue
			}
			events, rep, err = subs.Apply(&state, plan, headers, logs, filters, cfg)
			if err == nil {
				applied = true
				break
			}
			if !errors.Is(err, subs.ErrInconsistent) {
				return err
			}
		}
		next++
		if !applied {
			state.DropPending()
			counts.Dropped++
			break
		}
		if rep.Removed > 0 {
			counts.Reorgs++
		}
		if rep.Deep {
			counts.Deep++
		}
		if rep.Skipped.To >= rep.Skipped.From && rep.Skipped.To > 0 {
			counts.Skipped += rep.Skipped.To - rep.Skipped.From + 1
		}
		var out [][2]any
		for _, s := range live {
			for _, n := range s.s.Notifications(events) {
				out = append(out, [2]any{s.tag, n})
			}
		}
		counts.Events += uint64(len(out))
		// Stored before anything is sent: a crash loses both, never sends twice (the output gate holds the sends
		// until the write is durable).
		if err := ss.store(ctx, st, &state, counts); err != nil {
			return err
		}
		for _, o := range out {
			if _, err := ss.env.P.Sockets.Send(ctx, o[1].([]byte), o[0].(string)); err != nil {
				ss.env.P.Logf("subs object %s: send: %v", chain, err)
			}
		}
	}
	return ss.store(ctx, st, &state, counts)
}

func (ss *Subs) store(ctx context.Context, st platform.Storage, state *subs.State, counts SubsCounts) error {
	s, err := json.Marshal(state)
	if err != nil {
		return err
	}
	c, _ := json.Marshal(counts)
	return st.Put(ctx, map[string]string{keySubsState: string(s), keySubsCounts: string(c)})
}

func (ss *Subs) storeCounts(ctx context.Context, st platform.Storage, counts SubsCounts) error {
	c, _ := json.Marshal(counts)
	return st.Put(ctx, map[string]string{keySubsCounts: string(c)})
}

func quantity(n uint64) json.RawMessage {
	return json.RawMessage(`"0x` + strconv.FormatUint(n, 16) + `"`)
}

// blockCall is eth_getBlockByNumber(n, false) with id i.
func blockCall(i int, n uint64) jsonrpc.Call {
	return jsonrpc.Call{ID: json.RawMessage(strconv.Itoa(i)), Method: "eth_getBlockByNumber",
		Params: json.RawMessage(`[` + string(quantity(n)) + `,false]`)}
}

// result is an answer's result, or an error when it has none (a JSON-RPC error, a null block).
func result(answer []byte) (json.RawMessage, error) {
	f, ok := jsonrpc.Fields(answer, "result", "error")
	if !ok || f[1] != nil || f[0] == nil || string(f[0]) == "null" {
		return nil, errors.New("no result")
	}
	return f[0], nil
}

// tip is an upstream's answer to eth_getBlockByNumber("latest", false): its block number and hash.
type tip struct {
	up     string
	number uint64
	hash   string
}

// blockAt asks up for its block at n (tag: "latest" when n is 0) and returns its number and hash.
func (ss *Subs) blockAt(ctx context.Context, chain, up string, n uint64) (tip, bool) {
	call := blockCall(0, n)
	if n == 0 {
		call.Params = json.RawMessage(`["latest",false]`)
	}
	answers, err := ss.follow.Batch(ctx, chain, up, []jsonrpc.Call{call})
	if err != nil {
		return tip{}, false
	}
	res, err := result(answers[0])
	if err != nil {
		return tip{}, false
	}
	f, ok := jsonrpc.Fields(res, "number", "hash")
	if !ok || f[0] == nil || f[1] == nil {
		return tip{}, false
	}
	num, ok1 := jsonrpc.String(f[0])
	h, ok2 := jsonrpc.String(f[1])
	v, err := strconv.ParseUint(strings.TrimPrefix(num, "0x"), 16, 64)
	if !ok1 || !ok2 || err != nil || !strings.HasPrefix(num, "0x") || (n != 0 && v != n) {
		return tip{}, false
	}
	return tip{up: up, number: v, hash: h}, true
}

// look decides the head the follower follows, on its own look at the chain rather than the table's verified
// height alone (which moves at health checks): each upstream in rotation is asked for its latest block, at once
// (one small batch each). A height above the verified one (verified) is followed only when two upstreams in
// rotation agree on its hash: the lower of the two highest answers, the higher one asked for its block at that
// height when it is above it. One upstream in rotation: its word, never more than max_lag_blocks (lag) above the
// verified height (the table believes no more of a lone upstream's jump between its checks). When the answers
// disagree, or only one of several answered (the others failing: no witness either way), the follower falls back
// to the verified height, whose hash headHash decides. Upstreams out of rotation are never asked.
func (ss *Subs) look(ctx context.Context, chain string, verified, lag uint64, ups []string) (subs.Head, bool) {
	tips := make([]tip, len(ups))
	got := make([]bool, len(ups))
	var wg sync.WaitGroup
	for i, up := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tips[i], got[i] = ss.blockAt(ctx, chain, up, 0)
		}()
	}
	wg.Wait()
	var answered []tip
	for i := range tips {
		if got[i] {
			answered = append(answered, tips[i])
		}
	}
	switch {
	case len(ups) == 1 && len(answered) == 1:
		t := answered[0]
		if t.number >= verified && t.number <= verified+lag {
			return subs.Head{Number: t.number, Hash: t.hash}, true
		}
	case len(answered) >= 2:
		slices.SortStableFunc(answered, func(a, b tip) int { return cmp.Compare(b.number, a.number) })
		hi, lo := answered[0], answered[1]
		if lo.number > verified {
			if hi.number != lo.number {
				var ok bool
				if hi, ok = ss.blockAt(ctx, chain, hi.up, lo.number); !ok {
					break
				}
			}
			if hi.hash == lo.hash {
				return subs.Head{Number: lo.number, Hash: lo.hash}, true
			}
		}
	}
	return ss.headHash(ctx, chain, verified, ups, len(answered) == 1)
}

// headHash decides the hash of the verified head at height: the block's hash as two upstreams in rotation answer
// it alike (asked in routing order until two agree); with one upstream in rotation, its word.
func (ss *Subs) headHash(ctx context.Context, chain string, height uint64, ups []string, alone bool) (subs.Head, bool) {
	seen := map[string]int{}
	answered := 0
	for _, up := range ups {
		answers, err := ss.follow.Batch(ctx, chain, up, []jsonrpc.Call{blockCall(0, height)})
		if err != nil {
			continue
		}
		res, err := result(answers[0])
		if err != nil {
			continue
		}
		f, ok := jsonrpc.Fields(res, "hash")
		if !ok || f[0] == nil {
			continue
		}
		h, ok := jsonrpc.String(f[0])
		if !ok {
			continue
		}
		seen[h]++
		answered++
		if seen[h] >= 2 || len(ups) == 1 {
			return subs.Head{Number: height, Hash: h}, true
		}
	}
	if alone && answered == 1 && len(seen) == 1 {
		// The others in rotation did not answer at all (down, refusing): no witness against this one at a height
		// the table verified, as a request at the head would be served by it alone.
		for h := range seen {
			return subs.Head{Number: height, Hash: h}, true
		}
	}
	return subs.Head{}, false
}

// fetch asks up for what plan names in one batch: the headers From..To, and the logs when the plan wants them.
func (ss *Subs) fetch(ctx context.Context, chain, up string, plan subs.Plan, filters []*subs.Filter) ([]json.RawMessage, json.RawMessage, error) {
	var calls []jsonrpc.Call
	for n := plan.From; n <= plan.To; n++ {
		calls = append(calls, blockCall(len(calls), n))
	}
	if plan.Logs {
		calls = append(calls, jsonrpc.Call{ID: json.RawMessage(strconv.Itoa(len(calls))), Method: "eth_getLogs",
			Params: plan.LogsParams(filters)})
	}
	answers, err := ss.follow.Batch(ctx, chain, up, calls)
	if err != nil {
		return nil, nil, err
	}
	headers := make([]json.RawMessage, 0, plan.To-plan.From+1)
	for i := range int(plan.To - plan.From + 1) {
		r, err := result(answers[i])
		if err != nil {
			return nil, nil, err
		}
		headers = append(headers, r)
	}
	var logs json.RawMessage
	if plan.Logs {
		r, err := result(answers[len(answers)-1])
		if err != nil {
			return nil, nil, err
		}
		logs = r
	}
	return headers, logs, nil
}
