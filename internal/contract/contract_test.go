package contract

import (
	"net/http"
	"testing"
)

func TestCanonicalRequestHeader(t *testing.T) {
	for _, n := range RequestHeaders {
		if got, ok := CanonicalRequestHeader(n); !ok || got != http.CanonicalHeaderKey(n) {
			t.Errorf("%s: %q %v, want %q", n, got, ok, http.CanonicalHeaderKey(n))
		}
	}
	if _, ok := CanonicalRequestHeader("x-other"); ok {
		t.Error("a name Go does not ask for")
	}
}
