// Package forward sends one JSON-RPC body to one provider and classifies the outcome. It is the only code that
// talks to providers; what it returns never holds the provider's URL beyond scheme and host.
package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/retry"
)

// Target is where and how to send.
type Target struct {
	// Post sends (platform.Platform.Post): it follows no redirect.
	Post func(ctx context.Context, url string, body []byte, limit int64) (int, []byte, error)
	// URL is the provider's endpoint, a secret.
	URL string
	// Timeout bounds the whole attempt, body included.
	Timeout time.Duration
	// MaxBytes bounds the answer's body.
	MaxBytes int64
	// Now is the clock used to measure Latency.
	Now func() time.Time
	// WithTimeout bounds the attempt (platform.Platform.WithTimeout); nil is context.WithTimeout.
	WithTimeout func(context.Context, time.Duration) (context.Context, context.CancelFunc)
	// Unchecked leaves a 2xx answer's body unchecked (Class OK whatever it holds): the caller classifies it
	// with retry.Answer, which validates it, so that an answer is scanned once, not twice.
	Unchecked bool
}

// Result is an attempt's outcome.
type Result struct {
	// Class is retry.OK when the provider answered with a 2xx status and a JSON body.
	Class retry.Class
	// Status and Body are the provider's answer, unchanged but for its echo of the URL's credentials
	// (RedactAnswer); Body is nil for failures before an answer.
	Status int
	Body   []byte
	// Detail explains a failure for logs, with the URL reduced to scheme and host.
	Detail  string
	Latency time.Duration
}

// Do posts body to t.URL with Content-Type application/json and classifies the outcome with internal/retry's
// classes: transport errors, then the HTTP status, then whether the body is JSON. JSON-RPC errors inside the body
// are not looked at here. A redirect (3xx) is retry.HTTPRedirect; t.Post must not follow it.
func Do(ctx context.Context, t Target, body []byte) Result {
	start := t.Now()
	r := do(ctx, t, body)
	r.Latency = t.Now().Sub(start)
	return r
}

func do(parent context.Context, t Target, body []byte) Result {
	withTimeout := t.WithTimeout
	if withTimeout == nil {
		withTimeout = context.WithTimeout
	}
	ctx, cancel := withTimeout(parent, t.Timeout)
	defer cancel()
	status, b, err := t.Post(ctx, t.URL, body, t.MaxBytes)
	switch {
	case errors.Is(err, platform.ErrTooLarge): // a host that enforced the limit itself
		return Result{Class: retry.TooLarge, Detail: "answer over " + strconv.FormatInt(t.MaxBytes, 10) + " bytes"}
	case err != nil:
		return failure(parent, ctx, err, t.URL)
	case int64(len(b)) > t.MaxBytes:
		return Result{Class: retry.TooLarge, Status: status, Detail: "answer over " + strconv.FormatInt(t.MaxBytes, 10) + " bytes"}
	}
	c := retry.HTTPStatus(status)
	if c != retry.OK || bytes.Contains(b, errorMember) {
		b = RedactAnswer(b, t.URL)
	}
	if c != retry.OK {
		return Result{Class: c, Status: status, Body: b, Detail: "HTTP " + strconv.Itoa(status)}
	}
	if !t.Unchecked && !json.Valid(b) {
		return Result{Class: retry.NonJSON, Status: status, Body: b, Detail: "answer is not JSON"}
	}
	return Result{Status: status, Body: b}
}

// errorMember marks an answer that may hold a provider's own text: an error's message or data.
var errorMember = []byte(`"error"`)

// Redacted stands in an answer for a credential of the provider's URL.
const Redacted = "[redacted]"

// RedactAnswer replaces in b every credential of rawURL (Credentials) with Redacted. Providers' refusals quote
// what they were sent: "invalid API key <key>", the request's URL, a project id; passed on to a client, such an
// answer would hand it the operator's key. A credential is text without quotes or backslashes, so a JSON string
// holding one stays a JSON string. b is changed only when it holds one.
func RedactAnswer(b []byte, rawURL string) []byte {
	creds, ok := credentials.Load(rawURL)
	if !ok {
		creds, _ = credentials.LoadOrStore(rawURL, Credentials(rawURL))
	}
	for _, c := range creds.([]string) {
		if bytes.Contains(b, []byte(c)) {
			b = bytes.ReplaceAll(b, []byte(c), []byte(Redacted))
		}
	}
	return b
}

// credentials holds Credentials by URL: an error answer (a revert of an eth_call, say) is common, a URL's parse
// on each is not needed. The URLs are the configuration's, so the map stays small.
var credentials sync.Map

// Credentials are the parts of rawURL that may be a credential, as written in the URL and unescaped, longest
// first: the user-info's name and password, each path segment, each query value and the fragment that look like
// a key (credentialLike). Scheme, host and port are not: they are shown (config.Redact).
func Credentials(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	var out []string
	add := func(s string) {
		for _, v := range []string{s, unescape(s)} {
			if credentialLike(v) && !slices.Contains(out, v) && !strings.ContainsAny(v, `"\`) {
				out = append(out, v)
			}
		}
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		add(seg)
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		_, v, _ := strings.Cut(kv, "=")
		add(v)
	}
	add(u.EscapedFragment())
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

func unescape(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

// credentialLike reports whether s may be a key: 20 characters or more, or 8 or more mixing letters and digits
// (providers' keys, project ids and tokens are long random strings; "v2", "mainnet" and "rpc" are not).
func credentialLike(s string) bool {
	if len(s) >= 20 {
		return true
	}
	if len(s) < 8 {
		return false
	}
	letter, digit := false, false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		}
	}
	return letter && digit
}

// failure classifies a transport error: the caller's cancellation, else as retry.Transport says.
func failure(parent, attempt context.Context, err error, rawURL string) Result {
	if parent.Err() != nil {
		return Result{Class: retry.Canceled, Detail: "caller canceled"}
	}
	timedOut := attempt.Err() != nil || errors.Is(err, context.DeadlineExceeded)
	c := retry.Transport(err, timedOut)
	if c == retry.Timeout {
		return Result{Class: c, Detail: "no answer within the attempt timeout"}
	}
	return Result{Class: c, Detail: Scrub(err, rawURL)}
}

// Scrub returns err's message without the secret parts of rawURL: a *url.Error is unwrapped (its message holds
// the whole URL), then user-info, path, query and fragment, and the URL itself, are cut from what is left.
func Scrub(err error, rawURL string) string {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	if err == nil {
		return "unknown error"
	}
	msg := err.Error()
	secrets := []string{rawURL}
	if u, perr := url.Parse(rawURL); perr == nil {
		secrets = append(secrets, u.String(), u.User.String(), u.RawQuery, u.Fragment, u.EscapedPath(), u.Path)
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	for _, s := range secrets {
		if len(s) > 1 {
			msg = strings.ReplaceAll(msg, s, config.Redact(rawURL))
		}
	}
	return msg
}
