package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/workers"
	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/auth"
)

// status shows the script's deployments and versions (through cloudflare-go, when CLOUDFLARE_API_TOKEN and
// CLOUDFLARE_ACCOUNT_ID are set) and the balancer's routing tables from /admin/chains and /admin/upstreams.
func status(ctx context.Context, args []string, env Env) error {
	fl := flags("status")
	cf := addCFFlags(fl)
	base := fl.String("url", "", "the balancer's URL (https://evmlb.you.workers.dev, http://127.0.0.1:8787)")
	user := fl.String("user", "", "admin user (default: ADMIN_USER, else admin)")
	envFile := fl.String("env-file", ".dev.vars", "KEY=VALUE file read under the environment (ADMIN_PASSWORD)")
	timeout := fl.Duration("timeout", 15*time.Second, "bound on each request")
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *base == "" {
		return usageError("usage: evmlb status --url URL [--user NAME] [--script NAME] [--timeout 15s]")
	}
	a, err := newAccount(cf, env, false)
	if err != nil {
		return err
	}
	if a != nil {
		if err := deployments(ctx, a, env.Stdout); err != nil {
			return err
		}
	}
	v, err := loadVars(*envFile, env)
	if err != nil {
		return err
	}
	pass := v.get(auth.EnvPassword)
	if pass == "" {
		return errors.New("set ADMIN_PASSWORD (the balancer's admin password) to read its status")
	}
	if *user == "" {
		*user = v.get(auth.EnvUser)
	}
	if *user == "" {
		*user = "admin"
	}
	u, err := url.Parse(strings.TrimRight(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("--url must be an http or https URL")
	}
	get := func(path string, into any) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return adminGet(ctx, env.HTTP, u, path, *user, pass, into)
	}
	var chains struct{ Chains []adminapi.ChainSummary }
	if err := get("/admin/chains", &chains); err != nil {
		return err
	}
	var ups struct{ Upstreams []adminapi.UpstreamEntry }
	if err := get("/admin/upstreams", &ups); err != nil {
		return err
	}
	renderStatus(env.Stdout, u.Scheme+"://"+u.Host, chains.Chains, ups.Upstreams)
	return nil
}

// adminGet reads one admin endpoint as JSON. Its errors say what went wrong in one line.
func adminGet(ctx context.Context, hc *http.Client, base *url.URL, path, user, pass string, into any) error {
	where := base.Scheme + "://" + base.Host + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer in time", where)
		}
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach %s: %v", where, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: answer cut short", where)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := ""
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = ": " + oneLine(e.Error.Message)
		}
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			hint = " (wrong ADMIN_PASSWORD or --user)"
		case http.StatusNotFound:
			hint = " (is this an evmlb balancer?)"
		}
		return fmt.Errorf("%s: HTTP %d%s%s", where, resp.StatusCode, msg, hint)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: not the admin API's JSON", where)
	}
	return nil
}

// renderStatus prints one table of every chain's upstreams.
func renderStatus(w io.Writer, base string, chains []adminapi.ChainSummary, ups []adminapi.UpstreamEntry) {
	endpoint := map[string]string{}
	upErr := map[string]string{}
	for _, u := range ups {
		endpoint[u.Chain+"/"+u.Name] = u.Endpoint
		if u.Error != "" {
			upErr[u.Chain+"/"+u.Name] = u.Error
		}
	}
	fmt.Fprintf(w, "balancer %s\n", base)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAIN\tUPSTREAM\tENDPOINT\tSTATE\tREASON\tHEAD\tLAG\tLATENCY\tERROR RATE")
	for _, c := range chains {
		if c.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\terror\t%s\t-\t-\t-\t-\n", c.Chain, oneLine(c.Error))
			continue
		}
		for _, r := range c.Table {
			id := c.Chain + "/" + r.Name
			reason := r.Reason
			if e := upErr[id]; e != "" && reason == "" {
				reason = oneLine(e)
			}
			if reason == "" {
				reason = "-"
			}
			lag := "-"
			if r.Height > 0 && c.Head >= r.Height {
				lag = fmt.Sprint(c.Head - r.Height)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.0fms\t%.1f%%\n", c.Chain, r.Name, endpoint[id], r.State, reason,
				r.Height, lag, r.LatencyMS, 100*r.ErrorRate)
		}
	}
	tw.Flush()
	for _, c := range chains {
		fmt.Fprintf(w, "%s: head %d, chain id %d, %d of %d upstreams healthy\n", c.Chain, c.Head, c.ChainID, c.Healthy, c.Upstreams)
		if c.ChainIDUndecided != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Chain, c.ChainIDUndecided)
		}
	}
}

// deployments prints the script's deployments and its latest versions.
func deployments(ctx context.Context, a *account, w io.Writer) error {
	d, err := a.api.Scripts.Deployments.List(ctx, a.script, workers.ScriptDeploymentListParams{AccountID: cloudflare.F(a.id)})
	if err != nil {
		return a.apiError(err)
	}
	fmt.Fprintf(w, "Worker %s\n", a.script)
	if len(d.Deployments) == 0 {
		fmt.Fprintln(w, "  no deployment")
	}
	for i, dep := range d.Deployments {
		if i == 3 {
			break
		}
		var vs []string
		for _, v := range dep.Versions {
			vs = append(vs, fmt.Sprintf("%s %.0f%%", v.VersionID, v.Percentage))
		}
		fmt.Fprintf(w, "  deployment %s %s (%s): %s\n", dep.ID, dep.CreatedOn.Format(time.RFC3339), dep.Source, strings.Join(vs, ", "))
	}
	vs, err := a.api.Scripts.Versions.List(ctx, a.script, workers.ScriptVersionListParams{AccountID: cloudflare.F(a.id), PerPage: cloudflare.F(int64(5))})
	if err != nil {
		return a.apiError(err)
	}
	for _, v := range vs.Result.Items {
		fmt.Fprintf(w, "  version %d %s %s (%s)\n", int64(v.Number), v.ID, v.Metadata.CreatedOn, v.Metadata.Source)
	}
	fmt.Fprintln(w)
	return nil
}
