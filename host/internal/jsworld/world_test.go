package jsworld

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// onWorld runs fn on a fresh loop with a World and waits until fn returns.
func onWorld(t *testing.T, cfg Config, fn func(w *World)) {
	t.Helper()
	l := jsrt.NewLoop(nil)
	go l.Run()
	defer l.Post(l.Stop)
	finished := make(chan struct{})
	l.Post(func() {
		defer close(finished)
		fn(New(jsrt.NewRealm(l, io.Discard), cfg))
	})
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
}

func TestLegacyIOIsTrapped(t *testing.T) {
	var violations []string
	cfg := Config{Env: map[string]string{"UPSTREAM_CONFIG": "[]", "CHAIN": "not a namespace"},
		MemoryBytes: func() uint32 { return 65536 },
		Violation:   func(what string) { violations = append(violations, what) }}
	onWorld(t, cfg, func(w *World) {
		r := w.Realm()
		g := r.Global
		if _, err := jsrt.Invoke(r, g, "fetch", "http://127.0.0.1/"); err == nil || !strings.Contains(jsrt.ToString(jsrt.ThrownValue(r, err)), ErrOutsideProtocol+": fetch()") {
			t.Errorf("fetch: %v", err)
		}
		if _, err := g.Get("Response").(jsrt.Constructor).Construct(nil); err == nil {
			t.Error("new Response() must throw")
		}
		ctx := g.Get("context")
		if _, err := jsrt.Invoke(r, jsrt.Get(ctx, "host"), "state", "id"); err == nil {
			t.Error("context.host.state must throw")
		}
		env := jsrt.Get(ctx, "env")
		if _, err := jsrt.Invoke(r, jsrt.Get(env, "CHAIN"), "idFromName", "eth"); err == nil {
			t.Error("env.CHAIN.idFromName must throw")
		}
		if jsrt.Get(env, "UPSTREAM_CONFIG") != "[]" || jsrt.Get(jsrt.Get(ctx, "host"), "kind") != "wazero" {
			t.Error("env or kind")
		}
		if v, err := jsrt.Invoke(r, jsrt.Get(ctx, "host"), "memoryBytes"); err != nil || v != float64(65536) {
			t.Errorf("context.host.memoryBytes() = %v, %v", v, err)
		}
		// Reading a trap is no violation; only using it is.
		_ = jsrt.Get(g, "setTimeout")
	})
	want := []string{
		ErrOutsideProtocol + ": fetch()",
		ErrOutsideProtocol + ": new Response()",
		ErrOutsideProtocol + ": context.host.state()",
		ErrOutsideProtocol + ": context.env.CHAIN.idFromName()",
	}
	if strings.Join(violations, "|") != strings.Join(want, "|") {
		t.Fatalf("violations %q", violations)
	}
}

func TestFSWritesToLog(t *testing.T) {
	var log strings.Builder
	onWorld(t, Config{Log: &log}, func(w *World) {
		r := w.Realm()
		fs := r.Global.Get("fs")
		if _, err := jsrt.Invoke(r, fs, "writeSync", 2.0, r.NewUint8Array([]byte("line\n"))); err != nil {
			t.Error(err)
		}
		var code jsrt.Value
		cb := jsrt.NewFunc("cb", func(_ jsrt.Value, a []jsrt.Value) (jsrt.Value, error) {
			code = jsrt.Get(jsrt.Arg(a, 0), "code")
			return jsrt.Undefined, nil
		})
		if _, err := jsrt.Invoke(r, fs, "open", "/etc/passwd", 0.0, 0.0, cb); err != nil || code != "ENOSYS" {
			t.Errorf("open: %v %v", err, code)
		}
	})
	if log.String() != "line\n" {
		t.Fatalf("%q", log.String())
	}
}
