//go:build js && wasm

// Command cachego is a test program for the host's cache operation (CONTRACT.md §4; a test fixture, never
// shipped): the balancer's binding (worker/jsbind) and hostcall.EdgeCache, nothing else, so that e2e can show
// the operation working in each host (under `wrangler dev`, miniflare's local cache; in the wazero host, its
// shared cache) before the balancer uses it, and time it. Keys are the agreed form, an https URL on the
// request's own host.
//
//	POST /put?k=NAME&ttl=SECONDS (body: the entry)   204, or 500 and the error
//	GET  /match?k=NAME                               200 and the entry (x-cache: hit), 404 (miss), 500 and the error
//	POST /delete?k=NAME                              204, or 500 and the error
//	GET  /key?k=URL                                  a match of that raw key: "hit", "miss" or the error
//	GET  /bench?n=N&bytes=B                          N puts of B bytes, then N matches of them, in this one call:
//	                                                 "put_p50_us=… match_p50_us=… put_mean_us=… match_mean_us=…",
//	                                                 the op's time as Go sees it (workerd's clock moves in whole
//	                                                 milliseconds, and only at I/O: the means are the finer figure)
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/evmlb/evmlb/internal/hostcall"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

func main() {
	cache := hostcall.EdgeCache{Limit: 16 << 20}
	jsbind.Serve(jsbind.Handlers{
		MaxBodyBytes: 16 << 20,
		Fetch: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			q := r.URL.Query()
			key := func(name string) string { return "https://" + r.Host + "/__evmlb/cache/test/0/" + name }
			fail := func(err error) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, err.Error())
			}
			switch r.URL.Path {
			case "/put":
				body, err := io.ReadAll(r.Body)
				if err != nil {
					fail(err)
					return
				}
				ttl, _ := strconv.Atoi(q.Get("ttl"))
				if err := cache.Put(ctx, key(q.Get("k")), body, time.Duration(ttl)*time.Second); err != nil {
					fail(err)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			case "/match":
				b, ok, err := cache.Match(ctx, key(q.Get("k")))
				switch {
				case err != nil:
					fail(err)
				case !ok:
					w.WriteHeader(http.StatusNotFound)
				default:
					w.Header().Set("x-cache", "hit")
					_, _ = w.Write(b)
				}
			case "/delete":
				if err := cache.Delete(ctx, key(q.Get("k"))); err != nil {
					fail(err)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			case "/key":
				_, ok, err := cache.Match(ctx, q.Get("k"))
				switch {
				case err != nil:
					_, _ = io.WriteString(w, err.Error())
				case ok:
					_, _ = io.WriteString(w, "hit")
				default:
					_, _ = io.WriteString(w, "miss")
				}
			case "/bench":
				n, _ := strconv.Atoi(q.Get("n"))
				size, _ := strconv.Atoi(q.Get("bytes"))
				body := make([]byte, size)
				puts, matches := make([]time.Duration, n), make([]time.Duration, n)
				t0 := time.Now()
				for i := range n {
					start := time.Now()
					if err := cache.Put(ctx, key(fmt.Sprintf("bench-%d", i)), body, time.Minute); err != nil {
						fail(err)
						return
					}
					puts[i] = time.Since(start)
				}
				t1 := time.Now()
				for i := range n {
					start := time.Now()
					if _, ok, err := cache.Match(ctx, key(fmt.Sprintf("bench-%d", i))); err != nil || !ok {
						fail(fmt.Errorf("match %d: %v %v", i, ok, err))
						return
					}
					matches[i] = time.Since(start)
				}
				t2 := time.Now()
				fmt.Fprintf(w, "put_p50_us=%d match_p50_us=%d put_mean_us=%d match_mean_us=%d", p50(puts).Microseconds(),
					p50(matches).Microseconds(), t1.Sub(t0).Microseconds()/int64(n), t2.Sub(t1).Microseconds()/int64(n))
			default:
				w.WriteHeader(http.StatusNoContent) // the hosts' readiness check
			}
		}),
		Alarm: func(context.Context, string, string, int) error { return nil },
	})
	workers.Ready()
	select {}
}

func p50(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}
