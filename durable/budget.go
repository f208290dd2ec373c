package durable

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
)

// The budget object (issue 22): one BudgetDurableObject per limit every isolate shares (BUDGET,
// idFromName(budget.ClientName(key)) or idFromName(budget.UpstreamName(chain, upstream))). It leases each
// isolate a share of the rate (budget.Allocator) and keeps the UTC day's count, in memory and in storage (keyDay,
// "YYYY-MM-DD <used>"), so that a new instance goes on counting the day where the last one stopped. It finds its
// Limit itself, from its own configuration, by the ask's name: an isolate cannot raise a limit.

// keyDay is the storage key of the day's count: "YYYY-MM-DD <used>".
const keyDay = "day"

// Bounds of an ask (POST /lease): its body and its names. A budget's name is "client:" + a key's name (at most 64
// bytes) or "upstream:" + chain + "/" + upstream.
const (
	maxAskBytes    = 4 << 10
	maxBudgetName  = 1 << 10
	maxIsolateName = 64
)

// Resolve finds the Limit of the budget name in the configuration; false: no such budget.
type Resolve func(name string) (budget.Limit, bool)

// Budgets serves every BudgetDurableObject instance of the runtime.
type Budgets struct {
	env     Env
	resolve Resolve
	objs    *registry[budgetObject]
}

// NewBudgets makes the budget objects' handler; resolve finds a budget's Limit by its name.
func NewBudgets(env Env, resolve Resolve) *Budgets {
	return &Budgets{env: env, resolve: resolve, objs: newRegistry(func(string) *budgetObject {
		return &budgetObject{alloc: budget.NewAllocator()}
	})}
}

var _ http.Handler = (*Budgets)(nil)

// budgetObject is one instance's memory; the day's count is loaded from storage on its first call.
type budgetObject struct {
	mu     sync.Mutex // held across the storage calls, so that the stored count never goes back
	loaded bool
	alloc  *budget.Allocator
}

// load reads the day's count once (with o.mu held). A damaged value starts the day afresh.
func (o *budgetObject) load(ctx context.Context, st platform.Storage, logf func(string, ...any)) error {
	if o.loaded {
		return nil
	}
	v, ok, err := st.Get(ctx, keyDay)
	if err != nil {
		return err
	}
	if ok {
		if day, used, good := parseDay(v); good {
			o.alloc.Restore(day, used)
		} else {
			logf("budget object: a damaged day count in storage: starting the day afresh")
		}
	}
	o.loaded = true
	return nil
}

// parseDay reads a stored day count, "YYYY-MM-DD <used>".
func parseDay(v string) (day string, used uint64, ok bool) {
	day, n, found := strings.Cut(v, " ")
	if !found {
		return "", 0, false
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return "", 0, false
	}
	used, err := strconv.ParseUint(n, 10, 64)
	return day, used, err == nil
}

// budgetPaths are the paths a budget object serves, and the method of each.
var budgetPaths = map[string]string{protocol.PathLease: http.MethodPost, protocol.PathStatus: http.MethodGet,
	protocol.PathClear: http.MethodPost}

// ServeHTTP serves the object named by the contract's object header: POST /lease, GET /status, POST /clear.
func (bs *Budgets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(contract.HeaderObject)
	st := bs.env.P.StorageFor(id)
	if st == nil {
		jsonrpc.ErrInternal.With("no storage for this object").Write(w, nil)
		return
	}
	method, known := budgetPaths[r.URL.Path]
	switch {
	case !known:
		jsonrpc.ErrNotFound.Write(w, nil)
		return
	case r.Method != method:
		jsonrpc.ErrMethodNotAllowed.Write(w, nil)
		return
	}
	o := bs.objs.get(id, r.Header.Get(contract.HeaderInstance))
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path == protocol.PathClear {
		bs.clear(w, r.Context(), o, st)
		return
	}
	if err := o.load(r.Context(), st, bs.env.P.Logf); err != nil {
		bs.env.P.Logf("budget object: storage: %v", err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	if r.URL.Path == protocol.PathStatus {
		writeJSON(w, o.alloc.Status(bs.env.P.Now(), r.Header.Get(protocol.HeaderName)))
		return
	}
	bs.lease(w, r, o, st)
}

// lease answers an isolate's ask with its grant (o.mu held). A lease that reports requests used stores the
// day's count before it answers.
func (bs *Budgets) lease(w http.ResponseWriter, r *http.Request, o *budgetObject, st platform.Storage) {
	ask, bad := readAsk(r)
	if bad != nil {
		bad.Write(w, nil)
		return
	}
	if name := r.Header.Get(protocol.HeaderName); name != "" && name != ask.Name {
		jsonrpc.ErrInvalidRequest.With("lease: the ask's name is not this object's").Write(w, nil)
		return
	}
	lim, ok := bs.resolve(ask.Name)
	if !ok {
		jsonrpc.ErrNotFound.With("no such budget in the configuration").Write(w, nil)
		return
	}
	g := o.alloc.Lease(bs.env.P.Now(), lim, ask)
	if ask.Used > 0 {
		day, used := o.alloc.Day()
		if err := st.Put(r.Context(), map[string]string{keyDay: day + " " + strconv.FormatUint(used, 10)}); err != nil {
			bs.env.P.Logf("budget object: storing the day's count: %v", err)
			jsonrpc.ErrInternal.With("storage").Write(w, nil)
			return
		}
	}
	writeJSON(w, g)
}

// readAsk reads a lease's body: a budget.Ask of at most maxAskBytes, with a name and an isolate.
func readAsk(r *http.Request) (budget.Ask, *jsonrpc.Error) {
	var ask budget.Ask
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	b, err := io.ReadAll(io.LimitReader(body, maxAskBytes+1))
	switch {
	case err != nil:
		return ask, jsonrpc.ErrInvalidRequest.With("lease: the body could not be read")
	case len(b) > maxAskBytes:
		return ask, jsonrpc.ErrBodyTooLarge.With("lease: more than " + strconv.Itoa(maxAskBytes) + " bytes")
	}
	if err := json.Unmarshal(b, &ask); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return ask, jsonrpc.ErrParse.With("lease: the body is not JSON")
		}
		return ask, jsonrpc.ErrInvalidRequest.With("lease: the body is not an ask")
	}
	switch {
	case ask.Name == "" || len(ask.Name) > maxBudgetName:
		return ask, jsonrpc.ErrInvalidRequest.With("lease: name must be 1 to " + strconv.Itoa(maxBudgetName) + " bytes")
	case ask.Isolate == "" || len(ask.Isolate) > maxIsolateName:
		return ask, jsonrpc.ErrInvalidRequest.With("lease: isolate must be 1 to " + strconv.Itoa(maxIsolateName) + " bytes")
	case ask.Demand < 0:
		return ask, jsonrpc.ErrInvalidRequest.With("lease: demand must not be negative")
	}
	return ask, nil
}

// clear forgets everything the object holds, in memory and in storage, the day's count too (admin's
// clear_storage; o.mu held, so that no lease stores a count after it).
func (bs *Budgets) clear(w http.ResponseWriter, ctx context.Context, o *budgetObject, st platform.Storage) {
	o.alloc, o.loaded = budget.NewAllocator(), true
	if err := st.DeleteAll(ctx); err != nil {
		o.loaded = false // read storage again: it may hold the count still
		bs.env.P.Logf("budget object: clear: %v", err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	writeJSON(w, struct{}{})
}
