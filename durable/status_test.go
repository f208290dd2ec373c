package durable

import (
	"testing"

	"github.com/evmlb/evmlb/internal/forward"
	"github.com/evmlb/evmlb/internal/retry"
)

// A failed check's HTTP status reaches the chain's table only when the status is the failure: a 2xx answer
// that failed for its body (non_json, rpc_error) has none, nor has a connection that never answered.
func TestFailedCheckStatusReachesTable(t *testing.T) {
	for _, tc := range []struct {
		res  forward.Result
		want int
	}{
		{forward.Result{Class: retry.HTTPOther, Status: 404}, 404},
		{forward.Result{Class: retry.HTTP5xx, Status: 503}, 503},
		{forward.Result{Class: retry.NonJSON, Status: 200}, 0},
		{forward.Result{Class: retry.Refused}, 0},
	} {
		got := failedStatus(tc.res)
		if got != tc.want {
			t.Errorf("failedStatus(%s, HTTP %d) = %d, want %d", tc.res.Class, tc.res.Status, got, tc.want)
		}
		if row := (Report{Err: tc.res.Class, Status: got}).row(); row.Status != tc.want || row.Err != tc.res.Class {
			t.Errorf("the table's report %+v", row)
		}
	}
}
