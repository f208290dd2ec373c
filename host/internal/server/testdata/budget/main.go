//go:build js && wasm

// Command budget checks the budget object (BudgetDurableObject, issue 22) in workerd through the shim
// (scripts/budget-workerd-check.sh): its objects are durable.Budgets, app.wasm's, with one configured budget
// ("client:smoke": rps 5, per_day 100); its Worker calls them through protocol.Client, as the isolates will.
//
// Worker paths: GET /lease/{name}?used=N, GET /status/{name}, GET /clear/{name}: the object's answer as JSON, or
// 502 and the error.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/durable"
	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/hostcall"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

func main() {
	p := platform.Platform{
		Getenv:      jsbind.Getenv,
		Chains:      hostcall.Namespace(contract.BindingChain),
		Upstreams:   hostcall.Namespace(contract.BindingUpstream),
		Subs:        hostcall.Namespace(contract.BindingSubs),
		Budgets:     hostcall.Namespace(contract.BindingBudget),
		Sockets:     hostcall.Sockets{},
		StorageFor:  func(objectID string) platform.Storage { return hostcall.Storage{Object: objectID} },
		Post:        hostcall.Post,
		After:       hostcall.After,
		WithTimeout: hostcall.WithTimeout,
		Background:  hostcall.Background,
		Now:         time.Now,
		Logf:        log.New(os.Stderr, "budget: ", 0).Printf,
		HostKind:    jsbind.HostKind(),
		Cache:       hostcall.EdgeCache{Limit: 1 << 20},
	}
	resolve := func(name string) (budget.Limit, bool) {
		return budget.Limit{RPS: 5, PerDay: 100}, name == budget.ClientName("smoke")
	}
	objects := durable.NewBudgets(durable.Env{P: p}, resolve)
	client := protocol.Client{P: p}
	fetch := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(hostcall.CanonRole) == contract.RoleBudget {
			objects.ServeHTTP(w, r)
			return
		}
		op, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		var out any
		var err error
		switch op {
		case "lease":
			used, _ := strconv.ParseUint(r.URL.Query().Get("used"), 10, 64)
			out, err = client.Budget(r.Context(), budget.Ask{Name: name, Isolate: "workerd-check", Demand: 1, Used: used})
		case "status":
			out, err = client.BudgetStatus(r.Context(), name)
		case "clear":
			out, err = struct{}{}, client.BudgetClear(r.Context(), name)
		default:
			http.Error(w, "no such path", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
	jsbind.Serve(jsbind.Handlers{Fetch: http.HandlerFunc(fetch), MaxBodyBytes: 4096,
		Alarm: func(context.Context, string, string, int) error { return nil }})
	workers.Ready()
	select {}
}
