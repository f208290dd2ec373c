package clients

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// KeyPrefix starts every key `evmlb keys new` makes: "evmlb_" and 43 characters of base64url (32 random bytes).
const KeyPrefix = "evmlb_"

// NewKey makes a key: KeyPrefix and the unpadded base64url of 32 bytes of crypto/rand.
func NewKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics rather)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the key_sha256 of key: the lowercase hex SHA-256 of its UTF-8 bytes.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// MaxKeyBytes bounds a presented key: a longer one is no key of ours, and is not hashed.
const MaxKeyBytes = 256

// Presentation is how a request presented its key.
type Presentation int

const (
	// NoKey: neither the path nor an Authorization: Bearer header holds one.
	NoKey Presentation = iota
	// OneKey: the path or the header holds one (or both hold the same).
	OneKey
	// Conflict: both hold one, and they differ; or one is not a key (empty Bearer, too long).
	Conflict
)

// Presented takes the key out of a request: pathKey is the last path element after the chain ("" when the path
// is /{chain}); authorization is the Authorization header's value. A Bearer scheme (any case) holds a key; any
// other scheme is not a key (a browser's Basic credentials are ignored).
func Presented(pathKey, authorization string) (string, Presentation) {
	var bearer string
	hasBearer := false
	if scheme, rest, ok := strings.Cut(strings.TrimSpace(authorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
		bearer, hasBearer = strings.TrimSpace(rest), true
	} else if strings.EqualFold(strings.TrimSpace(authorization), "Bearer") {
		hasBearer = true // "Bearer" and nothing: a key was meant, and is missing
	}
	switch {
	case len(pathKey) > MaxKeyBytes || len(bearer) > MaxKeyBytes || (hasBearer && bearer == ""):
		return "", Conflict
	case hasBearer && pathKey != "" && bearer != pathKey:
		return "", Conflict
	case hasBearer:
		return bearer, OneKey
	case pathKey != "":
		return pathKey, OneKey
	}
	return "", NoKey
}

// RedactPath is a request path as logs may show it: a chain path's key (its element after the chain) is replaced
// by "[key]"; /admin/… and / are kept.
func RedactPath(path string) string {
	if path == "/admin" || strings.HasPrefix(path, "/admin/") {
		return path
	}
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "[path]"
	}
	chain, _, more := strings.Cut(rest, "/")
	if !more {
		return path
	}
	return "/" + chain + "/[key]"
}
