package jsworld

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// fetch honours init.redirect as workerd does: "manual" returns the 3xx as it is and the server it points to
// receives nothing; "error" rejects; "follow" (the default) follows.
func TestFetchRedirectModes(t *testing.T) {
	var trapHits atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trapHits.Add(1)
		_, _ = w.Write([]byte("trap"))
	}))
	defer trap.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trap.URL, http.StatusTemporaryRedirect)
	}))
	defer up.Close()

	for _, tc := range []struct {
		mode   string // "" leaves redirect out of init
		status int    // 0: the fetch rejects
		hits   int64
	}{
		{"manual", http.StatusTemporaryRedirect, 0},
		{"error", 0, 0},
		{"follow", http.StatusOK, 1},
		{"", http.StatusOK, 1},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			trapHits.Store(0)
			var status int
			var location string
			var rejected string
			onWorld(t, func(w *World, done func()) {
				init := w.realm.NewObject("method", "POST", "body", w.realm.NewUint8Array([]byte(`{}`)))
				if tc.mode != "" {
					init.Set("redirect", tc.mode)
				}
				p, _ := w.fetch([]jsrt.Value{up.URL + "/v1/key", init})
				p.(*jsrt.Promise).Then(func(v jsrt.Value) {
					res := v.(*Response)
					status = res.Status
					location, _ = res.Headers.get("location")
					res.Body.ReadAll(func([]byte, jsrt.Value) { done() })
				}, func(reason jsrt.Value) { rejected = errorMessage(reason); done() })
			})
			if status != tc.status || trapHits.Load() != tc.hits {
				t.Fatalf("status %d (rejected %q), trap hit %d times; want %d and %d", status, rejected, trapHits.Load(), tc.status, tc.hits)
			}
			if tc.mode == "manual" && location != trap.URL {
				t.Errorf("Location %q", location)
			}
		})
	}
	onWorld(t, func(w *World, done func()) {
		defer done()
		if _, err := w.newRequest([]jsrt.Value{up.URL, w.realm.NewObject("redirect", "sideways")}); err == nil {
			t.Error("redirect \"sideways\" accepted")
		}
		r, _ := w.newRequest([]jsrt.Value{up.URL, w.realm.NewObject("redirect", "manual")})
		if r2, _ := w.newRequest([]jsrt.Value{r}); jsrt.Get(r2, "redirect") != "manual" {
			t.Error("new Request(request) lost the redirect mode")
		}
	})
}
