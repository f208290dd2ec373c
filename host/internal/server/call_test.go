package server

import (
	"io"
	"testing"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// TestMessageAfterHostEnded: when the host ends a call itself (its runtime died), a message Go had already on
// its way is dropped, not counted as a violation; after Go's own done, any message is one.
func TestMessageAfterHostEnded(t *testing.T) {
	s := &Server{log: io.Discard}
	rt := &runtime{calls: map[*call]struct{}{}, loop: jsrt.NewLoop(nil), byNum: map[uint32]*call{}}
	newCall := func() *call {
		c := s.newCall(rt, &executor{owned: true, wake: make(chan struct{}, 1)}, contract.CallAlarm, "chain") // nobody drains: the test handles
		c.answerTo = func(result) {}
		rt.calls[c] = struct{}{}
		return c
	}

	c := newCall()
	c.handle(event{c: c, dead: "Go runtime exited"})
	if late, imposed := c.x.pushMessage(c, &message{op: "done"}); !late || !imposed {
		t.Fatalf("done after the host ended the call: late %v, imposed %v; want dropped quietly", late, imposed)
	}

	c = newCall()
	if late, _ := c.x.pushMessage(c, &message{op: "done"}); late {
		t.Fatal("the first done was refused")
	}
	c.handle(event{c: c, dead: "Go runtime exited"}) // the news arrives after Go's done
	if late, imposed := c.x.pushMessage(c, &message{op: "sleep"}); !late || imposed {
		t.Fatalf("message after Go's done: late %v, imposed %v; want a violation", late, imposed)
	}
}
