package jsrt

// Promise states.
const (
	Pending = iota
	Fulfilled
	Rejected
)

// Promise is a JS Promise. Reactions always run as microtasks on the realm's loop.
type Promise struct {
	Base
	realm     *Realm
	state     int
	value     Value
	resolving bool // resolve was called with a thenable that has not settled yet
	reactions []func(state int, v Value)
}

// NewPromise returns a pending promise.
func (r *Realm) NewPromise() *Promise {
	p := &Promise{realm: r}
	p.Class = r.PromiseCtor
	return p
}

// Resolved returns a promise fulfilled with v (or following v if it is a thenable).
func (r *Realm) Resolved(v Value) *Promise {
	if p, ok := v.(*Promise); ok {
		return p
	}
	p := r.NewPromise()
	p.Resolve(v)
	return p
}

// RejectedWith returns a promise rejected with reason.
func (r *Realm) RejectedWith(reason Value) *Promise {
	p := r.NewPromise()
	p.Reject(reason)
	return p
}

// State is the promise's state and value.
func (p *Promise) State() (int, Value) { return p.state, p.value }

// Resolve resolves the promise with v, adopting v's state when v is a thenable.
func (p *Promise) Resolve(v Value) {
	if p.state != Pending || p.resolving {
		return
	}
	if v == Value(p) {
		p.settle(Rejected, p.realm.NewTypeError("promise resolved with itself"))
		return
	}
	if q, ok := v.(*Promise); ok {
		p.resolving = true
		q.react(func(state int, val Value) { p.settle(state, val) })
		return
	}
	if o, ok := v.(Object); ok {
		if then, ok := o.Get("then").(Callable); ok {
			p.resolving = true
			resolve, reject := p.resolvers(true)
			p.realm.Loop.Microtask(func() {
				if _, err := then.Call(o, []Value{resolve, reject}); err != nil {
					reject.Fn(nil, []Value{ThrownValue(p.realm, err)})
				}
			})
			return
		}
	}
	p.settle(Fulfilled, Number(v))
}

// Reject rejects the promise with reason.
func (p *Promise) Reject(reason Value) {
	if p.state != Pending || p.resolving {
		return
	}
	p.settle(Rejected, reason)
}

func (p *Promise) settle(state int, v Value) {
	if p.state != Pending {
		return
	}
	p.state, p.value, p.resolving = state, v, false
	rs := p.reactions
	p.reactions = nil
	for _, fn := range rs {
		p.schedule(fn)
	}
}

func (p *Promise) schedule(fn func(int, Value)) {
	state, v := p.state, p.value
	p.realm.Loop.Microtask(func() { fn(state, v) })
}

// react registers fn to run (as a microtask) once the promise settles.
func (p *Promise) react(fn func(state int, v Value)) {
	if p.state == Pending {
		p.reactions = append(p.reactions, fn)
		return
	}
	p.schedule(fn)
}

// Then registers Go callbacks; either may be nil.
func (p *Promise) Then(onFulfilled, onRejected func(Value)) {
	p.react(func(state int, v Value) {
		if state == Fulfilled && onFulfilled != nil {
			onFulfilled(v)
		} else if state == Rejected && onRejected != nil {
			onRejected(v)
		}
	})
}

// then is Promise.prototype.then with JS callbacks.
func (p *Promise) then(onFulfilled, onRejected Value) *Promise {
	derived := p.realm.NewPromise()
	p.react(func(state int, v Value) {
		handler := onFulfilled
		if state == Rejected {
			handler = onRejected
		}
		fn, ok := handler.(Callable)
		if !ok {
			if state == Fulfilled {
				derived.Resolve(v)
			} else {
				derived.Reject(v)
			}
			return
		}
		res, err := fn.Call(Undefined, []Value{v})
		if err != nil {
			derived.Reject(ThrownValue(p.realm, err))
			return
		}
		derived.Resolve(res)
	})
	return derived
}

// resolvers returns the resolve and reject functions given to an executor; only the first call counts.
func (p *Promise) resolvers(adopting bool) (resolve, reject *Func) {
	done := false
	resolve = NewFunc("resolve", func(_ Value, args []Value) (Value, error) {
		if !done {
			done = true
			if adopting {
				p.resolving = false
			}
			p.Resolve(Arg(args, 0))
		}
		return Undefined, nil
	})
	reject = NewFunc("reject", func(_ Value, args []Value) (Value, error) {
		if !done {
			done = true
			if adopting {
				p.resolving = false
			}
			p.Reject(Arg(args, 0))
		}
		return Undefined, nil
	})
	return resolve, reject
}

// Get implements Object.
func (p *Promise) Get(key string) Value {
	switch key {
	case "then":
		return Method("then", func(args []Value) (Value, error) { return p.then(Arg(args, 0), Arg(args, 1)), nil })
	case "catch":
		return Method("catch", func(args []Value) (Value, error) { return p.then(Undefined, Arg(args, 0)), nil })
	case "finally":
		return Method("finally", func(args []Value) (Value, error) {
			fn := Arg(args, 0)
			derived := p.realm.NewPromise()
			p.react(func(state int, v Value) {
				if c, ok := fn.(Callable); ok {
					if _, err := c.Call(Undefined, nil); err != nil {
						derived.Reject(ThrownValue(p.realm, err))
						return
					}
				}
				derived.settle(state, v)
			})
			return derived, nil
		})
	}
	return p.Base.Get(key)
}

// newPromise is `new Promise(executor)`.
func (r *Realm) newPromise(args []Value) (Value, error) {
	exec, ok := Arg(args, 0).(Callable)
	if !ok {
		return nil, Throw(r.NewTypeError("Promise resolver is not a function"))
	}
	p := r.NewPromise()
	resolve, reject := p.resolvers(false)
	if _, err := exec.Call(Undefined, []Value{resolve, reject}); err != nil {
		var t *Thrown
		if !asThrown(err, &t) {
			return nil, err // the host failed (e.g. the Go runtime exited): not a JS exception
		}
		reject.Fn(nil, []Value{t.Value})
	}
	return p, nil
}
