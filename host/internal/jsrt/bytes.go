package jsrt

// ArrayBuffer is a JS ArrayBuffer.
type ArrayBuffer struct {
	Base
	Data []byte
}

// Get implements Object.
func (b *ArrayBuffer) Get(key string) Value {
	if key == "byteLength" {
		return float64(len(b.Data))
	}
	return b.Base.Get(key)
}

// Uint8Array is a JS Uint8Array (or, with Clamped, a Uint8ClampedArray): a view of an ArrayBuffer.
type Uint8Array struct {
	Base
	Buffer  *ArrayBuffer
	Offset  int
	Length  int
	Clamped bool
}

// NewUint8Array returns a Uint8Array over data (not copied).
func (r *Realm) NewUint8Array(data []byte) *Uint8Array {
	u := &Uint8Array{Buffer: r.NewArrayBuffer(data), Length: len(data)}
	u.Class = r.Uint8ArrayCtor
	return u
}

// NewArrayBuffer returns an ArrayBuffer holding data (not copied).
func (r *Realm) NewArrayBuffer(data []byte) *ArrayBuffer {
	b := &ArrayBuffer{Data: data}
	b.Class = r.ArrayBufferCtor
	return b
}

// Bytes is the view's bytes (shared with the buffer).
func (u *Uint8Array) Bytes() []byte { return u.Buffer.Data[u.Offset : u.Offset+u.Length] }

// Get implements Object.
func (u *Uint8Array) Get(key string) Value {
	switch key {
	case "length", "byteLength":
		return float64(u.Length)
	case "byteOffset":
		return float64(u.Offset)
	case "buffer":
		return u.Buffer
	}
	if i, ok := arrayIndex(key); ok {
		return u.Index(i)
	}
	return u.Base.Get(key)
}

// Set implements Object.
func (u *Uint8Array) Set(key string, v Value) {
	if i, ok := arrayIndex(key); ok {
		u.SetIndex(i, v)
		return
	}
	u.Base.Set(key, v)
}

// Index implements Indexer.
func (u *Uint8Array) Index(i int) Value {
	if i < 0 || i >= u.Length {
		return Undefined
	}
	return float64(u.Bytes()[i])
}

// SetIndex implements Indexer.
func (u *Uint8Array) SetIndex(i int, v Value) {
	if i < 0 || i >= u.Length {
		return
	}
	f := ToNumber(v)
	if u.Clamped {
		f = min(max(f, 0), 255)
	}
	u.Bytes()[i] = byte(int64(f))
}

// newUint8Array is `new Uint8Array(lengthOrBufferOrArray)`.
func (r *Realm) newUint8Array(args []Value, clamped bool, class Value) (Value, error) {
	u := &Uint8Array{Clamped: clamped}
	u.Class = class
	switch a := Arg(args, 0).(type) {
	case *ArrayBuffer:
		off := int(ToNumber(Arg(args, 1)))
		if Arg(args, 1) == Undefined {
			off = 0
		}
		n := len(a.Data) - off
		if l := Arg(args, 2); l != Undefined {
			n = int(ToNumber(l))
		}
		if off < 0 || n < 0 || off+n > len(a.Data) {
			return nil, Throw(r.NewTypeError("invalid typed array length"))
		}
		u.Buffer, u.Offset, u.Length = a, off, n
	case *Uint8Array:
		data := append([]byte(nil), a.Bytes()...)
		u.Buffer, u.Length = r.NewArrayBuffer(data), len(data)
	case *Array:
		data := make([]byte, len(a.Elems))
		for i, e := range a.Elems {
			data[i] = byte(int64(ToNumber(e)))
		}
		u.Buffer, u.Length = r.NewArrayBuffer(data), len(data)
	default:
		n := 0
		if a != Undefined {
			f := ToNumber(a)
			if f < 0 || f != f || f > 1<<31 {
				return nil, Throw(r.NewTypeError("invalid typed array length"))
			}
			n = int(f)
		}
		u.Buffer, u.Length = r.NewArrayBuffer(make([]byte, n)), n
	}
	return u, nil
}
