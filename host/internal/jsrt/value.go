// Package jsrt is the small JavaScript world the wazero host gives a GOOS=js program: values, objects,
// functions, promises with a microtask queue, and the event loop that owns them.
//
// A JS value is a Go value: Undefined, nil (null), bool, float64, string, or an Object. Every Object is a
// pointer, so Go's == on values is JavaScript's identity (and, for strings, value equality), which is what the
// gojs reference table needs. Nothing here is safe for concurrent use: all of it belongs to the goroutine that
// runs the Loop; other goroutines reach it through Loop.Post.
package jsrt

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Value is a JS value: Undefined, nil (null), bool, float64, string or an Object.
type Value = any

type undefinedType struct{}

// Undefined is JavaScript's undefined.
var Undefined Value = undefinedType{}

// Object is a JS object. Get returns Undefined for a missing property.
type Object interface {
	Get(key string) Value
	Set(key string, v Value)
	Delete(key string)
}

// Callable is an Object that can be called: a function.
type Callable interface {
	Call(this Value, args []Value) (Value, error)
}

// Constructor is an Object that `new` can be applied to.
type Constructor interface {
	Construct(args []Value) (Value, error)
}

// Indexer is an Object with integer-indexed elements (Array, Uint8Array).
type Indexer interface {
	Index(i int) Value
	SetIndex(i int, v Value)
}

// Thrown is a JavaScript exception travelling as a Go error.
type Thrown struct{ Value Value }

func (t *Thrown) Error() string { return "uncaught " + ToString(t.Value) }

// Throw wraps v as an exception.
func Throw(v Value) error { return &Thrown{Value: v} }

// ThrownValue is the JS value of err: the thrown value, or an Error carrying err's message.
func ThrownValue(r *Realm, err error) Value {
	var t *Thrown
	if errors.As(err, &t) {
		return t.Value
	}
	return r.NewError(err.Error())
}

// TypeOf is JavaScript's typeof.
func TypeOf(v Value) string {
	switch v.(type) {
	case undefinedType:
		return "undefined"
	case nil:
		return "object"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case Callable, Constructor:
		return "function"
	default:
		return "object"
	}
}

// IsNullish reports whether v is undefined or null.
func IsNullish(v Value) bool { return v == nil || v == Undefined }

// Get reads property key of any value; Undefined when v has none.
func Get(v Value, key string) Value {
	switch x := v.(type) {
	case Object:
		return x.Get(key)
	case string:
		if key == "length" {
			return float64(len(utf16.Encode([]rune(x))))
		}
	}
	return Undefined
}

// Arg is args[i], or Undefined past the end.
func Arg(args []Value, i int) Value {
	if i < len(args) {
		return args[i]
	}
	return Undefined
}

// Call calls fn with this and args; a TypeError when fn is not a function.
func Call(r *Realm, fn Value, this Value, args ...Value) (Value, error) {
	c, ok := fn.(Callable)
	if !ok {
		return nil, Throw(r.NewTypeError("not a function"))
	}
	return c.Call(this, args)
}

// Invoke calls method name of v.
func Invoke(r *Realm, v Value, name string, args ...Value) (Value, error) {
	fn := Get(v, name)
	if _, ok := fn.(Callable); !ok {
		return nil, Throw(r.NewTypeError(name + " is not a function"))
	}
	return Call(r, fn, v, args...)
}

// Truthy is JavaScript's ToBoolean.
func Truthy(v Value) bool {
	switch x := v.(type) {
	case undefinedType, nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// ToNumber is a simplified ToNumber (numbers, booleans, numeric strings).
func ToNumber(v Value) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
		return 0
	case nil:
		return 0
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case *Date:
		return x.ms
	}
	return math.NaN()
}

// ToString is JavaScript's String(v).
func ToString(v Value) string {
	switch x := v.(type) {
	case undefinedType:
		return "undefined"
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return FormatNumber(x)
	case string:
		return x
	case interface{ String() string }:
		return x.String()
	}
	if o, ok := v.(Object); ok {
		if fn, ok := o.Get("toString").(Callable); ok {
			if s, err := fn.Call(o, nil); err == nil {
				if str, ok := s.(string); ok {
					return str
				}
			}
		}
	}
	if _, ok := v.(Callable); ok {
		return "function () { [native code] }"
	}
	return "[object Object]"
}

// FormatNumber formats f as JavaScript's Number.prototype.toString does.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+21, 1.5e-07
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[0]
	exp = strings.TrimLeft(exp[1:], "0")
	return mant + "e" + string(sign) + exp
}

// Number converts Go numbers to the JS number type; other values pass through.
func Number(v Value) Value {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	}
	return v
}
