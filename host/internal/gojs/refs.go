package gojs

import (
	"math"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// A ref is how Go's syscall/js names a JS value: a float64, or a NaN whose payload holds a type flag and an id
// into the reference table (see syscall/js/js.go).
type ref = uint64

const nanHead = 0x7FF80000

// Type flags in the upper half of a ref.
const (
	flagNone = iota
	flagObject
	flagString
	flagSymbol
	flagFunction
)

// Predefined ids, fixed by syscall/js.
const (
	idNaN = iota
	idZero
	idNull
	idTrue
	idFalse
	idGlobal
	idGo
	predefined
)

// refTable holds the JS values Go has references to, with Go's reference counts. Ids of released values are
// reused, so a program that releases what it takes keeps the table flat.
type refTable struct {
	made   uint64 // references made to a value Go held none to: each a finalizer in Go
	values []jsrt.Value
	counts []int
	ids    map[any]uint32
	free   []uint32
}

func newRefTable(global, goObj jsrt.Value) *refTable {
	t := &refTable{
		values: []jsrt.Value{math.NaN(), 0.0, nil, true, false, global, goObj},
		counts: make([]int, predefined),
		ids:    map[any]uint32{global: idGlobal, goObj: idGo},
	}
	return t
}

// live is the number of values Go holds beyond the predefined ones.
func (t *refTable) live() int { return len(t.values) - predefined - len(t.free) }

// load returns the value of r.
func (t *refTable) load(r ref) jsrt.Value {
	f := math.Float64frombits(r)
	if r == 0 {
		return jsrt.Undefined
	}
	if !math.IsNaN(f) {
		return f
	}
	id := uint32(r)
	if int(id) >= len(t.values) {
		return jsrt.Undefined
	}
	return t.values[id]
}

// store returns a ref for v, taking one reference on it when it lives in the table.
func (t *refTable) store(v jsrt.Value) ref {
	v = jsrt.Number(v)
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			return nanHead << 32
		}
		if x != 0 {
			return math.Float64bits(x)
		}
		return nanHead<<32 | idZero
	case bool:
		if x {
			return nanHead<<32 | idTrue
		}
		return nanHead<<32 | idFalse
	case nil:
		return nanHead<<32 | idNull
	}
	if v == jsrt.Undefined {
		return 0
	}
	id, ok := t.ids[v]
	if !ok {
		if n := len(t.free); n > 0 {
			id = t.free[n-1]
			t.free = t.free[:n-1]
			t.values[id] = v
			t.counts[id] = 0
		} else {
			id = uint32(len(t.values))
			t.values = append(t.values, v)
			t.counts = append(t.counts, 0)
		}
		t.ids[v] = id
		t.made++
	}
	if id >= predefined {
		t.counts[id]++
	}
	return (nanHead|ref(typeFlag(v)))<<32 | ref(id)
}

// release drops one of Go's references to id (syscall/js.finalizeRef).
func (t *refTable) release(id uint32) {
	if id < predefined || int(id) >= len(t.values) || t.counts[id] == 0 {
		return
	}
	t.counts[id]--
	if t.counts[id] == 0 {
		delete(t.ids, t.values[id])
		t.values[id] = nil
		t.free = append(t.free, id)
	}
}

func typeFlag(v jsrt.Value) uint32 {
	switch jsrt.TypeOf(v) {
	case "string":
		return flagString
	case "function":
		return flagFunction
	case "object":
		return flagObject
	}
	return flagNone
}
