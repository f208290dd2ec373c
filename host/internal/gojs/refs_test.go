package gojs

import (
	"math"
	"testing"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

func TestRefTable(t *testing.T) {
	global, goObj := &jsrt.Plain{}, &jsrt.Plain{}
	tab := newRefTable(global, goObj)
	obj := &jsrt.Plain{}
	for _, v := range []jsrt.Value{jsrt.Undefined, nil, true, false, 0.0, 1.5, -3.0, "s", obj, global} {
		r := tab.store(v)
		if got := tab.load(r); got != v {
			t.Errorf("%v came back as %v", v, got)
		}
	}
	if r := tab.store(math.NaN()); !math.IsNaN(tab.load(r).(float64)) {
		t.Error("NaN")
	}
	if tab.store(0.0)>>32 != nanHead || tab.store(jsrt.Undefined) != 0 {
		t.Error("0 and undefined have fixed refs")
	}
	if f := tab.store("str") >> 32 & 7; f != flagString {
		t.Errorf("string flag %d", f)
	}
	// "s" and obj were stored once each above; the same value shares an id.
	r1, r2 := tab.store(obj), tab.store(obj)
	if r1 != r2 || tab.live() != 3 { // "s", obj, "str"
		t.Fatalf("live %d", tab.live())
	}
	id := uint32(r1)
	for range 3 {
		tab.release(id)
	}
	if tab.live() != 2 {
		t.Fatalf("obj not released: live %d", tab.live())
	}
	if r := tab.store(&jsrt.Plain{}); uint32(r) != id {
		t.Fatal("released id not reused")
	}
	tab.release(idGlobal) // predefined values are never released
	if tab.load(nanHead<<32|flagObject<<32|idGlobal) != global {
		t.Fatal("global released")
	}
}
