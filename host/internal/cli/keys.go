package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/evmlb/evmlb/internal/clients"
	"github.com/evmlb/evmlb/internal/config"
)

const keysUsage = "usage: evmlb keys new NAME"

// keys runs `keys new NAME`: it makes a client key ("evmlb_" and 43 characters of base64url, 32 random bytes),
// prints it once on stdout and the CLIENT_KEYS entry to add, which holds only the key's SHA-256. The key is kept
// nowhere: shown once, it cannot be shown again (make a new one).
func keys(args []string, env Env) error {
	fl := flags("keys")
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "new" {
		return usageError(keysUsage)
	}
	name := pos[1]
	if !clients.ValidName(name) {
		return usageError("keys new: the name " + clients.NameRule)
	}
	if name == clients.Unknown {
		return usageError(`keys new: the name "unknown" is reserved`)
	}
	key := clients.NewKey()
	entry, _ := json.Marshal(struct {
		Name string `json:"name"`
		Hash string `json:"key_sha256"`
	}{name, clients.Hash(key)})
	out := env.Stdout
	fmt.Fprintf(out, "client key for %s (shown this once: give it to the client now; the balancer keeps only its hash):\n\n  %s\n\n", name, key)
	fmt.Fprintf(out, "add this entry to the JSON array of %s (optional fields: chains, allow or deny, rps, burst, per_day),\n", config.EnvClientKeys)
	fmt.Fprintf(out, "then run `evmlb secrets push`:\n\n  %s\n\n", entry)
	fmt.Fprintf(out, "the client sends the key as POST /{chain}/{key} or, better (a URL's path shows in request logs), as the header\n")
	fmt.Fprintf(out, "Authorization: Bearer {key}\n")
	return nil
}

// checkKeys checks CLIENT_KEYS (text, read from from) as the balancer does when it starts, its chains against c's
// (nil: the upstream configuration is not valid, chains are not checked), and prints its problems, or a line
// saying what it holds when summary is set: never a key or a hash. It returns the number of problems.
func checkKeys(out io.Writer, text, from string, c *config.Config, summary bool) int {
	var known func(string) bool
	if c != nil {
		known = c.HasChain
	}
	k, ps := clients.Parse(text, known)
	switch {
	case len(ps) > 0:
		fmt.Fprintf(out, "%s (%s): %d problem%s\n", config.EnvClientKeys, from, len(ps), plural(len(ps)))
		for _, p := range ps {
			fmt.Fprintln(out, "  "+p.String())
		}
	case !summary:
	case !k.Enabled():
		fmt.Fprintf(out, "%s (%s): not set: every chain is open to anyone who knows the URL\n", config.EnvClientKeys, from)
	default:
		n := len(k.Clients())
		fmt.Fprintf(out, "%s (%s): valid, %d client%s\n", config.EnvClientKeys, from, n, plural(n))
		for _, cl := range k.Clients() {
			chains := "every chain"
			if cl.Chains != nil {
				chains = fmt.Sprint(cl.Chains)
			}
			limits := "no limit"
			if !cl.Limit.None() {
				limits = fmt.Sprintf("rps %g, burst %g, per_day %d", cl.Limit.RPS, cl.Limit.Burst, cl.Limit.PerDay)
			}
			fmt.Fprintf(out, "  %s: %s; %s\n", cl.Name, chains, limits)
		}
	}
	return len(ps)
}
