package jsrt

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/evmlb/evmlb/host/internal/clock"
)

// onLoop runs fn on a fresh loop and waits until fn calls done.
func onLoop(t *testing.T, fn func(r *Realm, done func())) {
	t.Helper()
	l := NewLoop(nil)
	go l.Run()
	defer l.Post(l.Stop)
	finished := make(chan struct{})
	l.Post(func() { fn(NewRealm(l, io.Discard), func() { close(finished) }) })
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
}

func TestPromiseReactionOrder(t *testing.T) {
	var log []string
	onLoop(t, func(r *Realm, done func()) {
		rec := func(name string) *Func {
			return NewFunc(name, func(_ Value, a []Value) (Value, error) {
				log = append(log, name+"="+ToString(Arg(a, 0)))
				if name == "last" {
					done()
				}
				return Arg(a, 0), nil
			})
		}
		p := r.NewPromise()
		p.then(rec("a"), nil).then(rec("c"), nil).then(rec("last"), nil)
		p.then(rec("b"), nil)
		q := r.Resolved(p) // Promise.resolve(p) is p
		if q != p {
			t.Error("Promise.resolve(promise) must return it")
		}
		// A promise resolved with a thenable adopts it one microtask later.
		thenable := r.NewObject("then", NewFunc("then", func(_ Value, a []Value) (Value, error) {
			return Call(r, Arg(a, 0), Undefined, "T")
		}))
		adopted := r.NewPromise()
		adopted.Resolve(thenable)
		adopted.then(rec("adopted"), nil)
		log = append(log, "sync")
		p.Resolve(1.0)
	})
	want := "sync,a=1,b=1,adopted=T,c=1,last=1"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

func TestRejectionPropagates(t *testing.T) {
	var got string
	onLoop(t, func(r *Realm, done func()) {
		p := r.NewPromise()
		p.then(NewFunc("never", func(Value, []Value) (Value, error) { got = "fulfilled"; return nil, nil }), nil).
			Get("catch").(*Func).Fn(nil, []Value{NewFunc("c", func(_ Value, a []Value) (Value, error) {
			got = ToString(Arg(a, 0))
			done()
			return nil, nil
		})})
		p.Reject(r.NewError("bad"))
	})
	if got != "Error: bad" {
		t.Fatal(got)
	}
}

func TestExecutorThrowRejects(t *testing.T) {
	var got string
	onLoop(t, func(r *Realm, done func()) {
		v, err := r.PromiseCtor.Construct([]Value{NewFunc("ex", func(Value, []Value) (Value, error) {
			return nil, Throw(r.NewTypeError("thrown"))
		})})
		if err != nil {
			t.Error(err)
		}
		v.(*Promise).Then(nil, func(reason Value) { got = ToString(reason); done() })
	})
	if got != "TypeError: thrown" {
		t.Fatal(got)
	}
}

func TestTimersFireInOrder(t *testing.T) {
	var log []string
	onLoop(t, func(r *Realm, done func()) {
		l := r.Loop
		l.SetTimeout(30*time.Millisecond, func() { log = append(log, "30") })
		id := l.SetTimeout(10*time.Millisecond, func() { log = append(log, "cleared") })
		l.SetTimeout(10*time.Millisecond, func() { log = append(log, "10") })
		l.SetTimeout(50*time.Millisecond, func() { done() })
		l.ClearTimeout(id)
	})
	if got := strings.Join(log, ","); got != "10,30" {
		t.Fatal(got)
	}
}

func TestPostFromOtherGoroutines(t *testing.T) {
	l := NewLoop(nil)
	go l.Run()
	n := 0
	done := make(chan struct{})
	for range 100 {
		go l.Post(func() {
			n++
			if n == 100 {
				close(done)
			}
		})
	}
	<-done
	l.Post(l.Stop)
	<-l.Done()
	if l.Post(func() {}) {
		t.Fatal("Post after stop must fail")
	}
}

func TestFormatNumber(t *testing.T) {
	for f, want := range map[float64]string{1: "1", 0.5: "0.5", 1e21: "1e+21", 1.5e-7: "1.5e-7", -2: "-2", 123456789: "123456789"} {
		if got := FormatNumber(f); got != want {
			t.Errorf("%v: %s, want %s", f, got, want)
		}
	}
}

// Waiting sees both the tasks left in the batch being run and those posted since.
func TestWaiting(t *testing.T) {
	l := NewLoop(nil)
	var got []bool
	posted := make(chan struct{})
	for range 3 { // posted before Run: one batch of three
		l.Post(func() { got = append(got, l.Waiting()) })
	}
	l.Post(func() {
		got = append(got, l.Waiting()) // the last of its batch, nothing posted yet
		l.Post(func() {})
		got = append(got, l.Waiting()) // posted during the batch
		close(posted)
	})
	go l.Run()
	<-posted
	done := make(chan struct{})
	l.Post(func() { close(done) })
	<-done
	l.Post(l.Stop)
	<-l.Done()
	if fmt.Sprint(got) != "[true true true false true]" {
		t.Fatalf("Waiting in turn: %v, want [true true true false true]", got)
	}
}

// The loop's timers run on its clock: with a fake one, a timer fires when the clock is advanced to it, not before.
func TestTimersOnTheLoopsClock(t *testing.T) {
	c := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := NewLoop(c)
	go l.Run()
	defer func() { l.Post(l.Stop); <-l.Done() }()
	fired := make(chan time.Time, 1)
	l.Do(func() { l.SetTimeout(5*time.Second, func() { fired <- l.Now() }) })
	c.Advance(4 * time.Second)
	l.Do(func() {}) // the loop has looked at its timers since the clock moved
	select {
	case <-fired:
		t.Fatal("a 5 s timer fired after 4 s")
	default:
	}
	c.Advance(time.Second)
	select {
	case at := <-fired:
		if want := time.Unix(1_700_000_005, 0); !at.Equal(want) {
			t.Fatalf("fired at %v, want %v", at, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timer did not fire once the clock reached it")
	}
}
