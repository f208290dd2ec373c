package jsworld

import (
	"time"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/host/internal/store"
)

// maxKeys is Cloudflare's limit of keys per get/put/delete call.
const maxKeys = 128

// Storage is state(id).storage: the table of CONTRACT.md section 2 over the store, one bucket per object.
type Storage struct {
	jsrt.Base
	w    *World
	inst *instance
}

func (w *World) newStorage(inst *instance) *Storage { return &Storage{w: w, inst: inst} }

// io runs op on the storage goroutine and settles a promise with its result on the loop.
func (s *Storage) io(op func(db *store.DB) (func() jsrt.Value, error)) *jsrt.Promise {
	w := s.w
	p := w.realm.NewPromise()
	if w.cfg.DB == nil {
		p.Reject(w.realm.NewError("storage is not configured"))
		return p
	}
	w.io.add(func() {
		result, err := op(w.cfg.DB)
		w.loop.Post(func() {
			if err != nil {
				p.Reject(w.realm.NewError("storage: " + err.Error()))
				return
			}
			p.Resolve(result())
		})
	})
	return p
}

func undefined() jsrt.Value { return jsrt.Undefined }

// strings converts a key or an array of keys.
func (s *Storage) keys(v jsrt.Value) ([]string, error) {
	if a, ok := v.(*jsrt.Array); ok {
		if len(a.Elems) > maxKeys {
			return nil, jsrt.Throw(s.w.realm.NewError("too many keys in one call (at most 128)"))
		}
		out := make([]string, len(a.Elems))
		for i, e := range a.Elems {
			out[i] = jsrt.ToString(e)
		}
		return out, nil
	}
	return []string{jsrt.ToString(v)}, nil
}

// Get implements jsrt.Object.
func (s *Storage) Get(key string) jsrt.Value {
	r, id := s.w.realm, s.inst.id
	method := func(fn func(a []jsrt.Value) (*jsrt.Promise, error)) *jsrt.Func {
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			p, err := fn(a)
			if err != nil {
				return r.RejectedWith(jsrt.ThrownValue(r, err)), nil
			}
			return p, nil
		})
	}
	switch key {
	case "get":
		return method(func(a []jsrt.Value) (*jsrt.Promise, error) {
			if arr, ok := jsrt.Arg(a, 0).(*jsrt.Array); ok { // get([keys]) → Map
				keys, err := s.keys(arr)
				if err != nil {
					return nil, err
				}
				return s.io(func(db *store.DB) (func() jsrt.Value, error) {
					var found []store.KV
					for _, k := range keys {
						v, ok, err := db.Get(id, k)
						if err != nil {
							return nil, err
						}
						if ok {
							found = append(found, store.KV{Key: k, Value: v})
						}
					}
					return func() jsrt.Value { return s.toMap(found) }, nil
				}), nil
			}
			k := jsrt.ToString(jsrt.Arg(a, 0))
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				v, ok, err := db.Get(id, k)
				return func() jsrt.Value {
					if !ok {
						return jsrt.Undefined
					}
					return v
				}, err
			}), nil
		})
	case "put":
		return method(func(a []jsrt.Value) (*jsrt.Promise, error) {
			var kvs []store.KV
			switch x := jsrt.Arg(a, 0).(type) {
			case *jsrt.Plain:
				for _, k := range x.Keys() {
					kvs = append(kvs, store.KV{Key: k, Value: jsrt.ToString(x.Get(k))})
				}
			case string: // put(key, value)
				kvs = append(kvs, store.KV{Key: x, Value: jsrt.ToString(jsrt.Arg(a, 1))})
			default:
				return nil, jsrt.Throw(r.NewTypeError("put() takes an object of string values"))
			}
			if len(kvs) > maxKeys {
				return nil, jsrt.Throw(r.NewError("too many keys in one call (at most 128)"))
			}
			return s.io(func(db *store.DB) (func() jsrt.Value, error) { return undefined, db.Put(id, kvs) }), nil
		})
	case "delete":
		return method(func(a []jsrt.Value) (*jsrt.Promise, error) {
			keys, err := s.keys(jsrt.Arg(a, 0))
			if err != nil {
				return nil, err
			}
			_, many := jsrt.Arg(a, 0).(*jsrt.Array)
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				n, err := db.Delete(id, keys)
				if many {
					return func() jsrt.Value { return float64(n) }, err
				}
				return func() jsrt.Value { return n > 0 }, err
			}), nil
		})
	case "list":
		return method(func(a []jsrt.Value) (*jsrt.Promise, error) {
			opts := jsrt.Arg(a, 0)
			prefix, limit := "", 0
			if p := jsrt.Get(opts, "prefix"); p != jsrt.Undefined {
				prefix = jsrt.ToString(p)
			}
			if l := jsrt.Get(opts, "limit"); l != jsrt.Undefined {
				limit = int(jsrt.ToNumber(l))
			}
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				kvs, err := db.List(id, prefix, limit)
				return func() jsrt.Value { return s.toMap(kvs) }, err
			}), nil
		})
	case "deleteAll":
		return method(func([]jsrt.Value) (*jsrt.Promise, error) {
			return s.io(func(db *store.DB) (func() jsrt.Value, error) { return undefined, db.DeleteAll(id) }), nil
		})
	case "getAlarm":
		return method(func([]jsrt.Value) (*jsrt.Promise, error) {
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				al, ok, err := db.GetAlarm(id)
				return func() jsrt.Value {
					if !ok {
						return nil
					}
					return float64(al.At)
				}, err
			}), nil
		})
	case "setAlarm":
		return method(func(a []jsrt.Value) (*jsrt.Promise, error) {
			v := jsrt.Arg(a, 0)
			at := jsrt.ToNumber(v)
			if at != at {
				return nil, jsrt.Throw(r.NewTypeError("setAlarm() needs a time"))
			}
			al := store.Alarm{ObjectID: id, Role: s.inst.role, At: int64(at)}
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				if err := db.SetAlarm(al); err != nil {
					return nil, err
				}
				return func() jsrt.Value { s.w.arm(al); return jsrt.Undefined }, nil
			}), nil
		})
	case "deleteAlarm":
		return method(func([]jsrt.Value) (*jsrt.Promise, error) {
			return s.io(func(db *store.DB) (func() jsrt.Value, error) {
				if err := db.DeleteAlarm(id); err != nil {
					return nil, err
				}
				return func() jsrt.Value { s.w.disarm(id); return jsrt.Undefined }, nil
			}), nil
		})
	}
	return s.Base.Get(key)
}

func (s *Storage) toMap(kvs []store.KV) *jsrt.Map {
	m := s.w.realm.NewMap()
	for _, kv := range kvs {
		m.Put(kv.Key, kv.Value)
	}
	return m
}

// armedAlarm is an alarm waiting on the loop.
type armedAlarm struct {
	alarm store.Alarm
	timer int
}

// ArmPersisted arms the alarms found in the store (after a start or restart). Call on the loop.
func (w *World) ArmPersisted() error {
	if w.cfg.DB == nil {
		return nil
	}
	alarms, err := w.cfg.DB.Alarms()
	if err != nil {
		return err
	}
	for _, a := range alarms {
		w.arm(a)
	}
	return nil
}

// arm (re)schedules the alarm of a.ObjectID on the loop.
func (w *World) arm(a store.Alarm) {
	w.disarm(a.ObjectID)
	d := time.Until(time.UnixMilli(a.At))
	armed := &armedAlarm{alarm: a}
	armed.timer = w.loop.SetTimeout(d, func() { w.fire(armed) })
	w.alarms[a.ObjectID] = armed
}

func (w *World) disarm(id string) {
	if a, ok := w.alarms[id]; ok {
		w.loop.ClearTimeout(a.timer)
		delete(w.alarms, id)
	}
}

// PendingAlarms is the number of armed alarms.
func (w *World) PendingAlarms() int { return len(w.alarms) }

// fire runs an alarm: the host deletes it, then calls binding.handleAlarm(role, id, retryCount). On a
// rejection it retries with exponential back-off (2 s, 4 s, …) at most AlarmMaxRetries times, unless Go has set a
// new alarm meanwhile. Retries are persisted like alarms, so they survive a restart.
func (w *World) fire(armed *armedAlarm) {
	a := armed.alarm
	if w.alarms[a.ObjectID] != armed {
		return
	}
	delete(w.alarms, a.ObjectID)
	db := w.cfg.DB
	w.io.add(func() { _ = db.DeleteAlarm(a.ObjectID) })
	inst := w.instance(a.Role, a.ObjectID)
	p := w.realm.NewPromise()
	res, err := jsrt.Invoke(w.realm, w.binding, "handleAlarm", inst.role, inst.id, float64(a.Retry))
	if err != nil {
		p.Reject(jsrt.ThrownValue(w.realm, err))
	} else {
		p.Resolve(res)
	}
	p.Then(nil, func(reason jsrt.Value) {
		if _, reset := w.alarms[a.ObjectID]; reset || a.Retry >= maxAlarmRetries {
			w.Logf("evmlb host: alarm of " + a.Role + " " + a.ObjectID[:12] + " failed: " + errorMessage(reason))
			return
		}
		next := store.Alarm{ObjectID: a.ObjectID, Role: a.Role, Retry: a.Retry + 1,
			At: time.Now().Add(alarmBackoff(a.Retry)).UnixMilli()}
		w.io.add(func() { _ = db.SetAlarm(next) })
		w.arm(next)
	})
}

// errorMessage is a rejection reason's message.
func errorMessage(reason jsrt.Value) string {
	if m, ok := jsrt.Get(reason, "message").(string); ok {
		return m
	}
	return jsrt.ToString(reason)
}
