package auth

import (
	"net/http/httptest"
	"testing"
)

func TestAllow(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name       string
		env        map[string]string
		user, pass string
		noAuth     bool
		enabled    bool
		want       bool
	}{
		{"right", map[string]string{EnvPassword: "pw"}, "admin", "pw", false, true, true},
		{"custom user", map[string]string{EnvPassword: "pw", EnvUser: "root"}, "root", "pw", false, true, true},
		{"default user refused when custom", map[string]string{EnvPassword: "pw", EnvUser: "root"}, "admin", "pw", false, true, false},
		{"wrong password", map[string]string{EnvPassword: "pw"}, "admin", "pW", false, true, false},
		{"password prefix", map[string]string{EnvPassword: "pw"}, "admin", "p", false, true, false},
		{"password longer", map[string]string{EnvPassword: "pw"}, "admin", "pw ", false, true, false},
		{"wrong user", map[string]string{EnvPassword: "pw"}, "Admin", "pw", false, true, false},
		{"no header", map[string]string{EnvPassword: "pw"}, "", "", true, true, false},
		{"disabled", map[string]string{}, "admin", "", false, false, false},
		{"disabled, no header", map[string]string{}, "", "", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(env(tc.env))
			r := httptest.NewRequest("GET", "/admin/chains", nil)
			if !tc.noAuth {
				r.SetBasicAuth(tc.user, tc.pass)
			}
			if b.Enabled() != tc.enabled || b.Allow(r) != tc.want {
				t.Errorf("enabled %v allow %v, want %v %v", b.Enabled(), b.Allow(r), tc.enabled, tc.want)
			}
		})
	}
}
