package cli

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/evmlb/evmlb/internal/config"
	"github.com/evmlb/evmlb/internal/contract"
)

// Plan limits on a Worker's size, compressed (gzip): 3 MB on the Workers Free plan, 10 MB on Workers Paid
// (https://developers.cloudflare.com/workers/platform/limits/#worker-size).
var planLimits = map[string]int64{"free": 3 << 20, "paid": 10 << 20}

// deployCheck runs make deploy's checks before wrangler deploy: app.wasm's gzipped size against the plan's
// limit, the configuration to be pushed (when it is set here), and wrangler.toml's migrations.
func deployCheck(args []string, env Env) error {
	fl := flags("deploy-check")
	wasm := fl.String("wasm", "build/app.wasm", "the program")
	plan := fl.String("plan", "free", "the Workers plan whose size limit applies: free (3 MB) or paid (10 MB)")
	wrangler := fl.String("wrangler", "wrangler.toml", "the wrangler configuration")
	envFile := fl.String("env-file", ".dev.vars", "KEY=VALUE file read under the environment")
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	limit, ok := planLimits[*plan]
	if len(pos) > 0 || !ok {
		return usageError("usage: evmlb deploy-check [--plan free|paid] [--wasm build/app.wasm] [--wrangler wrangler.toml]")
	}
	size, err := gzipSize(*wasm)
	if err != nil {
		return err
	}
	if size > limit {
		return fmt.Errorf("%s is %.2f MB gzipped, over the %s plan's %d MB Worker size limit", *wasm, mb(size), *plan, limit>>20)
	}
	fmt.Fprintf(env.Stdout, "ok: %s is %.2f MB gzipped (%s plan limit %d MB)\n", *wasm, mb(size), *plan, limit>>20)
	v, err := loadVars(*envFile, env)
	if err != nil {
		return err
	}
	if v.get(config.EnvUpstreams) == "" {
		fmt.Fprintf(env.Stdout, "note: %s is not set here: the secret already on Cloudflare (or the embedded default) is served\n", config.EnvUpstreams)
	} else if _, _, _, ps := config.Load(v.get); len(ps) > 0 {
		for _, p := range ps {
			fmt.Fprintln(env.Stdout, "  "+p.String())
		}
		return fmt.Errorf("the configuration is not valid (%d problem%s): see evmlb validate", len(ps), plural(len(ps)))
	} else {
		fmt.Fprintf(env.Stdout, "ok: %s is valid\n", config.EnvUpstreams)
	}
	if err := checkMigrations(*wrangler); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "ok: %s binds every Durable Object class the balancer calls and declares a migration for each\n", *wrangler)
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// gzipSize is the size of path compressed with gzip at the best level, as Cloudflare measures a Worker.
func gzipSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read %s: %v (run make build)", path, pathCause(err))
	}
	defer f.Close()
	var n countWriter
	zw, _ := gzip.NewWriterLevel(&n, gzip.BestCompression)
	if _, err := io.Copy(zw, f); err != nil {
		return 0, fmt.Errorf("cannot read %s: %v", path, err)
	}
	zw.Close()
	return int64(n), nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// namespaces are the Durable Object namespaces app.wasm calls (CONTRACT.md), each bound to its class.
var namespaces = []struct{ binding, class string }{
	{contract.BindingChain, contract.ClassChain},
	{contract.BindingUpstream, contract.ClassUpstream},
	{contract.BindingSubs, contract.ClassSubs},
	{contract.BindingBudget, contract.ClassBudget},
}

// checkMigrations checks that every class_name of [[durable_objects.bindings]] appears in a [[migrations]]
// entry's new_sqlite_classes or new_classes (Cloudflare refuses a deploy otherwise), and that every namespace
// app.wasm calls is bound to its class (the balancer would fail its calls otherwise).
func checkMigrations(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, pathCause(err))
	}
	defer f.Close()
	type binding struct{ name, class string }
	var bound []binding
	var migrated []string
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] ")
			if table == "durable_objects.bindings" {
				bound = append(bound, binding{})
			}
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, val = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(val), `"`)
		switch {
		case table == "durable_objects.bindings" && k == "name":
			bound[len(bound)-1].name = val
		case table == "durable_objects.bindings" && k == "class_name":
			bound[len(bound)-1].class = val
		case table == "migrations" && (k == "new_sqlite_classes" || k == "new_classes"):
			for _, c := range strings.Split(strings.Trim(val, "[]"), ",") {
				if c = strings.Trim(strings.TrimSpace(c), `"`); c != "" {
					migrated = append(migrated, c)
				}
			}
		}
	}
	if len(bound) == 0 {
		return fmt.Errorf("%s binds no Durable Object class: expected ChainDurableObject, UpstreamDurableObject, SubscriptionDurableObject and BudgetDurableObject", path)
	}
	for _, b := range bound {
		if b.class != "" && !slices.Contains(migrated, b.class) {
			return fmt.Errorf("%s: Durable Object class %s has no [[migrations]] entry creating it (new_sqlite_classes)", path, b.class)
		}
	}
	for _, ns := range namespaces {
		if !slices.Contains(bound, binding{ns.binding, ns.class}) {
			return fmt.Errorf("%s does not bind %s to the Durable Object class %s, which the balancer calls: add a [[durable_objects.bindings]] entry for it and a [[migrations]] entry (a new tag) creating the class, as the repository's wrangler.toml does", path, ns.binding, ns.class)
		}
	}
	return nil
}
