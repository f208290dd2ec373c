package jsrt

// Props is an ordered property map, the storage of every object's own properties.
type Props struct {
	m    map[string]Value
	keys []string
}

// Own returns the own property key.
func (p *Props) Own(key string) (Value, bool) {
	v, ok := p.m[key]
	return v, ok
}

// Get returns the own property key, or Undefined.
func (p *Props) Get(key string) Value {
	if v, ok := p.m[key]; ok {
		return v
	}
	return Undefined
}

// Set sets the own property key.
func (p *Props) Set(key string, v Value) {
	if p.m == nil {
		p.m = make(map[string]Value)
	}
	if _, ok := p.m[key]; !ok {
		p.keys = append(p.keys, key)
	}
	p.m[key] = Number(v)
}

// Delete removes the own property key.
func (p *Props) Delete(key string) {
	if _, ok := p.m[key]; !ok {
		return
	}
	delete(p.m, key)
	for i, k := range p.keys {
		if k == key {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the own property names in insertion order.
func (p *Props) Keys() []string { return p.keys }

// Base is embedded by every object type: own properties and the constructor that made it (for instanceof).
type Base struct {
	Props
	Class Value
}

// InstanceOf reports whether the object was made by ctor.
func (b *Base) InstanceOf(ctor Value) bool { return b.Class != nil && b.Class == ctor }

// Plain is an ordinary object ({}).
type Plain struct{ Base }

// NewObject returns a new plain object with the given properties, set in order (key, value, key, value…).
func (r *Realm) NewObject(kv ...Value) *Plain {
	o := &Plain{}
	o.Class = r.ObjectCtor
	for i := 0; i+1 < len(kv); i += 2 {
		o.Set(kv[i].(string), kv[i+1])
	}
	return o
}

// Func is a function implemented in Go. Construct is nil for functions that are not constructors.
type Func struct {
	Base
	Name string
	Fn   func(this Value, args []Value) (Value, error)
	New  func(args []Value) (Value, error)
}

// Call calls the function.
func (f *Func) Call(this Value, args []Value) (Value, error) {
	if f.Fn == nil {
		return nil, &Thrown{Value: "Class constructor " + f.Name + " cannot be invoked without 'new'"}
	}
	return f.Fn(this, args)
}

// Construct is `new f(...args)`.
func (f *Func) Construct(args []Value) (Value, error) {
	if f.New == nil {
		return nil, &Thrown{Value: f.Name + " is not a constructor"}
	}
	return f.New(args)
}

// NewFunc returns a function.
func NewFunc(name string, fn func(this Value, args []Value) (Value, error)) *Func {
	return &Func{Name: name, Fn: fn}
}

// Method returns a function that ignores this; the usual shape of a host object's method.
func Method(name string, fn func(args []Value) (Value, error)) *Func {
	return &Func{Name: name, Fn: func(_ Value, args []Value) (Value, error) { return fn(args) }}
}

// Array is a JS array.
type Array struct {
	Base
	Elems []Value
}

// NewArray returns an array holding elems.
func (r *Realm) NewArray(elems ...Value) *Array {
	a := &Array{Elems: elems}
	a.Class = r.ArrayCtor
	for i, e := range elems {
		a.Elems[i] = Number(e)
	}
	return a
}

// Get implements Object.
func (a *Array) Get(key string) Value {
	switch key {
	case "length":
		return float64(len(a.Elems))
	case "push":
		return NewFunc("push", func(_ Value, args []Value) (Value, error) {
			for _, v := range args {
				a.Elems = append(a.Elems, Number(v))
			}
			return float64(len(a.Elems)), nil
		})
	}
	if i, ok := arrayIndex(key); ok {
		return a.Index(i)
	}
	return a.Base.Get(key)
}

// Set implements Object.
func (a *Array) Set(key string, v Value) {
	if i, ok := arrayIndex(key); ok {
		a.SetIndex(i, v)
		return
	}
	if key == "length" {
		n := int(ToNumber(v))
		for len(a.Elems) < n {
			a.Elems = append(a.Elems, Undefined)
		}
		a.Elems = a.Elems[:n]
		return
	}
	a.Base.Set(key, v)
}

// Index implements Indexer.
func (a *Array) Index(i int) Value {
	if i < 0 || i >= len(a.Elems) {
		return Undefined
	}
	return a.Elems[i]
}

// SetIndex implements Indexer; the array grows as needed.
func (a *Array) SetIndex(i int, v Value) {
	if i < 0 {
		return
	}
	for len(a.Elems) <= i {
		a.Elems = append(a.Elems, Undefined)
	}
	a.Elems[i] = Number(v)
}

func arrayIndex(key string) (int, bool) {
	if key == "" || len(key) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range key {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if len(key) > 1 && key[0] == '0' {
		return 0, false
	}
	return n, true
}

// Iterator is an iterator object: next() → {done, value}.
type Iterator struct {
	Base
	realm *Realm
	next  func() (Value, bool)
}

// NewIterator returns an iterator whose next yields values until ok is false.
func (r *Realm) NewIterator(next func() (v Value, ok bool)) *Iterator {
	return &Iterator{realm: r, next: next}
}

// Get implements Object.
func (it *Iterator) Get(key string) Value {
	if key == "next" {
		return NewFunc("next", func(Value, []Value) (Value, error) {
			v, ok := it.next()
			if !ok {
				return it.realm.NewObject("done", true, "value", Undefined), nil
			}
			return it.realm.NewObject("done", false, "value", v), nil
		})
	}
	return it.Base.Get(key)
}

// Map is a JS Map with string keys, in insertion order.
type Map struct {
	Base
	realm *Realm
	keys  []string
	vals  map[string]Value
}

// NewMap returns an empty Map.
func (r *Realm) NewMap() *Map {
	m := &Map{realm: r, vals: map[string]Value{}}
	m.Class = r.MapCtor
	return m
}

// Put sets key to v.
func (m *Map) Put(key string, v Value) {
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.vals[key] = v
}

// Entries returns the [key, value] pairs as arrays, in order.
func (m *Map) Entries() []Value {
	out := make([]Value, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, m.realm.NewArray(k, m.vals[k]))
	}
	return out
}

// Get implements Object.
func (m *Map) Get(key string) Value {
	r := m.realm
	switch key {
	case "size":
		return float64(len(m.keys))
	case "get":
		return Method("get", func(args []Value) (Value, error) {
			if v, ok := m.vals[ToString(Arg(args, 0))]; ok {
				return v, nil
			}
			return Undefined, nil
		})
	case "has":
		return Method("has", func(args []Value) (Value, error) {
			_, ok := m.vals[ToString(Arg(args, 0))]
			return ok, nil
		})
	case "set":
		return NewFunc("set", func(this Value, args []Value) (Value, error) {
			m.Put(ToString(Arg(args, 0)), Arg(args, 1))
			return this, nil
		})
	case "entries":
		return Method("entries", func([]Value) (Value, error) { return r.SliceIterator(m.Entries()), nil })
	case "keys":
		return Method("keys", func([]Value) (Value, error) {
			ks := make([]Value, len(m.keys))
			for i, k := range m.keys {
				ks[i] = k
			}
			return r.SliceIterator(ks), nil
		})
	}
	return m.Base.Get(key)
}

// SliceIterator iterates over vs.
func (r *Realm) SliceIterator(vs []Value) *Iterator {
	i := 0
	return r.NewIterator(func() (Value, bool) {
		if i >= len(vs) {
			return nil, false
		}
		i++
		return vs[i-1], true
	})
}

// ErrorObj is an Error (or TypeError) instance.
type ErrorObj struct{ Base }

// NewError returns a new Error with message msg.
func (r *Realm) NewError(msg string) *ErrorObj {
	e := &ErrorObj{}
	e.Class = r.ErrorCtor
	e.Set("name", "Error")
	e.Set("message", msg)
	return e
}

// NewTypeError returns a new TypeError with message msg.
func (r *Realm) NewTypeError(msg string) *ErrorObj {
	e := r.NewError(msg)
	e.Set("name", "TypeError")
	return e
}

// Get implements Object.
func (e *ErrorObj) Get(key string) Value {
	if key == "toString" {
		return Method("toString", func([]Value) (Value, error) { return e.String(), nil })
	}
	return e.Base.Get(key)
}

// String is "Name: message".
func (e *ErrorObj) String() string {
	name, msg := ToString(e.Base.Get("name")), ToString(e.Base.Get("message"))
	if msg == "" {
		return name
	}
	return name + ": " + msg
}

// Date is a JS Date (UTC only).
type Date struct {
	Base
	ms float64
}

// Get implements Object.
func (d *Date) Get(key string) Value {
	switch key {
	case "getTime", "valueOf":
		return Method(key, func([]Value) (Value, error) { return d.ms, nil })
	case "getTimezoneOffset":
		return Method(key, func([]Value) (Value, error) { return 0.0, nil })
	}
	return d.Base.Get(key)
}

var (
	_ Object = (*Plain)(nil)
	_ Object = (*Func)(nil)
	_ Object = (*Array)(nil)
	_ Object = (*Iterator)(nil)
	_ Object = (*Map)(nil)
	_ Object = (*ErrorObj)(nil)
	_ Object = (*Date)(nil)
	_ Object = (*Promise)(nil)
	_ Object = (*ArrayBuffer)(nil)
	_ Object = (*Uint8Array)(nil)
)
