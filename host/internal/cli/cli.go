// Package cli is the evmlb command's operator subcommands: validate (and --probe), secrets push|list|delete,
// status, deploy-check (make deploy's checks) and keys new (a client key for CLIENT_KEYS). `evmlb serve` stays in host/main.go.
//
// Every failure is one line on stderr, "evmlb: …", and a non-zero exit; nothing ever prints a secret's value:
// upstream URLs are shown as scheme and host (config.Upstream.Endpoint), secrets by name only.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/evmlb/evmlb/host/internal/server"
)

// Env is what a command takes from its process, so that tests run it in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the process environment.
	Getenv func(string) string
	// CloudflareBaseURL, when set, replaces the Cloudflare API's address (tests point it at a fake).
	CloudflareBaseURL string
	// HTTP is the client of status and --probe (nil: a default client).
	HTTP *http.Client
}

// OS is the Env of the running process.
func OS() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Commands are the subcommands Run knows, for the usage line.
const Commands = "validate [FILE|-] [--probe] | secrets push|list|delete | status --url URL | deploy-check | keys new NAME"

// Is reports whether name is one of Run's subcommands.
func Is(name string) bool {
	switch name {
	case "validate", "secrets", "status", "deploy-check", "keys":
		return true
	}
	return false
}

// exitError is a failure already reported (validate's problems): Run exits with its code and prints nothing more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Run runs one subcommand and returns the process's exit code: 0, 1 for a failure, 2 for a usage error.
func Run(ctx context.Context, args []string, env Env) int {
	if env.HTTP == nil {
		env.HTTP = &http.Client{}
	}
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: evmlb "+Commands)
		return 2
	}
	var err error
	switch args[0] {
	case "validate":
		err = validate(ctx, args[1:], env)
	case "secrets":
		err = secrets(ctx, args[1:], env)
	case "status":
		err = status(ctx, args[1:], env)
	case "deploy-check":
		err = deployCheck(args[1:], env)
	case "keys":
		err = keys(args[1:], env)
	default:
		err = usageError("unknown command " + args[0] + "; usage: evmlb " + Commands)
	}
	var code exitError
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fmt.Fprintln(env.Stderr, "evmlb: "+usage.Error())
		return 2
	default:
		fmt.Fprintln(env.Stderr, "evmlb: "+oneLine(err.Error()))
		return 1
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// flags makes a FlagSet whose errors are returned as usage errors, not printed.
func flags(name string) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	return fl
}

// parse parses args, allowing flags after the positional arguments (`validate FILE --probe`).
func parse(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, usageError(fl.Name() + ": " + err.Error())
		}
		args = fl.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// vars is the environment of the balancer as a command sees it: the process environment over the env file
// (.dev.vars by default), as `evmlb serve` and `wrangler dev` read them.
type vars struct {
	file map[string]string
	env  func(string) string
}

func loadVars(path string, env Env) (vars, error) {
	m, err := server.LoadEnvFile(path)
	if err != nil {
		return vars{}, err
	}
	return vars{file: m, env: env.Getenv}, nil
}

func (v vars) get(k string) string {
	if s := v.env(k); s != "" {
		return s
	}
	return v.file[k]
}
