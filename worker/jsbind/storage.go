//go:build js && wasm

package jsbind

import (
	"context"
	"sort"
	"syscall/js"
	"time"

	"github.com/evmlb/evmlb/internal/platform"
)

// maxKeysPerCall is Cloudflare's limit of keys per storage get/put/delete call.
const maxKeysPerCall = 128

// storage is a Durable Object instance's storage (CONTRACT.md, context.host.state(id).storage).
type storage struct{ v js.Value }

var _ platform.Storage = storage{}

// StorageFor returns the storage of the live instance objectID, or nil when the host has none.
func StorageFor(objectID string) platform.Storage {
	st := js.Global().Get("context").Get("host").Call("state", objectID)
	if st.Type() != js.TypeObject {
		return nil
	}
	return storage{v: st.Get("storage")}
}

func (s storage) Get(ctx context.Context, key string) (string, bool, error) {
	v, err := await(ctx, s.v.Call("get", key))
	if err != nil || v.Type() != js.TypeString {
		return "", false, err
	}
	return v.String(), true, nil
}

func (s storage) Put(ctx context.Context, entries map[string]string) error {
	keys := sortedKeys(entries)
	for len(keys) > 0 {
		n := min(len(keys), maxKeysPerCall)
		obj := js.Global().Get("Object").New()
		for _, k := range keys[:n] {
			obj.Set(k, entries[k])
		}
		if _, err := await(ctx, s.v.Call("put", obj)); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s storage) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxKeysPerCall)
		arr := js.Global().Get("Array").New()
		for _, k := range keys[:n] {
			arr.Call("push", k)
		}
		if _, err := await(ctx, s.v.Call("delete", arr)); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s storage) List(ctx context.Context, prefix string) (map[string]string, error) {
	opts := js.Global().Get("Object").New()
	opts.Set("prefix", prefix)
	m, err := await(ctx, s.v.Call("list", opts))
	if err != nil {
		return nil, err
	}
	entries := js.Global().Get("Array").Call("from", m.Call("entries"))
	out := make(map[string]string, entries.Length())
	for i := 0; i < entries.Length(); i++ {
		e := entries.Index(i)
		if v := e.Index(1); v.Type() == js.TypeString {
			out[e.Index(0).String()] = v.String()
		}
	}
	return out, nil
}

func (s storage) DeleteAll(ctx context.Context) error {
	_, err := await(ctx, s.v.Call("deleteAll"))
	return err
}

func (s storage) GetAlarm(ctx context.Context) (time.Time, bool, error) {
	v, err := await(ctx, s.v.Call("getAlarm"))
	if err != nil || v.Type() != js.TypeNumber {
		return time.Time{}, false, err
	}
	return time.UnixMilli(int64(v.Float())), true, nil
}

func (s storage) SetAlarm(ctx context.Context, at time.Time) error {
	_, err := await(ctx, s.v.Call("setAlarm", float64(at.UnixMilli())))
	return err
}

func (s storage) DeleteAlarm(ctx context.Context) error {
	_, err := await(ctx, s.v.Call("deleteAlarm"))
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
