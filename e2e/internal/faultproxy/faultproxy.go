// Package faultproxy is an HTTP proxy of the end-to-end tests that stands in
// front of one EVM node and can misbehave on demand. Several proxies in front
// of one anvil make several upstreams of one chain; each can be switched at
// run time to refuse connections, answer 500 or 429, answer something that is
// not JSON, hang, redirect, lag behind the head, claim a head it does not have, claim
// another chain id, answer "header not found", stand in front of a node
// restarted at block 0, hand a request to the node and then reset the
// connection (AcceptReset), or cap eth_getLogs as a provider does (SetLogsLimit).
// It counts the requests it receives per JSON-RPC method,
// so a test can prove a write was sent once.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

// Kind is a fault the proxy can inject.
type Kind int

// The faults. Lag and a wrong chain id are not Kinds but rewrites set with
// SetHeightOffset and SetChainID; they combine with Pass.
const (
	// Pass forwards requests to the node.
	Pass Kind = iota
	// Refuse closes the listener and every open connection: new connections
	// are refused. It applies to every request whatever the methods given.
	Refuse
	// HTTP500 answers 500 Internal Server Error with a text body.
	HTTP500
	// HTTP429 answers 429 Too Many Requests with Retry-After.
	HTTP429
	// NonJSON answers 200 with an HTML body.
	NonJSON
	// Hang reads the request and answers nothing until the client gives up or
	// the proxy closes.
	Hang
	// HeaderNotFound answers 200 with the JSON-RPC error {-32000, "header not
	// found"} for each request, as a node lacking the block does.
	HeaderNotFound
	// Reset accepts the request and closes the connection without an answer.
	Reset
	// Redirect answers 307 Temporary Redirect to RedirectPath on the proxy
	// itself, which counts what reaches it (RedirectsFollowed) and answers a
	// result no node would: a balancer must neither follow nor serve it.
	Redirect
	// Poison stands for a node that a request kills (issue 18): a request
	// whose body holds the marker set with SetPoison gets its connection reset
	// with no answer, and the proxy then switches to Refuse (the node is
	// down). Requests without the marker pass.
	Poison
	// The answers of issue 18, made by the proxy itself (the node is not
	// asked), each element's result BadResult unless said: answers that do not
	// answer the calls sent, or are not JSON-RPC, which a balancer must never
	// pass on.
	//
	// WrongID answers each call with the id 999999 (a batch: 424242, 424243, …).
	WrongID
	// ArrayForSingle answers a single call with an array of its answer.
	ArrayForSingle
	// ObjectForBatch answers a batch with its first element's answer alone.
	ObjectForBatch
	// ShortBatch answers a batch without its last element (a single call: []).
	ShortBatch
	// LongBatch answers every element and one more with the id 424242 (a
	// single call: an array of two).
	LongBatch
	// DupBatch answers as many elements as the batch has, all with the first
	// one's id.
	DupBatch
	// BadUTF8 answers a result string holding the byte 0xff (not UTF-8).
	BadUTF8
	// Deep answers a result of arrays nested as deep as SetAnswerDepth says
	// (the answer's whole depth, its object included).
	Deep
	// AcceptReset forwards the request to the node, waits for the node's
	// answer, and then resets the client's connection without it: a provider
	// that took the request (a transaction is in the node's pool) and answers
	// a network error (issue 20). Forwarded counts it.
	AcceptReset
	// EchoKey answers 200 with a JSON-RPC error for each request that quotes
	// what it was sent, as providers' refusals do: "invalid API key <the
	// path's key>", the request's URL (path and query) in its data.
	EchoKey
)

// BadResult is the result of the answers the proxy makes for the kinds of
// issue 18.
const BadResult = `"0xbad"`

// RedirectPath is where Redirect points; requests to it are never forwarded.
const RedirectPath = "/redirected-elsewhere"

// RedirectResult is the result the redirect target answers.
const RedirectResult = "redirect-target"

var kindNames = [...]string{"pass", "refuse", "http500", "http429", "nonjson", "hang", "headernotfound", "reset", "redirect", "poison",
	"wrongid", "arrayforsingle", "objectforbatch", "shortbatch", "longbatch", "dupbatch", "badutf8", "deep", "acceptreset",
	"echokey"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options configure a proxy.
type Options struct {
	// Path, when set, is the URL path the proxy requires (a provider's API key
	// in the path, e.g. /v2/KEY); other paths get 401. URL includes it.
	Path string
	// Query, when set, is the raw query the proxy requires (e.g. apikey=KEY);
	// other queries get 401. URL includes it.
	Query string
	// UserInfo, when set, is put in URL as user:password@. The proxy does not
	// check it (clients may send it as basic auth or drop it).
	UserInfo string
}

// Proxy is one running fault proxy.
type Proxy struct {
	opts   Options
	addr   string
	client *http.Client
	closed chan struct{}

	mu       sync.Mutex
	target   string
	closers  []func() // run by Close: nodes the proxy started (ResetNode)
	ln       net.Listener
	srv      *http.Server
	conns    map[net.Conn]struct{}
	kind     Kind
	methods  []string
	offset   int64
	anyBlock bool
	chainID  uint64
	delay    time.Duration
	depth    int
	received map[string]int
	// atLatest counts, per method, the requests whose params name the tag "latest" (CountAtLatest).
	atLatest map[string]int
	// atParam counts, per method and string param (up to 100 bytes), the requests that hold it (CountAt).
	atParam   map[string]int
	forwarded map[string]int
	requests  int
	followed  int
	marker    []byte // Poison's
	// prunedBelow and prunedText: SetStatePruned's (0: off).
	prunedBelow uint64
	prunedText  string
	// logs and logsRefused: SetLogsLimit's caps (zero: off) and its refusals (range, results).
	logs        LogsLimit
	logsRefused [2]int
	poisoned    int // requests that held the marker
	wg          sync.WaitGroup
}

// New starts a proxy for the node at target (an http URL) on a random
// 127.0.0.1 port. The caller must call Close.
func New(target string, opts Options) (*Proxy, error) {
	p := &Proxy{
		target:    target,
		opts:      opts,
		client:    &http.Client{Timeout: 60 * time.Second},
		closed:    make(chan struct{}),
		conns:     map[net.Conn]struct{}{},
		received:  map[string]int{},
		atLatest:  map[string]int{},
		atParam:   map[string]int{},
		forwarded: map[string]int{},
	}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return p, nil
}

// StartT starts a proxy and closes it in t.Cleanup.
func StartT(t testing.TB, target string, opts Options) *Proxy {
	t.Helper()
	p, err := New(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// listen opens the listener on addr and serves it. Called with mu unlocked.
func (p *Proxy) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				p.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(p.conns, c)
			}
		},
	}
	p.mu.Lock()
	p.ln, p.srv, p.addr = ln, srv, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// Addr is host:port of the proxy. It stays the same across Refuse.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// URL is the upstream URL to configure: http://[userinfo@]127.0.0.1:PORT[path][?query].
func (p *Proxy) URL() string {
	u := "http://"
	if p.opts.UserInfo != "" {
		u += p.opts.UserInfo + "@"
	}
	u += p.Addr() + p.opts.Path
	if p.opts.Query != "" {
		u += "?" + p.opts.Query
	}
	return u
}

// SetFault switches the fault. With methods given, the fault applies only to
// requests (or batches) that contain one of them and others pass; without, it
// applies to all. Refuse always applies to all. Switching away from Refuse
// listens again on the same port.
func (p *Proxy) SetFault(kind Kind, methods ...string) error {
	p.mu.Lock()
	prev := p.kind
	p.kind, p.methods = kind, slices.Clone(methods)
	srv, addr := p.srv, p.addr
	var open []net.Conn
	if kind == Refuse && prev != Refuse {
		p.srv, p.ln = nil, nil
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()

	switch {
	case kind == Refuse && prev != Refuse:
		if srv != nil {
			_ = srv.Close() // closes the listener and tracked connections
		}
		for _, c := range open {
			_ = c.Close()
		}
	case kind != Refuse && prev == Refuse:
		var err error
		// The port was just freed; retry briefly if the kernel is slow.
		for range 50 {
			if err = p.listen(addr); err == nil {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("listening again on %s: %w", addr, err)
	}
	return nil
}

// SetPoison switches to Poison with marker: the first request holding it
// takes the proxy down (Refuse) after resetting its connection.
func (p *Proxy) SetPoison(marker string) error {
	p.mu.Lock()
	p.marker = []byte(marker)
	p.mu.Unlock()
	return p.SetFault(Poison)
}

// Poisoned is how many requests holding Poison's marker reached the proxy.
func (p *Proxy) Poisoned() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.poisoned
}

// SetHeightOffset makes the proxy report the head delta blocks away from the
// node's: negative lags (eth_blockNumber answers head+delta, "latest" reads
// are served at that height, and blocks above it are not found), positive
// claims to be ahead (only eth_blockNumber changes). 0 passes.
func (p *Proxy) SetHeightOffset(delta int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offset = delta
}

// SetStatePruned makes the proxy a full node whose state does not reach back (issue 20): a state read
// (eth_getBalance, eth_getCode, eth_getTransactionCount, eth_call, eth_getStorageAt) at a block number below below
// is answered, without asking the node, with the JSON-RPC error -32000 text (a provider's words, such as "missing
// trie node … (path )"). 0 turns it off. It combines with the faults that pass requests on.
func (p *Proxy) SetStatePruned(below uint64, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prunedBelow, p.prunedText = below, text
}

// SetAnyBlock makes the proxy answer 0x0 to eth_getBlockTransactionCountByNumber for any block, without asking
// the node: a liar that "serves" whatever head it claims (issue 17). With SetHeightOffset(+1000) it is the issue's
// liar, whose every height (eth_blockNumber, and the blocks a health check asks of it) is 1,000 above the chain's.
func (p *Proxy) SetAnyBlock(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.anyBlock = on
}

// SetTarget points the proxy at another node.
func (p *Proxy) SetTarget(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = url
}

// ResetNode puts a new anvil behind the proxy, at block 0 and with the chain id
// of the node it replaces: the node was restarted (a devnet restart, a wiped
// node). The new anvil stops when the proxy closes.
func (p *Proxy) ResetNode() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	raw, err := rpc.Call(ctx, p.client, target, "eth_chainId")
	if err != nil {
		return fmt.Errorf("the node's chain id: %w", err)
	}
	id, err := rpc.Quantity(raw)
	if err != nil {
		return err
	}
	n, err := anvil.Start(ctx, anvil.Options{ChainID: id})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.target = n.URL
	p.closers = append(p.closers, n.Stop)
	p.mu.Unlock()
	return nil
}

// SetChainID makes eth_chainId answer id; 0 passes the node's.
func (p *Proxy) SetChainID(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chainID = id
}

// SetDelay delays every answer by d; 0 for none.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Count is how many requests (batch elements count one each) for method the
// proxy received, whatever it answered.
func (p *Proxy) Count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[method]
}

// CountAtLatest is how many requests for method whose params name the block "latest" the proxy received: a
// client's reads at the head, not the health checks' calls (which ask for numbered blocks and "finalized").
func (p *Proxy) CountAtLatest(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.atLatest[method]
}

// CountAt is how many requests for method with the string param param (such as the block "0x10") the proxy
// received: a client's reads at a block, told from the health checks' and the state probe's calls by the block.
func (p *Proxy) CountAt(method, param string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.atParam[method+" "+param]
}

// Forwarded is how many requests for method reached the node.
func (p *Proxy) Forwarded(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwarded[method]
}

// Counts returns a copy of the received counts per method.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyCounts(p.received)
}

// RedirectsFollowed is the number of requests that reached RedirectPath:
// clients that followed a Redirect.
func (p *Proxy) RedirectsFollowed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.followed
}

// Requests is how many HTTP requests the proxy received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// ResetCounts sets every counter to zero.
func (p *Proxy) ResetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received, p.atLatest, p.forwarded, p.requests, p.followed = map[string]int{}, map[string]int{}, map[string]int{}, 0, 0
	p.atParam = map[string]int{}
	p.logsRefused = [2]int{}
}

// Close stops the proxy, releases hanging requests and waits for the server.
// It is safe to call more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return
	default:
	}
	close(p.closed)
	srv := p.srv
	p.srv, p.ln = nil, nil
	closers := p.closers
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	p.wg.Wait()
	for _, c := range closers {
		c()
	}
}

func copyCounts(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// element is one JSON-RPC request of a single request or batch.
type element struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	raw    json.RawMessage
}

// parse splits a body into its requests; batch reports an array body. A body
// that does not parse yields one element with method "<invalid>".
func parse(body []byte) (elems []element, batch bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if json.Unmarshal(trimmed, &raws) == nil {
			for _, r := range raws {
				var e element
				if json.Unmarshal(r, &e) != nil {
					e.Method = "<invalid>"
				}
				e.raw = r
				elems = append(elems, e)
			}
			return elems, true
		}
	}
	var e element
	if json.Unmarshal(trimmed, &e) != nil {
		e.Method = "<invalid>"
	}
	e.raw = json.RawMessage(trimmed)
	return []element{e}, false
}

// resetConn closes the request's connection with a reset, answering nothing.
func resetConn(w http.ResponseWriter) { reset(hijack(w)) }

// hijack takes the request's connection from the server (nil when it cannot).
func hijack(w http.ResponseWriter) net.Conn {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			return c
		}
	}
	return nil
}

// discard is a ResponseWriter that keeps nothing (AcceptReset's).
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// reset closes c with a reset (RST rather than FIN).
func reset(c net.Conn) {
	if c == nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, rpc.MaxBody))
	if err != nil {
		return
	}
	elems, batch := parse(body)
	if r.URL.Path == RedirectPath {
		p.mu.Lock()
		p.followed++
		p.mu.Unlock()
		out := make([]json.RawMessage, len(elems))
		for i, e := range elems {
			out[i] = resultAnswer(e.ID, json.RawMessage(`"`+RedirectResult+`"`))
		}
		writeJSON(w, out, batch)
		return
	}

	p.mu.Lock()
	p.requests++
	for _, e := range elems {
		p.received[e.Method]++
		for _, prm := range e.Params {
			if string(bytes.TrimSpace(prm)) == `"latest"` {
				p.atLatest[e.Method]++
				break
			}
		}
		for _, prm := range e.Params {
			var v string
			if len(prm) <= 102 && json.Unmarshal(prm, &v) == nil {
				p.atParam[e.Method+" "+v]++
			}
		}
	}
	kind, methods, offset, chainID, delay, target, anyBlock := p.kind, p.methods, p.offset, p.chainID, p.delay, p.target, p.anyBlock
	if kind == Poison && len(p.marker) > 0 && bytes.Contains(body, p.marker) {
		p.poisoned++
	}
	p.mu.Unlock()

	if (p.opts.Path != "" && r.URL.Path != p.opts.Path) || (p.opts.Query != "" && r.URL.RawQuery != p.opts.Query) {
		http.Error(w, "invalid API key", http.StatusUnauthorized)
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-p.closed:
			return
		}
	}
	if len(methods) > 0 && !slices.ContainsFunc(elems, func(e element) bool { return slices.Contains(methods, e.Method) }) {
		kind = Pass
	}
	if kind == Poison {
		p.mu.Lock()
		marked := len(p.marker) > 0 && bytes.Contains(body, p.marker)
		p.mu.Unlock()
		if !marked {
			kind = Pass
		} else {
			// Down first, then the reset: no probe the balancer makes on the reset can reach a listener.
			c := hijack(w)
			_ = p.SetFault(Refuse)
			reset(c)
			return
		}
	}
	switch kind {
	case HTTP500:
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	case HTTP429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	case NonJSON:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	case Reset:
		resetConn(w)
		return
	case AcceptReset:
		// The node answers into a writer that keeps nothing; then the client's connection is reset.
		p.forward(discard{}, r, target, elems, batch, offset, chainID, anyBlock)
		resetConn(w)
		return
	case Redirect:
		w.Header().Set("Location", "http://"+p.Addr()+RedirectPath)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"result":"the body of a redirect"}`)
		return
	case WrongID, ArrayForSingle, ObjectForBatch, ShortBatch, LongBatch, DupBatch, BadUTF8, Deep:
		p.mu.Lock()
		depth := p.depth
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(hostile(kind, elems, batch, depth))
		return
	case HeaderNotFound:
		out := make([]json.RawMessage, len(elems))
		for i, e := range elems {
			out[i] = errorAnswer(e.ID, -32000, "header not found")
		}
		writeJSON(w, out, batch)
		return
	case EchoKey:
		key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		out := make([]json.RawMessage, len(elems))
		for i, e := range elems {
			m, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": e.ID, "error": map[string]any{
				"code": -32000, "message": "invalid API key " + key + ": see https://example.invalid/keys",
				"data": map[string]string{"url": "http://" + r.Host + r.URL.String()}}})
			out[i] = m
		}
		writeJSON(w, out, batch)
		return
	}
	p.mu.Lock()
	logs := p.logs
	p.mu.Unlock()
	if (logs.Range > 0 || logs.Results > 0) && !batch && len(elems) == 1 && p.serveLogsLimit(w, r, target, elems[0], logs) {
		return
	}
	p.forward(w, r, target, elems, batch, offset, chainID, anyBlock)
}

// forward sends the requests to the node, applying the lag and chain id
// rewrites, and writes the node's answer.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, target string, elems []element, batch bool, offset int64, chainID uint64, anyBlock bool) {
	// Answers made here for blocks the lagging proxy must pretend not to
	// have (or the liar pretends to have), by element index; the rest go to
	// the node.
	synthetic := map[int]json.RawMessage{}
	if anyBlock {
		for i, e := range elems {
			if e.Method == "eth_getBlockTransactionCountByNumber" {
				synthetic[i] = resultAnswer(e.ID, json.RawMessage(`"0x0"`))
			}
		}
	}
	p.mu.Lock()
	prunedBelow, prunedText := p.prunedBelow, p.prunedText
	p.mu.Unlock()
	if prunedBelow > 0 {
		for i, e := range elems {
			idx, ok := blockParam[e.Method]
			if !ok || idx >= len(e.Params) || strings.HasPrefix(e.Method, "eth_get") && strings.Contains(e.Method, "Block") {
				continue // not a state read
			}
			if n, err := rpc.Quantity(e.Params[idx]); err == nil && n < prunedBelow {
				synthetic[i] = errorAnswer(e.ID, -32000, prunedText)
			}
		}
	}
	var head uint64
	if offset < 0 {
		h, err := p.nodeHead(r.Context(), target)
		if err != nil {
			http.Error(w, "node unreachable", http.StatusBadGateway)
			return
		}
		head = uint64(max(0, int64(h)+offset))
		for i := range elems {
			if a := lagRewrite(&elems[i], head); a != nil {
				synthetic[i] = a
			}
		}
	}
	var send []json.RawMessage
	var sendIdx []int
	for i, e := range elems {
		if _, ok := synthetic[i]; !ok {
			send = append(send, e.raw)
			sendIdx = append(sendIdx, i)
		}
	}
	answers := make([]json.RawMessage, len(elems))
	for i, a := range synthetic {
		answers[i] = a
	}
	if len(send) > 0 {
		var out []byte
		if batch {
			out, _ = json.Marshal(send)
		} else {
			out = send[0]
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, bytes.NewReader(out))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// Pass the client's Content-Type through unchanged: anvil rejects a
		// request without application/json, as some providers do.
		if ct := r.Header.Get("Content-Type"); ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		p.mu.Lock()
		for _, i := range sendIdx {
			p.forwarded[elems[i].Method]++
		}
		p.mu.Unlock()
		resp, err := p.client.Do(req)
		if err != nil {
			http.Error(w, "node unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		nodeBody, err := io.ReadAll(io.LimitReader(resp.Body, rpc.MaxBody))
		if err != nil {
			return
		}
		rewrite := offset != 0 || chainID != 0 || len(synthetic) > 0
		if !rewrite || resp.StatusCode != http.StatusOK {
			// The node's bytes, unchanged.
			if ct := resp.Header.Get("Content-Type"); ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(nodeBody)
			return
		}
		got := []json.RawMessage{nodeBody}
		if batch {
			if err := json.Unmarshal(nodeBody, &got); err != nil {
				w.WriteHeader(resp.StatusCode)
				_, _ = w.Write(nodeBody)
				return
			}
		}
		// Anvil answers in request order; match by position within send.
		for k, i := range sendIdx {
			if k < len(got) {
				answers[i] = rewriteAnswer(elems[i].Method, got[k], offset, chainID)
			}
		}
	}
	writeJSON(w, answers, batch)
}

// nodeHead asks the node for its head.
func (p *Proxy) nodeHead(ctx context.Context, target string) (uint64, error) {
	raw, err := rpc.Call(ctx, p.client, target, "eth_blockNumber")
	if err != nil {
		return 0, err
	}
	return rpc.Quantity(raw)
}

// blockParam gives, for methods that read at a block, the index of the block
// parameter. Methods not listed are forwarded unchanged under lag.
var blockParam = map[string]int{
	"eth_getBlockByNumber":                 0,
	"eth_getHeaderByNumber":                0,
	"eth_getBlockTransactionCountByNumber": 0,
	"eth_getBalance":                       1,
	"eth_getCode":                          1,
	"eth_getTransactionCount":              1,
	"eth_call":                             1,
	"eth_getStorageAt":                     2,
}

// lagRewrite makes e read at head instead of the node's head: a tag meaning
// the head becomes head, a block above head is answered as missing (returned),
// anything else is left alone.
func lagRewrite(e *element, head uint64) json.RawMessage {
	idx, ok := blockParam[e.Method]
	if !ok || idx >= len(e.Params) {
		return nil
	}
	var tag string
	if json.Unmarshal(e.Params[idx], &tag) != nil {
		return nil // a block hash object or something else: leave it
	}
	switch tag {
	case "latest", "pending", "safe", "finalized":
		e.Params[idx] = json.RawMessage(`"` + rpc.Hex(head) + `"`)
	default:
		n, err := rpc.Quantity(e.Params[idx])
		if err != nil || n <= head {
			return nil
		}
		if e.Method == "eth_getBlockByNumber" || e.Method == "eth_getBlockTransactionCountByNumber" {
			return resultAnswer(e.ID, json.RawMessage("null"))
		}
		return errorAnswer(e.ID, -32000, "header not found")
	}
	// Re-encode the element with the rewritten params.
	var obj map[string]json.RawMessage
	if json.Unmarshal(e.raw, &obj) != nil {
		return nil
	}
	obj["params"], _ = json.Marshal(e.Params)
	e.raw, _ = json.Marshal(obj)
	return nil
}

// rewriteAnswer applies the head offset to eth_blockNumber and the chain id to
// eth_chainId in one answer; others are returned unchanged.
func rewriteAnswer(method string, answer json.RawMessage, offset int64, chainID uint64) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(answer, &m) != nil || m["result"] == nil {
		return answer
	}
	switch {
	case method == "eth_blockNumber" && offset != 0:
		n, err := rpc.Quantity(m["result"])
		if err != nil {
			return answer
		}
		m["result"], _ = json.Marshal(rpc.Hex(uint64(max(0, int64(n)+offset))))
	case method == "eth_chainId" && chainID != 0:
		m["result"], _ = json.Marshal(rpc.Hex(chainID))
	default:
		return answer
	}
	out, _ := json.Marshal(m)
	return out
}

// SetAnswerDepth sets how deep Deep's answers nest (2 and more: the
// answer's object and the result's arrays).
func (p *Proxy) SetAnswerDepth(n int) {
	p.mu.Lock()
	p.depth = n
	p.mu.Unlock()
}

// hostile is the answer of one of issue 18's kinds to elems. It is written
// byte by byte: encoding/json would refuse to write some of them.
func hostile(kind Kind, elems []element, batch bool, depth int) []byte {
	answer := func(id json.RawMessage, result string) []byte {
		if id == nil {
			id = json.RawMessage("null")
		}
		return []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + result + `}`)
	}
	result := BadResult
	switch kind {
	case BadUTF8:
		result = "\"0x\xff\""
	case Deep:
		n := max(depth-1, 1)
		result = strings.Repeat("[", n) + strings.Repeat("]", n)
	}
	var out [][]byte
	for i, e := range elems {
		id := e.ID
		switch {
		case kind == WrongID && batch:
			id = json.RawMessage(strconv.Itoa(424242 + i))
		case kind == WrongID:
			id = json.RawMessage("999999")
		case kind == DupBatch:
			id = elems[0].ID
		}
		out = append(out, answer(id, result))
	}
	switch kind {
	case ShortBatch:
		out = out[:len(out)-1]
		batch = true
	case LongBatch:
		out = append(out, answer(json.RawMessage("424242"), result))
		batch = true
	case ArrayForSingle:
		batch = true
	case ObjectForBatch:
		out, batch = out[:1], false
	}
	if !batch && len(out) == 1 {
		return out[0]
	}
	return append(append([]byte("["), bytes.Join(out, []byte(","))...), ']')
}

func resultAnswer(id, result json.RawMessage) json.RawMessage {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"jsonrpc": json.RawMessage(`"2.0"`), "id": id, "result": result})
	return b
}

func errorAnswer(id json.RawMessage, code int, msg string) json.RawMessage {
	if id == nil {
		id = json.RawMessage("null")
	}
	e, _ := json.Marshal(rpc.Error{Code: code, Message: msg})
	b, _ := json.Marshal(map[string]json.RawMessage{"jsonrpc": json.RawMessage(`"2.0"`), "id": id, "error": e})
	return b
}

func writeJSON(w http.ResponseWriter, answers []json.RawMessage, batch bool) {
	w.Header().Set("Content-Type", "application/json")
	if !batch {
		if len(answers) == 1 && answers[0] != nil {
			_, _ = w.Write(answers[0])
			return
		}
		http.Error(w, "no answer", http.StatusBadGateway)
		return
	}
	b, _ := json.Marshal(answers)
	_, _ = w.Write(b)
}

// Fault is a named way for an upstream to be bad, for tables of faults.
type Fault struct {
	Name  string
	Apply func(*Proxy) error
	// Pinned: with most upstreams faulty, only a configured chain id tells
	// the faulty ones (they serve another chain id).
	Pinned bool
}

// Catalog is every fault of the fault table (issue 4's, and issue 8's lies
// about the chain), in a stable order.
var Catalog = []Fault{
	{Name: "refuse", Apply: func(p *Proxy) error { return p.SetFault(Refuse) }},
	{Name: "hang", Apply: func(p *Proxy) error { return p.SetFault(Hang) }},
	{Name: "http500", Apply: func(p *Proxy) error { return p.SetFault(HTTP500) }},
	{Name: "http429", Apply: func(p *Proxy) error { return p.SetFault(HTTP429) }},
	{Name: "nonjson", Apply: func(p *Proxy) error { return p.SetFault(NonJSON) }},
	{Name: "headernotfound", Apply: func(p *Proxy) error { return p.SetFault(HeaderNotFound) }},
	{Name: "stale50", Apply: func(p *Proxy) error { p.SetHeightOffset(-50); return nil }},
	{Name: "wrongchain", Apply: func(p *Proxy) error { p.SetChainID(999999); return nil }, Pinned: true},
	// Issue 8: a provider that switches networks (another chain id, its head
	// 50 above), one that claims a head a million blocks above the chain's,
	// one whose node restarted at block 0.
	{Name: "chainswitch", Apply: func(p *Proxy) error { p.SetChainID(0xdead); p.SetHeightOffset(+50); return nil }, Pinned: true},
	{Name: "ahead1m", Apply: func(p *Proxy) error { p.SetHeightOffset(+1_000_000); return nil }},
	{Name: "reset0", Apply: func(p *Proxy) error { return p.ResetNode() }},
}
