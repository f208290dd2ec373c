package jsworld

import (
	"net/http"
	"sort"
	"strings"

	"github.com/evmlb/evmlb/host/internal/jsrt"
)

// Headers is the Fetch API's Headers: lower-case names, values combined with ", " when read.
type Headers struct {
	jsrt.Base
	w    *World
	list [][2]string // name, value in insertion order
}

func (w *World) newHeaders() *Headers {
	h := &Headers{w: w}
	h.Class = w.headersCtor
	return h
}

// headersFrom builds Headers from a Headers, a plain object, an array of pairs or undefined.
func (w *World) headersFrom(init jsrt.Value) (*Headers, error) {
	h := w.newHeaders()
	switch x := init.(type) {
	case *Headers:
		h.list = append(h.list, x.list...)
	case *jsrt.Array:
		for _, e := range x.Elems {
			h.append(jsrt.ToString(jsrt.Get(e, "0")), jsrt.ToString(jsrt.Get(e, "1")))
		}
	case *jsrt.Plain:
		for _, k := range x.Keys() {
			h.append(k, jsrt.ToString(x.Get(k)))
		}
	case nil:
	default:
		if x != jsrt.Undefined {
			return nil, jsrt.Throw(w.realm.NewTypeError("invalid headers init"))
		}
	}
	return h, nil
}

// headersFromHTTP converts net/http headers.
func (w *World) headersFromHTTP(hh http.Header) *Headers {
	h := w.newHeaders()
	for k, vs := range hh {
		for _, v := range vs {
			h.append(k, v)
		}
	}
	return h
}

func (h *Headers) append(name, value string) {
	h.list = append(h.list, [2]string{strings.ToLower(name), strings.TrimSpace(value)})
}

func (h *Headers) del(name string) {
	name = strings.ToLower(name)
	out := h.list[:0]
	for _, e := range h.list {
		if e[0] != name {
			out = append(out, e)
		}
	}
	h.list = out
}

// Put replaces every value of name (JS set).
func (h *Headers) Put(name, value string) {
	h.del(name)
	h.append(name, value)
}

// get is the combined value of name.
func (h *Headers) get(name string) (string, bool) {
	name = strings.ToLower(name)
	var vs []string
	for _, e := range h.list {
		if e[0] == name {
			vs = append(vs, e[1])
		}
	}
	return strings.Join(vs, ", "), vs != nil
}

// sorted returns the combined entries in name order, as the Headers iterator yields them.
func (h *Headers) sorted() [][2]string {
	var names []string
	seen := map[string]bool{}
	for _, e := range h.list {
		if !seen[e[0]] {
			seen[e[0]] = true
			names = append(names, e[0])
		}
	}
	sort.Strings(names)
	out := make([][2]string, len(names))
	for i, n := range names {
		v, _ := h.get(n)
		out[i] = [2]string{n, v}
	}
	return out
}

// HTTP converts to net/http headers.
func (h *Headers) HTTP() http.Header {
	out := http.Header{}
	for _, e := range h.list {
		out.Add(e[0], e[1])
	}
	return out
}

// Get implements jsrt.Object.
func (h *Headers) Get(key string) jsrt.Value {
	r := h.w.realm
	arg := func(args []jsrt.Value, i int) string { return jsrt.ToString(jsrt.Arg(args, i)) }
	switch key {
	case "append":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { h.append(arg(a, 0), arg(a, 1)); return jsrt.Undefined, nil })
	case "set":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { h.Put(arg(a, 0), arg(a, 1)); return jsrt.Undefined, nil })
	case "delete":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { h.del(arg(a, 0)); return jsrt.Undefined, nil })
	case "get":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			if v, ok := h.get(arg(a, 0)); ok {
				return v, nil
			}
			return nil, nil
		})
	case "has":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) { _, ok := h.get(arg(a, 0)); return ok, nil })
	case "entries", "keys", "values":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) {
			var vs []jsrt.Value
			for _, e := range h.sorted() {
				switch key {
				case "entries":
					vs = append(vs, r.NewArray(e[0], e[1]))
				case "keys":
					vs = append(vs, e[0])
				default:
					vs = append(vs, e[1])
				}
			}
			return r.SliceIterator(vs), nil
		})
	case "forEach":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			for _, e := range h.sorted() {
				if _, err := jsrt.Call(r, jsrt.Arg(a, 0), jsrt.Undefined, e[1], e[0], h); err != nil {
					return nil, err
				}
			}
			return jsrt.Undefined, nil
		})
	}
	return h.Base.Get(key)
}
