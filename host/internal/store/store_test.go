package store

import "testing"

func TestStore(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("a second Open of the same state must fail")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Put("a", []KV{{"k2", "2"}, {"k1", "1"}, {"x", "9"}}))
	must(db.Put("b", []KV{{"k1", "other"}}))
	must(db.SetAlarm(Alarm{ObjectID: "a", Role: "chain", At: 123, Retry: 1}))
	must(db.Close())

	db, err = Open(dir)
	must(err)
	defer db.Close()
	if v, ok, _ := db.Get("a", "k1"); !ok || v != "1" {
		t.Fatal(v, ok)
	}
	kvs, _ := db.List("a", "k", 0)
	if len(kvs) != 2 || kvs[0].Key != "k1" || kvs[1].Key != "k2" {
		t.Fatal(kvs)
	}
	if n, _ := db.Delete("a", []string{"k1", "nope"}); n != 1 {
		t.Fatal(n)
	}
	must(db.DeleteAll("a"))
	if kvs, _ := db.List("a", "", 0); len(kvs) != 0 {
		t.Fatal(kvs)
	}
	if v, _, _ := db.Get("b", "k1"); v != "other" {
		t.Fatal(v)
	}
	al, ok, _ := db.GetAlarm("a")
	if !ok || al.At != 123 || al.Role != "chain" || al.Retry != 1 {
		t.Fatal(al, ok)
	}
	all, _ := db.Alarms()
	if len(all) != 1 || all[0].ObjectID != "a" {
		t.Fatal(all)
	}
	must(db.DeleteAlarm("a"))
	if _, ok, _ := db.GetAlarm("a"); ok {
		t.Fatal("alarm not deleted")
	}
}
