package proxy

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/evmlb/evmlb/internal/jsonrpc"
)

// TestNotificationBelowServedHead: eth_blockNumber sent as a notification to an upstream that answers
// notifications (some providers do), answered below the served head, is rewritten to the served head with a null
// id, never `"id":,` (issue 18).
func TestNotificationBelowServedHead(t *testing.T) {
	r := newRig(t, "")
	if status, body := r.serve(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`); status != 200 || !json.Valid([]byte(body)) {
		t.Fatalf("served head: %d %s", status, body)
	}
	r.nodes["a"].SetHeadOffset(-5) // a now says 0x5f, below the 0x64 served
	r.nodes["a"].SetAnswerNotifications(true)
	status, body := r.serve(`{"jsonrpc":"2.0","method":"eth_blockNumber"}`)
	if !json.Valid([]byte(body)) {
		t.Fatalf("not JSON: %d %s", status, body)
	}
	if want := `{"jsonrpc":"2.0","id":null,"result":"0x64"}`; status != 200 || body != want {
		t.Errorf("answered %d %s, want 200 %s", status, body, want)
	}
	// A call with an id gets its own id back in the same rewrite.
	if status, body := r.serve(`{"jsonrpc":"2.0","id":"x","method":"eth_blockNumber"}`); status != 200 || body != `{"jsonrpc":"2.0","id":"x","result":"0x64"}` {
		t.Errorf("with an id: %d %s", status, body)
	}
}

// TestEncodeBatchNotification: a repair batch writes a notification as one (no id member) and a call with its
// own id bytes; the batch is valid JSON either way.
func TestEncodeBatchNotification(t *testing.T) {
	got := string(encodeBatch([]jsonrpc.Call{
		{Method: "eth_call", Params: json.RawMessage(`[]`)},
		{ID: json.RawMessage(`"a"`), Method: "eth_getBalance"},
	}))
	want := `[{"jsonrpc":"2.0","method":"eth_call","params":[]},{"jsonrpc":"2.0","id":"a","method":"eth_getBalance"}]`
	if got != want || !json.Valid([]byte(got)) {
		t.Errorf("encodeBatch: %s, want %s", got, want)
	}
}

// TestBatchRepairWithNotification: a batch holding a notification, whose call's element is repaired on the next
// upstream, answers the call only, with its id, in valid JSON; the notification is not asked again.
func TestBatchRepairWithNotification(t *testing.T) {
	for _, notes := range []bool{false, true} {
		r := newRig(t, "")
		r.nodes["a"].SetMissingData("eth_getBalance")
		r.nodes["a"].SetAnswerNotifications(notes)
		status, body := r.serve(`[{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x1","latest"]},{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0x0","latest"]}]`)
		var elems []struct {
			ID     json.RawMessage
			Result struct{ Node string }
		}
		if status != 200 || !json.Valid([]byte(body)) || json.Unmarshal([]byte(body), &elems) != nil {
			t.Fatalf("answered notifications %t: %d %s", notes, status, body)
		}
		var ids []string
		for _, e := range elems {
			ids = append(ids, string(e.ID))
			if string(e.ID) == "7" && e.Result.Node != "b" {
				t.Errorf("answered notifications %t: element 7 from %q, want b's: %s", notes, e.Result.Node, body)
			}
		}
		if !slices.Contains(ids, "7") {
			t.Errorf("answered notifications %t: ids %v, want 7 among them: %s", notes, ids, body)
		}
		if got := r.nodes["b"].Methods(); len(got) != 1 {
			t.Errorf("answered notifications %t: b was asked %v, want the call only", notes, got)
		}
	}
}
