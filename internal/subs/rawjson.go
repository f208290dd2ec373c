package subs

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// member is one member of a JSON object: its key, unescaped, and its value's raw bytes.
type member struct {
	key   string
	value json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// members lists the members of the JSON object raw in order, values as sub-slices of raw.
func members(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errNotObject
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errNotObject
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ms = append(ms, member{k, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the object")
	}
	return ms, nil
}

// object writes ms back as one JSON object, values unchanged.
func object(ms []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key) // a string always marshals
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// str is the JSON string value v, or "" and false.
func str(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// quantity reads a JSON string holding an Ethereum quantity (0x-prefixed hex, no leading zeros but "0x0",
// at most 64 bits).
func quantity(v json.RawMessage) (uint64, bool) {
	s, ok := str(v)
	if !ok {
		return 0, false
	}
	return hexUint(s)
}

func hexUint(s string) (uint64, bool) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || h == "" || len(h) > 16 || len(h) > 1 && h[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(h); i++ {
		d, ok := hexDigit(h[i])
		if !ok {
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexQuantity is n as an Ethereum quantity.
func hexQuantity(n uint64) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0x0"
	}
	var b [18]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = digits[n&15]
		n >>= 4
	}
	i -= 2
	b[i], b[i+1] = '0', 'x'
	return string(b[i:])
}

// hexData reads s as 0x-prefixed hex of exactly n bytes and returns it in lower case; err is geth's text
// (hexutil.Decode's, then the length check of eth/filters' decodeAddress and decodeTopic).
func hexData(s string, n int, what string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("empty hex string")
	case len(s) < 2 || s[0] != '0' || s[1] != 'x' && s[1] != 'X':
		return "", errors.New("hex string without 0x prefix")
	case len(s)%2 != 0:
		return "", errors.New("hex string of odd length")
	}
	for i := 2; i < len(s); i++ {
		if _, ok := hexDigit(s[i]); !ok {
			return "", errors.New("invalid hex string")
		}
	}
	if got := (len(s) - 2) / 2; got != n {
		return "", errors.New("hex has invalid length " + itoa(got) + " after decoding; expected " + itoa(n) + " for " + what)
	}
	return "0x" + strings.ToLower(s[2:]), nil
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
