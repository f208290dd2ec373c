package config

import (
	"strings"

	"github.com/evmlb/evmlb/internal/auth"
)

// Variable is one row of README.md's Configuration table: an environment variable the balancer reads.
type Variable struct {
	// Name is the variable's name, or a prefix followed by "*" ("EVMLB_*": every variable of that prefix).
	Name string
	// Secret: the value must not be shown (a Worker secret, pushed by `evmlb secrets push`); else a plain var.
	Secret bool
}

// Environment is every variable the balancer reads, in README.md's order. It is the one list the hosts use: the
// wazero host lets the process environment override its env file for exactly these (server.OverrideFromEnviron),
// `evmlb secrets push` pushes the secrets among them, and scripts/dev.sh passes the same names to wrangler dev
// (readme_test.go holds README.md and scripts/dev.sh to it).
var Environment = []Variable{
	{EnvUpstreams, true},
	{EnvClientKeys, true},
	{auth.EnvPassword, true},
	{auth.EnvUser, false},
	{auth.EnvMetricsToken, true},
	{"EVMLB_*", false},
}

// IsVariable says whether name is one of Environment's variables (an EVMLB_… name included).
func IsVariable(name string) bool {
	for _, v := range Environment {
		if p, ok := strings.CutSuffix(v.Name, "*"); ok && strings.HasPrefix(name, p) || v.Name == name {
			return true
		}
	}
	return false
}

// Secrets are the names of Environment's secrets, in its order.
func Secrets() []string {
	var out []string
	for _, v := range Environment {
		if v.Secret {
			out = append(out, v.Name)
		}
	}
	return out
}
