package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/workers"
)

// account is what a Cloudflare API call needs: the token, the account and the Worker's script name.
type account struct {
	token, id, script string
	api               *workers.WorkerService
}

// cfFlags are the flags of the commands that call Cloudflare.
type cfFlags struct{ script, wrangler *string }

func addCFFlags(fl interface {
	String(string, string, string) *string
}) cfFlags {
	return cfFlags{
		script:   fl.String("script", "", "the Worker's script name (default: name in wrangler.toml)"),
		wrangler: fl.String("wrangler", "wrangler.toml", "the wrangler configuration naming the script"),
	}
}

// newAccount reads CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID; need says whether their absence is an error.
func newAccount(f cfFlags, env Env, need bool) (*account, error) {
	a := &account{token: env.Getenv("CLOUDFLARE_API_TOKEN"), id: env.Getenv("CLOUDFLARE_ACCOUNT_ID"), script: *f.script}
	if a.token == "" || a.id == "" {
		if !need {
			return nil, nil
		}
		return nil, errors.New("set CLOUDFLARE_API_TOKEN (a token with Workers Scripts: Edit) and CLOUDFLARE_ACCOUNT_ID")
	}
	if a.script == "" {
		name, err := scriptName(*f.wrangler)
		if err != nil {
			return nil, err
		}
		a.script = name
	}
	// Not cloudflare.NewClient: it reads CLOUDFLARE_* from the process itself; every input here is explicit.
	opts := []option.RequestOption{option.WithEnvironmentProduction(), option.WithAPIToken(a.token)}
	if env.CloudflareBaseURL != "" {
		opts = append(opts, option.WithBaseURL(env.CloudflareBaseURL), option.WithMaxRetries(0))
	}
	if env.HTTP != nil {
		opts = append(opts, option.WithHTTPClient(env.HTTP))
	}
	a.api = workers.NewWorkerService(opts...)
	return a, nil
}

// scriptName reads the top-level name = "…" of a wrangler.toml.
func scriptName(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s for the script name (or pass --script): %v", path, pathCause(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			break // a table: the top level is over
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "name" {
			v, _, _ = strings.Cut(strings.TrimSpace(v), " #")
			if s, err := strconv.Unquote(strings.TrimSpace(v)); err == nil && s != "" {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("%s has no top-level name = \"…\" (or pass --script)", path)
}

// apiError turns an error of cloudflare-go into one line that says what to do. It never holds a request body.
func (a *account) apiError(err error) error {
	var ae *cloudflare.Error
	if errors.As(err, &ae) {
		code := ae.StatusCode
		switch {
		case code == 401 || code == 403:
			return fmt.Errorf("Cloudflare refused the API token (HTTP %d): CLOUDFLARE_API_TOKEN needs Workers Scripts: Edit on account %s", code, a.id)
		case code == 404:
			return fmt.Errorf("Cloudflare has no Worker %q in account %s (HTTP 404): deploy it first (make deploy), or pass --script", a.script, a.id)
		case code == 429:
			return errors.New("Cloudflare is rate limiting this token (HTTP 429): try again in a minute")
		}
		msg := ""
		if len(ae.Errors) > 0 {
			msg = ": " + oneLine(ae.Errors[0].Message)
		}
		return fmt.Errorf("Cloudflare API answered HTTP %d%s", code, msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		cause := ue.Err
		var op *net.OpError
		if errors.As(cause, &op) {
			cause = op.Err
		}
		return fmt.Errorf("cannot reach the Cloudflare API: %v", cause)
	}
	return fmt.Errorf("Cloudflare API: %v", oneLine(err.Error()))
}
