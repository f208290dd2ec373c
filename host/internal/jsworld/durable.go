package jsworld

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"time"

	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/internal/contract"
)

// Names from the contract, short for this package.
const (
	bindingChain    = contract.BindingChain
	bindingUpstream = contract.BindingUpstream
	classChain      = contract.ClassChain
	classUpstream   = contract.ClassUpstream
	roleChain       = contract.RoleChain
	roleUpstream    = contract.RoleUpstream
)

// Namespace is a Durable Object namespace binding (env.CHAIN, env.UPSTREAM).
type Namespace struct {
	jsrt.Base
	w           *World
	class, role string
}

// ObjectID is a Durable Object id: toString() is 64 lower-case hex digits.
type ObjectID struct {
	jsrt.Base
	hex  string
	name string
}

// Stub is what namespace.get(id) returns.
type Stub struct {
	jsrt.Base
	ns *Namespace
	id *ObjectID
}

// instance is a live Durable Object instance: its token and its state object (context.host.state(id)).
type instance struct {
	role, id, token string
	state           *jsrt.Plain
}

func (w *World) newNamespace(class, role string) *Namespace {
	return &Namespace{w: w, class: class, role: role}
}

// IDFromName is the id of name in class: hex(sha256(class + "\x00" + name)), deterministic across restarts.
func IDFromName(class, name string) string {
	sum := sha256.Sum256([]byte(class + "\x00" + name))
	return hex.EncodeToString(sum[:])
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Get implements jsrt.Object.
func (ns *Namespace) Get(key string) jsrt.Value {
	r := ns.w.realm
	switch key {
	case "idFromName":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			name := jsrt.ToString(jsrt.Arg(a, 0))
			return &ObjectID{hex: IDFromName(ns.class, name), name: name}, nil
		})
	case "idFromString":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			s := jsrt.ToString(jsrt.Arg(a, 0))
			if !hexID.MatchString(s) {
				return nil, jsrt.Throw(r.NewTypeError("invalid Durable Object id"))
			}
			return &ObjectID{hex: s}, nil
		})
	case "get":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			id, ok := jsrt.Arg(a, 0).(*ObjectID)
			if !ok {
				return nil, jsrt.Throw(r.NewTypeError("get() needs a Durable Object id"))
			}
			return &Stub{ns: ns, id: id}, nil
		})
	}
	return ns.Base.Get(key)
}

// Get implements jsrt.Object.
func (id *ObjectID) Get(key string) jsrt.Value {
	switch key {
	case "toString":
		return jsrt.Method(key, func([]jsrt.Value) (jsrt.Value, error) { return id.hex, nil })
	case "name":
		if id.name == "" {
			return jsrt.Undefined
		}
		return id.name
	case "equals":
		return jsrt.Method(key, func(a []jsrt.Value) (jsrt.Value, error) {
			o, ok := jsrt.Arg(a, 0).(*ObjectID)
			return ok && o.hex == id.hex, nil
		})
	}
	return id.Base.Get(key)
}

// String is the id's hex form.
func (id *ObjectID) String() string { return id.hex }

// Get implements jsrt.Object.
func (s *Stub) Get(key string) jsrt.Value {
	switch key {
	case "id":
		return s.id
	case "name":
		return s.id.Get("name")
	case "fetch":
		return jsrt.Method(key, s.fetch)
	}
	return s.Base.Get(key)
}

// fetch delivers a request to the instance: as a microtask, so calls reach an instance in the order they were
// made, with the role headers of CONTRACT.md section 3 overwritten. Request and response bodies are piped as
// bytes, as they are between a Worker and a Durable Object in workerd.
func (s *Stub) fetch(args []jsrt.Value) (jsrt.Value, error) {
	w := s.ns.w
	v, err := w.newRequest(args)
	if err != nil {
		return w.realm.RejectedWith(jsrt.ThrownValue(w.realm, err)), nil
	}
	in := v.(*Request)
	h, _ := w.headersFrom(in.Headers)
	req := w.NewRequest(in.Method, in.URL, h, w.pipe(in.Body))
	p := w.realm.NewPromise()
	w.loop.Microtask(func() {
		inst := w.instance(s.ns.role, s.id.hex)
		req.Headers.Put(contract.HeaderRole, inst.role)
		req.Headers.Put(contract.HeaderObject, inst.id)
		req.Headers.Put(contract.HeaderInstance, inst.token)
		w.HandleRequest(req).Then(func(v jsrt.Value) {
			res, ok := v.(*Response)
			if !ok {
				p.Reject(w.realm.NewTypeError("Durable Object did not answer a Response"))
				return
			}
			h, _ := w.headersFrom(res.Headers)
			out := w.NewResponse(res.Status, h, w.pipe(res.Body))
			out.StatusText = res.StatusText
			p.Resolve(out)
		}, p.Reject)
	})
	return p, nil
}

// instance returns the live instance id, constructing it (with a new token) on first use.
func (w *World) instance(role, id string) *instance {
	if inst, ok := w.instances[id]; ok {
		return inst
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	inst := &instance{role: role, id: id, token: hex.EncodeToString(b[:])}
	inst.state = w.realm.NewObject("id", &ObjectID{hex: id}, "storage", w.newStorage(inst))
	w.instances[id] = inst
	return inst
}

// Instances is the number of live Durable Object instances.
func (w *World) Instances() int { return len(w.instances) }

// Alarm retry policy (contract constants).
const maxAlarmRetries = contract.AlarmMaxRetries

// alarmBackoff is the delay before retry n+1 (n = the retryCount that failed): 2 s, 4 s, 8 s, …
func alarmBackoff(n int) time.Duration {
	return time.Duration(contract.AlarmFirstBackoffMsec) * time.Millisecond << n
}
