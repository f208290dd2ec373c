package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/logsplit"
)

// bigLogs is a fake chain whose eth_getLogs answers are made once, before anything is measured: two logs of
// about 500 bytes (a real log's size: address, three topics, 32 bytes of data, hashes) in every block of
// [0, blocks), asked in pieces of at most width blocks (a wider range is refused "exceed maximum block range").
type bigLogs struct {
	width  uint64
	blocks uint64
	pieces map[logsplit.Span][]byte // answers by range, id 7
	calls  atomic.Int64
}

func newBigLogs(blocks, width uint64) *bigLogs {
	g := &bigLogs{width: width, blocks: blocks, pieces: map[logsplit.Span][]byte{}}
	for from := uint64(0); from < blocks; from += width {
		s := logsplit.Span{From: from, To: min(from+width, blocks) - 1}
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","id":7,"result":[`)
		for n := s.From; n <= s.To; n++ {
			for i := range uint64(2) {
				if n > s.From || i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef","0x%064x","0x%064x"],"data":"0x%064x","blockNumber":"0x%x","transactionHash":"0x%064x","transactionIndex":"0x0","blockHash":"0x%064x","logIndex":"0x%x","removed":false}`,
					n, i, n*2+i, n, n*2+i, n, i)
			}
		}
		b.WriteString(`]}`)
		g.pieces[s] = []byte(b.String())
	}
	return g
}

// size is the length of the merged result: the pieces' results, joined.
func (g *bigLogs) size() (n int) {
	for _, p := range g.pieces {
		n += len(p) - len(`{"jsonrpc":"2.0","id":7,"result":[]}`) + 1 // its logs and a comma
	}
	return n + 1 // the brackets, one comma fewer
}

// merged is the sha-256 of the whole answer: the pieces' logs in block order, joined.
func (g *bigLogs) merged() []byte {
	h := sha256.New()
	h.Write([]byte(`{"jsonrpc":"2.0","id":7,"result":[`))
	for from := uint64(0); from < g.blocks; from += g.width {
		p := g.pieces[logsplit.Span{From: from, To: min(from+g.width, g.blocks) - 1}]
		if from > 0 {
			h.Write([]byte(","))
		}
		h.Write(p[len(`{"jsonrpc":"2.0","id":7,"result":[`) : len(p)-2])
	}
	h.Write([]byte("]}"))
	return h.Sum(nil)
}

// countingWriter is an http.ResponseWriter that keeps the status, the length and hash of the body, and its first
// 4 KiB.
type countingWriter struct {
	header http.Header
	status int
	n      int
	h      hash.Hash
	head   []byte
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(s int)   { w.status = s }
func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += len(b)
	w.h.Write(b)
	if len(w.head) < 4096 {
		w.head = append(w.head, b[:min(len(b), 4096-len(w.head))]...)
	}
	return len(b), nil
}

func (g *bigLogs) answer(body []byte) []byte {
	g.calls.Add(1)
	var c struct{ Params json.RawMessage }
	_ = json.Unmarshal(body, &c)
	s, ok := logsplit.Range(c.Params)
	if p, there := g.pieces[s]; ok && there {
		return p
	}
	return []byte(`{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"exceed maximum block range: ` + strconv.FormatUint(g.width, 10) + `"}}`)
}

// peakHeap runs f and returns the highest HeapAlloc seen above the heap's live size before it (sampled every
// millisecond and at the end) and the bytes f allocated in all.
func peakHeap(f func()) (peak, total uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var top atomic.Uint64
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > top.Load() {
			top.Store(m.HeapAlloc)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	f()
	sample()
	close(done)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return top.Load() - before.HeapAlloc, after.TotalAlloc - before.TotalAlloc
}

// Issue 20: an eth_getLogs whose merged answer would be about 50 MB, asked of upstreams that take 5,000 blocks
// (about 5 MB) at once and refuse the whole range first. With the default logs_max_answer_bytes (32 MiB) it is
// refused with -32074 and the heap stays within a small multiple of the cap; with 64 MiB it is served, byte for
// byte, and the heap's peak above its live size before the request is a small multiple of the answer: under 4 ×
// the larger of the answer and the cap, measured with the collector's default (GOGC=100: the heap holds garbage up
// to its live size before a collection) and, closer to what is live, at GOGC=10. The figures are logged (-v). The
// test platform reads each piece with io.ReadAll (growing its buffer); the client's copy of the answer is not
// kept (a writer that hashes it).
func TestLogsMemory50MB(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	g := newBigLogs(42_000, 5_000)
	answer := g.size()
	for _, c := range []struct {
		name     string
		chain    string
		status   int
		maxPeak  float64 // × the larger of the answer and the cap
		boundary int
	}{
		{"default 32 MiB: refused", "", 413, 4, 32 << 20},
		{"64 MiB: served", `,"logs_max_answer_bytes":67108864`, 200, 4, answer},
	} {
		for _, gc := range []int{100, 10} {
			ns := map[string]*logsNode{"a": {}, "b": {}, "c": {}}
			r := logsRig(t, ns, nil, c.chain)
			for _, name := range []string{"a", "b", "c"} {
				r.nodes[name].SetRawAnswer(g.answer)
			}
			g.calls.Store(0)
			var status int
			var body string
			took := time.Now()
			// The answer is written to a writer that keeps its length, its hash and its first bytes: the client's copy
			// of it is not the balancer's memory.
			w := &countingWriter{header: http.Header{}, h: sha256.New()}
			req, perr := jsonrpc.Parse([]byte(getLogs("0x0", "0x"+strconv.FormatUint(g.blocks-1, 16))), 100)
			if perr != nil {
				t.Fatal(perr)
			}
			old := debug.SetGCPercent(gc)
			peak, total := peakHeap(func() {
				r.plane.Serve(context.Background(), w, "eth", req, []byte(getLogs("0x0", "0x"+strconv.FormatUint(g.blocks-1, 16))))
			})
			debug.SetGCPercent(old)
			status, body = w.status, string(w.head)
			elapsed := time.Since(took)
			t.Logf("GOGC=%d, %s: merged answer %.1f MB; status %d, %d bytes answered; %d upstream calls; heap peak above live %.1f MB (%.2f × the %s), allocated %.1f MB in all, in %v",
				gc, c.name, float64(answer)/1e6, status, w.n, g.calls.Load(), float64(peak)/1e6, float64(peak)/float64(c.boundary),
				map[bool]string{true: "cap", false: "answer"}[c.status != 200], float64(total)/1e6, elapsed.Round(time.Millisecond))
			if status != c.status {
				t.Fatalf("%s: status %d %.200s", c.name, status, body)
			}
			if c.status == 200 && (w.n != answer+len(`{"jsonrpc":"2.0","id":7,"result":}`) || !bytes.Equal(w.h.Sum(nil), g.merged())) {
				t.Fatalf("%s: %d bytes, not the whole answer's %d", c.name, w.n, answer)
			}
			if c.status != 200 && !strings.Contains(body, "-32074") {
				t.Fatalf("%s: %.300s", c.name, body)
			}
			if float64(peak) > c.maxPeak*float64(c.boundary) {
				t.Errorf("%s: heap peak %.1f MB above live, over %.1f × %d", c.name, float64(peak)/1e6, c.maxPeak, c.boundary)
			}
		}
	}
}
