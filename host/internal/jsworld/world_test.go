package jsworld

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// onWorld runs fn on a fresh loop with a World and waits until fn calls done.
func onWorld(t *testing.T, fn func(w *World, done func())) {
	t.Helper()
	l := jsrt.NewLoop()
	go l.Run()
	defer l.Post(l.Stop)
	finished := make(chan struct{})
	l.Post(func() {
		w := New(jsrt.NewRealm(l, io.Discard), Config{})
		fn(w, func() { close(finished) })
	})
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
}

func chunkOf(w *World, s string) *jsrt.Uint8Array { return w.realm.NewUint8Array([]byte(s)) }

func TestStreamPullsOnDemand(t *testing.T) {
	var pulls int
	var got []byte
	onWorld(t, func(w *World, done func()) {
		src := w.realm.NewObject("pull", jsrt.NewFunc("pull", func(_ jsrt.Value, a []jsrt.Value) (jsrt.Value, error) {
			c := a[0].(*Controller)
			pulls++
			if pulls > 3 {
				c.Close()
				return jsrt.Undefined, nil
			}
			return jsrt.Undefined, c.Enqueue(chunkOf(w, strings.Repeat("x", pulls)))
		}))
		s, _ := w.streamCtor.Construct([]jsrt.Value{src})
		s.(*ReadableStream).ReadAll(func(data []byte, err jsrt.Value) { got = data; done() })
	})
	if string(got) != "xxxxxx" || pulls != 4 {
		t.Fatalf("%q after %d pulls", got, pulls)
	}
}

func TestPipeDropsEmptyChunks(t *testing.T) {
	var got []string
	onWorld(t, func(w *World, done func()) {
		src := w.NewStream(&nativeSource{start: func(c *Controller) {
			for _, s := range []string{"", "a", "", "b"} {
				c.Enqueue(chunkOf(w, s))
			}
			c.Close()
		}})
		p := w.pipe(src)
		var next func()
		next = func() {
			p.Read().Then(func(res jsrt.Value) {
				if jsrt.Truthy(jsrt.Get(res, "done")) {
					done()
					return
				}
				got = append(got, string(jsrt.Get(res, "value").(*jsrt.Uint8Array).Bytes()))
				next()
			}, nil)
		}
		next()
	})
	if strings.Join(got, "|") != "a|b" {
		t.Fatalf("%q", got)
	}
}

func TestStreamCancelAndError(t *testing.T) {
	var canceled bool
	var reason string
	onWorld(t, func(w *World, done func()) {
		s := w.NewStream(&nativeSource{cancel: func() { canceled = true }})
		s.Cancel(jsrt.Undefined)
		e := w.NewStream(&nativeSource{start: func(c *Controller) { c.Error(w.realm.NewError("broken")) }})
		e.Read().Then(nil, func(r jsrt.Value) { reason = jsrt.ToString(r); done() })
	})
	if !canceled || reason != "Error: broken" {
		t.Fatal(canceled, reason)
	}
}

func TestHeaders(t *testing.T) {
	onWorld(t, func(w *World, done func()) {
		defer done()
		h, _ := w.headersFrom(w.realm.NewObject("X-B", "2", "x-a", "1"))
		h.append("X-A", "3")
		if v, _ := h.get("x-a"); v != "1, 3" {
			t.Errorf("get: %q", v)
		}
		if e := h.sorted(); e[0] != [2]string{"x-a", "1, 3"} || e[1] != [2]string{"x-b", "2"} {
			t.Errorf("sorted: %v", e)
		}
		h.Put("x-a", "9")
		if got := h.HTTP().Values("X-A"); len(got) != 1 || got[0] != "9" {
			t.Errorf("set: %v", got)
		}
	})
}

func TestIDFromNameIsStable(t *testing.T) {
	a, b := IDFromName(classChain, "ethereum"), IDFromName(classUpstream, "ethereum")
	if a == b || len(a) != 64 || a != IDFromName(classChain, "ethereum") || strings.ToLower(a) != a {
		t.Fatal(a, b)
	}
}
