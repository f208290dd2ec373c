//go:build js && wasm

package main

import (
	"errors"
	"sort"
	"strconv"
	"unicode/utf8"
)

// The protocol's JSON, by hand: encoding/json's reflection costs about 100 µs per call in wasm, which would
// show in the host's benchmarks as the host's cost.

// encode writes m (values: string, int, float64, []string) as a JSON object, keys sorted.
func encode(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = appendString(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case float64:
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
		case []string:
			b = append(b, '[')
			for j, s := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, s)
			}
			b = append(b, ']')
		case []any:
			b = append(b, '[')
			for j, s := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, s.(string))
			}
			b = append(b, ']')
		case bool:
			b = strconv.AppendBool(b, v)
		case nil:
			b = append(b, "null"...)
		default:
			panic("probe: cannot encode " + k)
		}
	}
	return string(append(b, '}'))
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

var errJSON = errors.New("not a JSON array of strings")

// decodeStrings reads a JSON array of strings.
func decodeStrings(s string) ([]string, error) {
	if len(s) < 2 || s[0] != '[' {
		return nil, errJSON
	}
	out := []string{}
	i := 1
	if s[i] == ']' {
		return out, nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return nil, errJSON
		}
		i++
		var b []byte
		for {
			if i >= len(s) {
				return nil, errJSON
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c != '\\' {
				b = append(b, c)
				i++
				continue
			}
			if i+1 >= len(s) {
				return nil, errJSON
			}
			switch e := s[i+1]; e {
			case 'u':
				if i+6 > len(s) {
					return nil, errJSON
				}
				n, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return nil, errJSON
				}
				b = utf8.AppendRune(b, rune(n))
				i += 6
				continue
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case 'r':
				b = append(b, '\r')
			default:
				b = append(b, e)
			}
			i += 2
		}
		out = append(out, string(b))
		if i >= len(s) {
			return nil, errJSON
		}
		switch s[i] {
		case ',':
			i++
		case ']':
			return out, nil
		default:
			return nil, errJSON
		}
	}
}
