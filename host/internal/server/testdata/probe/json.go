//go:build js && wasm

package main

import (
	"sort"
	"strconv"

	"github.com/evmlb/evmlb/internal/contract"
)

// The protocol's JSON, by hand (internal/contract's writer and reader, as app.wasm's): encoding/json's
// reflection costs about 100 µs per call in wasm, which would show in the host's benchmarks as the host's cost.

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
		b = contract.AppendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = contract.AppendString(b, v)
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
				b = contract.AppendString(b, s)
			}
			b = append(b, ']')
		case []any:
			b = append(b, '[')
			for j, s := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = contract.AppendString(b, s.(string))
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
