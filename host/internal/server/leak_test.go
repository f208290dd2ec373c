package server

import "testing"

// TestSyumaiWorkersRefsFlat checks the reference table stays flat under a syumai/workers program. It logs the
// Go heap too: syumai/workers v0.33.0 never releases the pull/cancel js.Funcs of each response body stream
// (jsutil.ConvertReaderToReadableStream), so that program's heap grows by ~19 KB per request whatever the host.
func TestSyumaiWorkersRefsFlat(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	s, _ := newServer(t, "workers", "", nil)
	for range 500 {
		expectOK(t, s, "/hello")
	}
	h1 := expectOK(t, s, "/gc")
	expectOK(t, s, "/gc")
	st1 := s.Stats()
	for range n {
		expectOK(t, s, "/hello")
	}
	h2 := expectOK(t, s, "/gc")
	expectOK(t, s, "/gc")
	st2 := s.Stats()
	t.Logf("after %d requests: Go %s → %s; refs %d → %d", n, h1, h2, st1.LiveRefs, st2.LiveRefs)
	if st2.LiveRefs > st1.LiveRefs+16 {
		t.Fatalf("reference table grew: %d → %d", st1.LiveRefs, st2.LiveRefs)
	}
}
