package durable

import "testing"

func TestIsQuantity(t *testing.T) {
	for q, want := range map[string]bool{
		"0x0": true, "0x1b4": true, "0xffffffffffffffff": true, "0xABC": true,
		"": false, "0x": false, "1b4": false, "0x1g": false, "0x10000000000000000": false, "-0x1": false, " 0x1": false,
	} {
		if got := isQuantity(q); got != want {
			t.Errorf("isQuantity(%q) = %v", q, got)
		}
	}
}

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
