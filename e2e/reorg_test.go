package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/anvil"
)

// staleCache stands where the balancer stands in the reorg check, for the check's own test: it forwards every
// request to the node, but answers reads at a block number (eth_getBlockByNumber, eth_getBalance, eth_call with a
// hex number) from a cache it never empties, the bug issue 19 forbids. With corrupt set it caches nothing and
// changes every balance it answers instead: an answer the node never gave.
type staleCache struct {
	node    string
	corrupt bool
	mu      sync.Mutex
	m       map[string]json.RawMessage
}

func (c *staleCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		http.Error(w, "a single call only", http.StatusBadRequest)
		return
	}
	cacheable := false
	switch req.Method {
	case "eth_getBlockByNumber", "eth_getBalance", "eth_call":
		for _, p := range req.Params {
			if bytes.HasPrefix(p, []byte(`"0x`)) && len(p) < 20 { // a block number, not an address or data
				cacheable = true
			}
		}
	}
	params, _ := json.Marshal(req.Params)
	key := req.Method + string(params)
	answer := func(result json.RawMessage) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":` + string(result) + `}`))
	}
	c.mu.Lock()
	hit, ok := c.m[key]
	c.mu.Unlock()
	cacheable = cacheable && !c.corrupt
	if ok && cacheable {
		answer(hit)
		return
	}
	resp, err := http.Post(c.node, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(out, &m) != nil || m.Result == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	if c.corrupt && req.Method == "eth_getBalance" {
		m.Result = json.RawMessage(`"0x123456789"`)
	}
	if cacheable {
		c.mu.Lock()
		c.m[key] = m.Result
		c.mu.Unlock()
	}
	answer(m.Result)
}

// TestReorgCheckerFails: the reorg check reports answers from replaced blocks when what it reads through caches
// reads by number forever, and answers the node never gave when it changes them; and passes straight to the node.
func TestReorgCheckerFails(t *testing.T) {
	_, err := anvil.Binary()
	need(t, err)
	for _, tc := range []struct {
		name           string
		proxy          bool
		corrupt        bool
		reorged, wrong bool // whether the check must find some
	}{
		{name: "direct"},
		{name: "stale-cache", proxy: true, reorged: true},
		{name: "corrupt", proxy: true, corrupt: true, wrong: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			n := anvil.StartT(t, 31337)
			if _, err := n.Mine(ctx, 100); err != nil {
				t.Fatal(err)
			}
			url := n.URL
			if tc.proxy {
				srv := httptest.NewServer(&staleCache{node: n.URL, corrupt: tc.corrupt, m: map[string]json.RawMessage{}})
				defer srv.Close()
				url = srv.URL
			}
			st, err := runReorgLoop(ctx, n, url, nil, 8*time.Second, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", tc.name, st)
			for _, f := range st.Failures[:min(3, len(st.Failures))] {
				t.Logf("reported: %s", f)
			}
			if (st.Reorged > 0) != tc.reorged || (st.Wrong > 0) != tc.wrong {
				t.Errorf("%s: %d reorged answers, %d wrong answers; want some reorged: %v, some wrong: %v\n%s",
					tc.name, st.Reorged, st.Wrong, tc.reorged, tc.wrong, strings.Join(st.Failures, "\n"))
			}
			if st.Reorgs < 5 || st.AfterReorg == 0 {
				t.Errorf("too little happened: %s", st)
			}
		})
	}
}
