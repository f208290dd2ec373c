// Package auth checks the admin API's HTTP basic authentication.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Environment variables of the admin credentials.
const (
	EnvUser     = "ADMIN_USER"
	EnvPassword = "ADMIN_PASSWORD"
	// DefaultUser is the user name when ADMIN_USER is unset or empty.
	DefaultUser = "admin"
	// Challenge is the WWW-Authenticate value of a 401 answer.
	Challenge = `Basic realm="evmlb"`
)

// Basic holds the admin credentials as SHA-256 digests, so that comparisons take the same time whatever the
// lengths and contents of the attempt.
type Basic struct {
	enabled    bool
	user, pass [sha256.Size]byte
}

// New reads the credentials through getenv. With ADMIN_PASSWORD unset or empty the admin API is disabled.
func New(getenv func(string) string) Basic {
	user := getenv(EnvUser)
	if user == "" {
		user = DefaultUser
	}
	pass := getenv(EnvPassword)
	return Basic{enabled: pass != "", user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass))}
}

// Enabled reports whether a password is configured.
func (b Basic) Enabled() bool { return b.enabled }

// Allow reports whether r carries the right credentials. Both user and password are compared in constant time
// and both comparisons always run.
func (b Basic) Allow(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(u[:], b.user[:]) & subtle.ConstantTimeCompare(p[:], b.pass[:])
	return b.enabled && ok && match == 1
}

// EnvMetricsToken is the environment variable (a secret) of the bearer token that may read /admin/metrics.
const EnvMetricsToken = "METRICS_TOKEN"

// Token is a bearer token held as a SHA-256 digest, compared in constant time.
type Token struct {
	enabled bool
	sum     [sha256.Size]byte
}

// NewToken reads the token named env through getenv; unset or empty disables it.
func NewToken(getenv func(string) string, env string) Token {
	v := getenv(env)
	return Token{enabled: v != "", sum: sha256.Sum256([]byte(v))}
}

// Enabled reports whether a token is configured.
func (t Token) Enabled() bool { return t.enabled }

// Allow reports whether r carries "Authorization: Bearer <token>" with the right token.
func (t Token) Allow(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return t.enabled && subtle.ConstantTimeCompare(got[:], t.sum[:]) == 1
}
