// Package repo finds the repository root and the tools the end-to-end tests
// take from it (anvil and wrangler under node_modules, build/app.wasm).
package repo

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Module is the module path whose go.mod marks the repository root.
const Module = "github.com/evmlb/evmlb"

// Root walks up from the working directory to the directory whose go.mod
// declares Module.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found: no go.mod declaring " + Module + " above the working directory")
		}
		dir = parent
	}
}

func isRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == Module
		}
	}
	return false
}

// Path joins elem to the repository root.
func Path(elem ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{root}, elem...)...), nil
}

// Exists reports whether path names an existing file or directory.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
