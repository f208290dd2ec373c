package clock

import (
	"slices"
	"testing"
	"time"
)

// Advance runs what comes due in time order, each at its own time, stopped timers not at all, and a timer reset
// at its new time.
func TestFakeAdvance(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := NewFake(start)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	stopped := c.AfterFunc(2*time.Second, at("stopped"))
	moved := c.AfterFunc(time.Second, at("moved"))
	c.AfterFunc(2*time.Second, func() { at("b")(); c.AfterFunc(500*time.Millisecond, at("b+")) })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports whether the timer was pending")
	}
	moved.Reset(10 * time.Second)
	c.Advance(3 * time.Second)
	if want := []string{"a@1s", "b@2s", "b+@2.5s", "c@3s"}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if c.Now() != start.Add(3*time.Second) || c.Pending() != 1 {
		t.Fatalf("now %v, %d pending", c.Now(), c.Pending())
	}
}
