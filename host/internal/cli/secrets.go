package cli

import (
	"context"
	"fmt"
	"slices"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/workers"
	"github.com/evmlb/evmlb/internal/auth"
	"github.com/evmlb/evmlb/internal/config"
)

// secretNames are the secrets push sets, in order: every secret of README.md's Configuration table
// (config.Environment), UPSTREAM_CONFIG, CLIENT_KEYS, ADMIN_PASSWORD and METRICS_TOKEN.
var secretNames = config.Secrets()

const secretsUsage = "usage: evmlb secrets push [--from FILE] [--dry-run] | list | delete NAME… [--dry-run]  (flags: --script NAME, --wrangler FILE, --env-file FILE)"

// secrets runs secrets push|list|delete on the deployed Worker through cloudflare-go's Workers.Scripts.Secrets.
// Values are never printed: only names.
func secrets(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageError(secretsUsage)
	}
	fl := flags("secrets " + args[0])
	cf := addCFFlags(fl)
	envFile := fl.String("env-file", ".dev.vars", "KEY=VALUE file read under the environment")
	from := fl.String("from", "", "KEY=VALUE file holding the values (instead of the environment and --env-file)")
	dry := fl.Bool("dry-run", false, "say what would be done, call nothing")
	pos, err := parse(fl, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "push":
		if len(pos) > 0 {
			return usageError(secretsUsage)
		}
		return push(ctx, cf, *envFile, *from, *dry, env)
	case "list":
		if len(pos) > 0 || *dry {
			return usageError(secretsUsage)
		}
		a, err := newAccount(cf, env, true)
		if err != nil {
			return err
		}
		page, err := a.api.Scripts.Secrets.List(ctx, a.script, workers.ScriptSecretListParams{AccountID: cloudflare.F(a.id)})
		if err != nil {
			return a.apiError(err)
		}
		fmt.Fprintf(env.Stdout, "secrets of %s:\n", a.script)
		for _, s := range page.Result {
			fmt.Fprintf(env.Stdout, "  %s\n", s.Name)
		}
		return nil
	case "delete":
		if len(pos) == 0 {
			return usageError(secretsUsage)
		}
		a, err := newAccount(cf, env, !*dry)
		if err != nil {
			return err
		}
		for _, name := range pos {
			if *dry {
				fmt.Fprintf(env.Stdout, "would delete %s\n", name)
				continue
			}
			if _, err := a.api.Scripts.Secrets.Delete(ctx, a.script, name, workers.ScriptSecretDeleteParams{AccountID: cloudflare.F(a.id)}); err != nil {
				return a.apiError(err)
			}
			fmt.Fprintf(env.Stdout, "deleted %s from %s\n", name, a.script)
		}
		return nil
	}
	return usageError(secretsUsage)
}

// push validates the configuration, then sets every secret that is set (secretNames) on the script.
func push(ctx context.Context, cf cfFlags, envFile, from string, dry bool, env Env) error {
	v, err := loadVars(envFile, env)
	if err != nil {
		return err
	}
	src := "the environment or " + envFile
	if from != "" {
		if v, err = loadVars(from, Env{Getenv: func(string) string { return "" }}); err != nil {
			return err
		}
		src = from
	}
	if v.get(config.EnvUpstreams) == "" {
		return fmt.Errorf("%s is not set in %s: nothing to push (the Worker would serve the embedded default)", config.EnvUpstreams, src)
	}
	_, _, _, problems := config.Load(v.get)
	if len(problems) > 0 {
		fmt.Fprintf(env.Stdout, "%s (%s): %d problem%s\n", config.EnvUpstreams, src, len(problems), plural(len(problems)))
		for _, p := range problems {
			fmt.Fprintln(env.Stdout, "  "+p.String())
		}
		return fmt.Errorf("not pushed: the configuration is not valid (%d problem%s)", len(problems), plural(len(problems)))
	}
	// CLIENT_KEYS is checked as the balancer will read it: a malformed one would shut every chain (-32066).
	if v.get(config.EnvClientKeys) != "" {
		c, _, _, _ := config.Load(v.get)
		if n := checkKeys(env.Stdout, v.get(config.EnvClientKeys), src, c, false); n > 0 {
			return fmt.Errorf("not pushed: %s is not valid (%d problem%s)", config.EnvClientKeys, n, plural(n))
		}
	}
	var names []string
	for _, n := range secretNames {
		if v.get(n) != "" {
			names = append(names, n)
		}
	}
	if !slices.Contains(names, auth.EnvPassword) {
		fmt.Fprintf(env.Stderr, "evmlb: note: %s is not set in %s: not pushed (the admin API stays as it is)\n", auth.EnvPassword, src)
	}
	a, err := newAccount(cf, env, !dry)
	if err != nil {
		return err
	}
	script := *cf.script
	if a != nil {
		script = a.script
	} else if script == "" {
		if script, err = scriptName(*cf.wrangler); err != nil {
			return err
		}
	}
	for _, n := range names {
		if dry {
			fmt.Fprintf(env.Stdout, "would set %s on %s (from %s)\n", n, script, src)
			continue
		}
		_, err := a.api.Scripts.Secrets.Update(ctx, a.script, workers.ScriptSecretUpdateParams{
			AccountID: cloudflare.F(a.id),
			Body: workers.ScriptSecretUpdateParamsBodyWorkersBindingKindSecretText{
				Name: cloudflare.F(n),
				Text: cloudflare.F(v.get(n)),
				Type: cloudflare.F(workers.ScriptSecretUpdateParamsBodyWorkersBindingKindSecretTextTypeSecretText),
			},
		})
		if err != nil {
			return a.apiError(err)
		}
		fmt.Fprintf(env.Stdout, "set %s on %s\n", n, a.script)
	}
	return nil
}
