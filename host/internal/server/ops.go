package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/host/internal/store"
	"github.com/evmlb/evmlb/internal/contract"
)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// newClient is the client of fetch operations: connections are kept and reused, redirects are results (as
// fetch with redirect: "manual"), and the deadline of each operation is its context's.
func newClient(base *http.Client) *http.Client {
	if base != nil {
		c := *base
		c.CheckRedirect = noRedirects
		c.Timeout = 0
		return &c
	}
	return &http.Client{
		CheckRedirect: noRedirects,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// fetchOp performs an outbound request on a goroutine of its own; the host enforces the timeout and the limit.
func (s *Server) fetchOp(c *call, o *op, m *message) {
	ctx, cancel := context.WithTimeout(s.ctx, ms(m.timeout))
	o.cancel = cancel
	go func() {
		r := s.fetch(ctx, m)
		cancel()
		c.x.push(event{c: c, res: &opResult{m.id, r}})
	}()
}

func (s *Server) fetch(ctx context.Context, m *message) result {
	u, err := url.Parse(m.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errResult(contract.ErrInvalid, "fetch: invalid URL")
	}
	if m.body != nil && (m.method == http.MethodGet || m.method == http.MethodHead) {
		return errResult(contract.ErrInvalid, "fetch: a GET or HEAD request cannot have a body")
	}
	var body io.Reader
	if m.body != nil {
		body = bytes.NewReader(m.body)
	}
	req, err := http.NewRequestWithContext(ctx, m.method, m.url, body)
	if err != nil {
		return errResult(contract.ErrInvalid, "fetch: invalid request")
	}
	for i := 0; i+1 < len(m.headers); i += 2 {
		if strings.EqualFold(m.headers[i], "host") {
			req.Host = m.headers[i+1]
			continue
		}
		req.Header.Add(m.headers[i], m.headers[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		return fetchError(ctx, err)
	}
	defer res.Body.Close()
	limit := int64(m.limit)
	if limit == 0 {
		limit = math.MaxInt64 - 1 // no limit
	}
	if res.ContentLength > limit {
		return errResult(contract.ErrTooLarge, fmt.Sprintf("the answer is longer than %d bytes", limit))
	}
	data, err := readLimited(res.Body, res.ContentLength, limit)
	if err != nil {
		if errors.Is(err, errLimit) {
			return errResult(contract.ErrTooLarge, fmt.Sprintf("the answer is longer than %d bytes", limit))
		}
		return fetchError(ctx, err)
	}
	return result{resp: true, status: res.StatusCode, headers: flatHeaders(res.Header, ""), body: data}
}

var errLimit = errors.New("limit exceeded")

// readLimited reads a whole body of at most limit bytes, in one allocation when its length is known.
func readLimited(r io.Reader, length, limit int64) ([]byte, error) {
	if length >= 0 {
		b := make([]byte, length)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = errLimit
	}
	return b, err
}

// fetchError classifies a failed request. The message carries the cause, never the URL (it may hold a key).
func fetchError(ctx context.Context, err error) result {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errResult(contract.ErrTimeout, "the operation timed out")
	case ctx.Err() != nil:
		return errResult(contract.ErrAborted, "the operation was aborted")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errResult(contract.ErrNetwork, err.Error())
}

// flatHeaders lists h as [name, value, …], names lower-case and sorted, the values of a name joined with ", "
// (set-cookie's kept apart), as a Headers object iterates in workerd. host, when set, is listed as "host".
func flatHeaders(h http.Header, host string) []string {
	type entry struct {
		name   string
		values []string
	}
	list := make([]entry, 0, len(h)+1)
	for k, vs := range h {
		list = append(list, entry{strings.ToLower(k), vs})
	}
	if host != "" {
		list = append(list, entry{"host", []string{host}})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	out := make([]string, 0, 2*len(list))
	for _, e := range list {
		if e.name == "set-cookie" {
			for _, v := range e.values {
				out = append(out, e.name, v)
			}
			continue
		}
		out = append(out, e.name, strings.Join(e.values, ", "))
	}
	return out
}

// sleepOp is a timer of the call. A Worker call's sleep ends early when Shutdown asks (shutdown.go).
func (s *Server) sleepOp(c *call, o *op, m *message) {
	done := func() { c.x.push(event{c: c, res: &opResult{m.id, result{}}}) }
	if c.role == contract.RoleWorker {
		s.workerSleep(o, ms(m.ms), done)
		return
	}
	t := s.clock.AfterFunc(ms(m.ms), done)
	o.cancel = func() { t.Stop() }
}

// objectOp calls the Durable Object idFromName(name) of the namespace: a fetch call to that instance in the
// objects runtime, whose answer becomes the operation's result. The timeout ends the operation, not the call.
func (s *Server) objectOp(c *call, o *op, m *message) {
	s.callObject(c, o, m, m.method, m.body, false)
}

// upgradeOp is an object call (a GET) to a subs object whose answer, a WebSocket or a refusal, will answer the
// worker call's client (call.settle).
func (s *Server) upgradeOp(c *call, o *op, m *message) {
	s.callObject(c, o, m, http.MethodGet, nil, true)
}

// nsClass is the role and class of a namespace binding.
func nsClass(ns string) (string, string) {
	switch ns {
	case contract.BindingUpstream:
		return contract.RoleUpstream, contract.ClassUpstream
	case contract.BindingSubs:
		return contract.RoleSubs, contract.ClassSubs
	case contract.BindingBudget:
		return contract.RoleBudget, contract.ClassBudget
	}
	return contract.RoleChain, contract.ClassChain
}

func (s *Server) callObject(c *call, o *op, m *message, method string, body []byte, upgrade bool) {
	role, class := nsClass(m.namespace)
	rt, err := s.objects.get()
	if err != nil {
		s.logf("objects runtime: %v", err)
		c.settle(m.id, internalErrorResult())
		return
	}
	s.objects.served.Add(1)
	id := IDFromName(class, m.name)
	inst := rt.instance(role, id)
	oc := s.newCall(rt, inst.x, contract.CallFetch, role)
	oc.object, oc.instance, oc.what = id, inst.token, role+" object "+id[:12]
	oc.fromUpgrade = upgrade
	caller, opID := c, m.id
	t := s.clock.AfterFunc(ms(m.timeout), func() {
		caller.x.push(event{c: caller, res: &opResult{opID, errResult(contract.ErrTimeout, "the object did not answer in time")}})
	})
	o.cancel = func() { t.Stop() }
	oc.answerTo = func(r result) {
		t.Stop()
		caller.x.push(event{c: caller, res: &opResult{opID, r}})
	}
	headers := rt.selectHeaders(func(name string) []string {
		var vs []string
		for i := 0; i+1 < len(m.headers); i += 2 {
			if strings.EqualFold(m.headers[i], name) {
				vs = append(vs, m.headers[i+1])
			}
		}
		return vs
	})
	rt.beginCall(oc, callMeta(contract.CallFetch, role, id, inst.token, method, contract.ObjectURLBase+m.path, false, 0, headers), body)
}

// callMeta is the call of begin (CONTRACT.md §3): [kind, role, object, instance, method, url, bodyTooLarge,
// retryCount, name1, value1, …].
func callMeta(kind, role, object, instance, method, url string, tooLarge bool, retry int, headers []string) []string {
	large := ""
	if tooLarge {
		large = "1"
	}
	return append([]string{kind, role, object, instance, method, url, large, strconv.Itoa(retry)}, headers...)
}

// selectHeaders lists the request headers Go asked for (binding.requestHeaders) as [name, value, …], in name
// order, the values of a name joined with ", " as a Headers object reads them.
func (rt *runtime) selectHeaders(values func(name string) []string) []string {
	var out []string
	for _, name := range rt.requestHeaders {
		if vs := values(name); len(vs) > 0 {
			out = append(out, name, strings.Join(vs, ", "))
		}
	}
	return out
}

// storageOp queues a storage call on the object's storage queue: the storage of one instance is read and
// written in the order of its operations.
func (s *Server) storageOp(c *call, o *op, m *message) {
	s.storageQueue(c.object).add(func() {
		r := s.storage(c, m)
		c.x.push(event{c: c, res: &opResult{m.id, r}})
	})
}

func (s *Server) storage(c *call, m *message) result {
	db, id := s.db, c.object
	fail := func(err error) result { return errResult(contract.ErrStorage, err.Error()) }
	switch m.call {
	case contract.StorageGet:
		v, ok, err := db.Get(id, m.key)
		if err != nil {
			return fail(err)
		}
		return result{value: v, hasValue: ok}
	case contract.StoragePut:
		if len(m.entries)/2 > contract.MaxKeys {
			return errResult(contract.ErrInvalid, fmt.Sprintf("too many keys in one call (at most %d)", contract.MaxKeys))
		}
		kvs := make([]store.KV, 0, len(m.entries)/2)
		for i := 0; i+1 < len(m.entries); i += 2 {
			kvs = append(kvs, store.KV{Key: m.entries[i], Value: m.entries[i+1]})
		}
		if err := db.Put(id, kvs); err != nil {
			return fail(err)
		}
	case contract.StorageDelete:
		if len(m.keys) > contract.MaxKeys {
			return errResult(contract.ErrInvalid, fmt.Sprintf("too many keys in one call (at most %d)", contract.MaxKeys))
		}
		if _, err := db.Delete(id, m.keys); err != nil {
			return fail(err)
		}
	case contract.StorageList:
		kvs, err := db.List(id, m.prefix, 0)
		if err != nil {
			return fail(err)
		}
		entries := make([]string, 0, 2*len(kvs))
		for _, kv := range kvs {
			entries = append(entries, kv.Key, kv.Value)
		}
		return result{entries: entries, hasEntries: true}
	case contract.StorageDeleteAll:
		if err := db.DeleteAll(id); err != nil {
			return fail(err)
		}
	case contract.StorageGetAlarm:
		a, ok, err := db.GetAlarm(id)
		if err != nil {
			return fail(err)
		}
		return result{time: float64(a.At), hasTime: ok}
	case contract.StorageSetAlarm:
		a := store.Alarm{ObjectID: id, Role: c.role, At: int64(m.time)}
		if err := db.SetAlarm(a); err != nil {
			return fail(err)
		}
		s.arm(a)
	case contract.StorageDeleteAlarm:
		if err := db.DeleteAlarm(id); err != nil {
			return fail(err)
		}
		s.disarm(id)
	}
	return result{}
}
