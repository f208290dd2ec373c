package server

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/evmlb/evmlb/internal/config"
)

// LoadEnvFile reads KEY=VALUE lines (blank lines and # comments skipped; values may be single- or
// double-quoted). A missing file is no error: it yields an empty map. Errors never include values.
func LoadEnvFile(path string) (map[string]string, error) {
	env := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return env, nil
	}
	if err != nil {
		return nil, fmt.Errorf("env file %s is unreadable: %v", path, unwrapPathError(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("env file %s: line %d is not KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("env file %s: line %d has a badly quoted value", path, n)
			}
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file %s is unreadable: %v", path, err)
	}
	return env, nil
}

// OverrideFromEnviron sets, in env, the process environment's variables of the balancer (config.Environment:
// UPSTREAM_CONFIG, ADMIN_PASSWORD, ADMIN_USER, METRICS_TOKEN and EVMLB_*): they win over the env file.
func OverrideFromEnviron(env map[string]string, environ []string) {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if config.IsVariable(k) {
			env[k] = v
		}
	}
}
