package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/evmlb/evmlb/internal/config"
)

// validate checks UPSTREAM_CONFIG and the EVMLB_* settings with config.Load, and CLIENT_KEYS with clients.Parse,
// the code the balancer runs when it starts, and prints every problem with its JSON path (or variable). The text comes from FILE, from stdin ("-"),
// else from UPSTREAM_CONFIG in the environment or the env file. --probe then asks every upstream.
func validate(ctx context.Context, args []string, env Env) error {
	fl := flags("validate")
	envFile := fl.String("env-file", ".dev.vars", "KEY=VALUE file read under the environment")
	probe := fl.Bool("probe", false, "call every upstream: eth_chainId, eth_blockNumber, eth_syncing, latency, batches")
	timeout := fl.Duration("timeout", 5*time.Second, "bound on each upstream's probe")
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError("usage: evmlb validate [FILE|-] [--probe] [--timeout 5s] [--env-file .dev.vars]")
	}
	v, err := loadVars(*envFile, env)
	if err != nil {
		return err
	}
	c, s, from, problems, err := load(pos, v, env)
	if err != nil {
		return err
	}
	out := env.Stdout
	if len(problems) > 0 {
		fmt.Fprintf(out, "%s (%s): %d problem%s\n", config.EnvUpstreams, from, len(problems), plural(len(problems)))
		for _, p := range problems {
			fmt.Fprintln(out, "  "+p.String())
		}
		n := len(problems) + checkKeys(out, v.get(config.EnvClientKeys), "environment or .dev.vars", nil, false)
		fmt.Fprintf(env.Stderr, "evmlb: the configuration is not valid (%d problem%s)\n", n, plural(n))
		return exitError(1)
	}
	fmt.Fprintf(out, "%s (%s): valid, %d chain%s, %d upstream%s\n", config.EnvUpstreams, from,
		len(c.Chains()), plural(len(c.Chains())), len(c.Upstreams), plural(len(c.Upstreams)))
	for _, chain := range c.Chains() {
		var eps []string
		for _, u := range c.ChainUpstreams(chain) {
			eps = append(eps, u.Name+" "+u.Endpoint())
		}
		id := "chain id: majority"
		if cid := c.ChainSettings(chain).ChainID; cid != 0 {
			id = fmt.Sprintf("chain id %d", cid)
		}
		fmt.Fprintf(out, "  %s (%s): %s\n", chain, id, strings.Join(eps, ", "))
	}
	if n := checkKeys(out, v.get(config.EnvClientKeys), "environment or .dev.vars", c, true); n > 0 {
		fmt.Fprintf(env.Stderr, "evmlb: the configuration is not valid (%d problem%s)\n", n, plural(n))
		return exitError(1)
	}
	if !*probe {
		return nil
	}
	return runProbe(ctx, c, s, *timeout, env)
}

// load reads the configuration as the balancer would: UPSTREAM_CONFIG from pos[0] (a file, or "-" for stdin)
// when given, else from the variables; EVMLB_* from the variables. from says where the text came from.
func load(pos []string, v vars, env Env) (c *config.Config, s config.Settings, from string, ps []config.Problem, err error) {
	text, from := "", "environment or .dev.vars"
	switch {
	case len(pos) == 1 && pos[0] == "-":
		b, err := io.ReadAll(env.Stdin)
		if err != nil {
			return nil, s, "", nil, fmt.Errorf("cannot read stdin: %v", err)
		}
		text, from = string(b), "stdin"
	case len(pos) == 1:
		b, err := os.ReadFile(pos[0])
		if err != nil {
			return nil, s, "", nil, fmt.Errorf("cannot read %s: %v", pos[0], pathCause(err))
		}
		text, from = string(b), pos[0]
		if strings.TrimSpace(text) == "" {
			return nil, s, "", nil, fmt.Errorf("%s is empty", pos[0])
		}
	default:
		text = v.get(config.EnvUpstreams)
	}
	c, s, source, ps := config.Load(func(k string) string {
		if k == config.EnvUpstreams {
			return text
		}
		return v.get(k)
	})
	if source == config.SourceDefault {
		from = "not set: the embedded default"
	}
	return c, s, from, ps, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// pathCause drops the path from an *os.PathError, leaving "no such file or directory".
func pathCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
