package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// Large request bodies are admitted up to EVMLB_MAX_INFLIGHT_BYTES at once; past it they are refused with 503 and
// -32069 instead of growing the runtime's memory. Small requests always pass.
func TestInflightBytesBound(t *testing.T) {
	slow := evmtest.NewNode(t, "slow", 1, 100)
	h := started(t, map[string]string{"EVMLB_MAX_BODY_BYTES": "1048576", "EVMLB_MAX_INFLIGHT_BYTES": "1048576"}, upstream{"eth", "slow", slow.URL})
	slow.SetFault(evmtest.Hang) // holds the first large request in flight until its attempt times out (300 ms, when the test advances the clock)
	large := `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"data":"0x` + strings.Repeat("ab", 300<<10) + `"},"latest"]}`
	calls := slow.Calls()
	first := make(chan int, 1)
	go func() { // not h.post: the harness records bodies without a lock
		r := httptest.NewRequest(http.MethodPost, "/eth", strings.NewReader(large))
		rec := httptest.NewRecorder()
		h.host.ServeHTTP(rec, r)
		first <- rec.Code
	}()
	for slow.Calls() == calls { // until the first request waits on the hung node
		time.Sleep(time.Millisecond)
	}
	status, got := h.post("eth", large+strings.Repeat(" ", 1)) // 600 KiB more would pass 1 MiB
	if status != http.StatusServiceUnavailable || errorCode(t, got) != jsonrpc.ErrBusy.Code {
		t.Errorf("second large request: %d %s, want 503 and %d", status, got, jsonrpc.ErrBusy.Code)
	}
	slow.SetFault(evmtest.None)
	if status, got := h.post("eth", rpcBody); status != http.StatusOK {
		t.Errorf("a small request while a large one is in flight: %d %s", status, got)
	}
	h.host.Clock().Advance(time.Second) // the first request's attempt times out (300 ms, on the host's clock)
	<-first
	if status, got := h.post("eth", large); status != http.StatusOK {
		t.Errorf("a large request once the first is done: %d %s", status, got)
	}
}
