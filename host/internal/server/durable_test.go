package server

import (
	"strings"
	"testing"
	"time"
)

func TestStoragePersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, _ := newServer(t, "probe", dir, nil)
	expectOK(t, s, "/do?name=a&op=put&k=key1&v=one")
	expectOK(t, s, "/do?name=a&op=put&k=key2&v=two")
	expectOK(t, s, "/do?name=b&op=put&k=key1&v=other")
	who1 := expectOK(t, s, "/do?name=a&op=whoami")
	if got := expectOK(t, s, "/do?name=a&op=whoami"); got != who1 {
		t.Fatalf("instance changed without a restart: %s, %s", who1, got)
	}
	s.Close()

	s2, _ := newServer(t, "probe", dir, nil)
	if got := expectOK(t, s2, "/do?name=a&op=get&k=key1"); got != "one" {
		t.Fatalf("after restart: %q", got)
	}
	if got := expectOK(t, s2, "/do?name=a&op=list&prefix=key"); got != "key1=one,key2=two" {
		t.Fatalf("list: %q", got)
	}
	who2 := expectOK(t, s2, "/do?name=a&op=whoami")
	id1, tok1, _ := strings.Cut(who1, " ")
	id2, tok2, _ := strings.Cut(who2, " ")
	if id1 != id2 || len(id1) != 64 || tok1 == tok2 {
		t.Fatalf("ids must be stable and tokens new: %s / %s", who1, who2)
	}
	expectOK(t, s2, "/do?name=a&op=delete&k=key1")
	if got := expectOK(t, s2, "/do?name=a&op=get&k=key1"); got != "<undefined>" {
		t.Fatalf("after delete: %q", got)
	}
	expectOK(t, s2, "/do?name=a&op=deleteAll")
	if got := expectOK(t, s2, "/do?name=a&op=list&prefix="); got != "" {
		t.Fatalf("after deleteAll: %q", got)
	}
	if got := expectOK(t, s2, "/do?name=b&op=get&k=key1"); got != "other" {
		t.Fatalf("objects share storage: %q", got)
	}
}

// waitFor polls the probe's alarm log of instance name until it equals want.
func waitFor(t *testing.T, s *Server, name, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	got := ""
	for time.Now().Before(deadline) {
		got = expectOK(t, s, "/do?name="+name+"&op=get&k=alarms")
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("alarm log %q, want %q", got, want)
}

func TestAlarmFiresAndRetries(t *testing.T) {
	s, _ := newServer(t, "probe", "", nil)
	expectOK(t, s, "/do?name=al&op=put&k=fail&v=yes")
	expectOK(t, s, "/do?name=al&op=setAlarm&in=20")
	if got := expectOK(t, s, "/do?name=al&op=getAlarm"); got != "set" {
		t.Fatal(got)
	}
	waitFor(t, s, "al", "chain:0", 2*time.Second)
	waitFor(t, s, "al", "chain:0,chain:1", 4*time.Second) // first retry after 2 s
	expectOK(t, s, "/do?name=al&op=put&k=fail&v=no")
	waitFor(t, s, "al", "chain:0,chain:1,chain:2", 6*time.Second) // second after 4 s more, succeeds
	time.Sleep(100 * time.Millisecond)
	if got := expectOK(t, s, "/do?name=al&op=getAlarm"); got != "none" {
		t.Fatalf("alarm after success: %s", got)
	}
}

func TestAlarmSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, _ := newServer(t, "probe", dir, nil)
	expectOK(t, s, "/do?name=r&op=setAlarm&in=800")
	s.Close()
	s2, _ := newServer(t, "probe", dir, nil)
	waitFor(t, s2, "r", "chain:0", 5*time.Second)
}
