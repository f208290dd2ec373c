package jsonrpc

import "encoding/json"

// The readers below take a value of a request (params, or a part of them) and read it as Parse reads a body:
// strictly, keys matched exactly after unescaping. They copy nothing but the strings they return. ok is false when
// raw is not exactly one value of the kind asked for that Parse would accept (a duplicate key, or two keys equal
// under case folding, anywhere in it included).

// Array returns the elements of the JSON array raw, sub-slices of it.
func Array(raw []byte) (elems []json.RawMessage, ok bool) {
	s := scanner{b: raw, elem: -1}
	s.ws()
	if s.i >= len(raw) || raw[s.i] != '[' {
		return nil, false
	}
	s.i++
	s.ws()
	if s.i < len(raw) && raw[s.i] == ']' {
		s.i++
		return nil, s.end()
	}
	for {
		s.ws()
		start := s.i
		if !s.value(1) {
			return nil, false
		}
		elems = append(elems, raw[start:s.i:s.i])
		s.ws()
		if s.i < len(raw) && raw[s.i] == ',' {
			s.i++
			continue
		}
		if !s.expect(']') || !s.end() || s.bad != "" {
			return nil, false
		}
		return elems, true
	}
}

// Fields returns the values, sub-slices of raw, of the members of the JSON object raw whose keys are the names,
// exactly: "FromBlock" is not "fromBlock". A value is nil when its member is absent.
func Fields(raw []byte, names ...string) (values []json.RawMessage, ok bool) {
	s := scanner{b: raw, elem: -1}
	s.ws()
	if s.i >= len(raw) || raw[s.i] != '{' {
		return nil, false
	}
	values = make([]json.RawMessage, len(names))
	s.i++
	s.ws()
	if s.i < len(raw) && raw[s.i] == '}' {
		s.i++
		return values, s.end()
	}
	for {
		s.ws()
		if s.i >= len(raw) || raw[s.i] != '"' {
			return nil, false
		}
		k, ok := s.key()
		if !ok || !s.expect(':') {
			return nil, false
		}
		s.keys = append(s.keys, k)
		s.ws()
		start := s.i
		if !s.value(1) {
			return nil, false
		}
		for j, name := range names {
			if s.equalString(k, name) {
				values[j] = raw[start:s.i:s.i]
			}
		}
		s.ws()
		if s.i < len(raw) && raw[s.i] == ',' {
			s.i++
			continue
		}
		if !s.expect('}') || !s.end() {
			return nil, false
		}
		s.duplicates(0)
		if s.bad != "" {
			return nil, false
		}
		return values, true
	}
}

// String returns the text of the JSON string raw, unescaped.
func String(raw []byte) (string, bool) {
	s := scanner{b: raw, elem: -1}
	s.ws()
	if s.i >= len(raw) || raw[s.i] != '"' {
		return "", false
	}
	start := s.i
	if !s.str() {
		return "", false
	}
	end := s.i
	if !s.end() {
		return "", false
	}
	return unquote(raw[start+1 : end-1]), true
}
