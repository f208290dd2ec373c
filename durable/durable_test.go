package durable

import "testing"

func TestRegistry(t *testing.T) {
	made := 0
	r := newRegistry(func(string) *int { made++; v := made; return &v })
	a := r.get("id", "t1")
	if r.get("id", "t1") != a || r.get("id", "") != a {
		t.Error("same instance gave another object")
	}
	b := r.get("id", "t2")
	if b == a || r.get("id", "") != b {
		t.Error("a new instance token kept the old object")
	}
	if r.get("other", "t2") == b {
		t.Error("objects shared across ids")
	}
	r.forget("id")
	if r.get("id", "t2") == b {
		t.Error("forget kept the object")
	}
	if made != 4 {
		t.Errorf("made %d objects", made)
	}
}
