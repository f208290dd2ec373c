// Package readme reads the tables of the repository's README.md, for the tests that hold them to the code's own
// tables (config's settings, retry's failure classes, jsonrpc's errors). Tests only: nothing the balancer runs
// imports it.
package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Row is one row of a Markdown table: its cells, trimmed, and its line number in README.md.
type Row struct {
	Cells []string
	Line  int
}

// Table returns the rows of the table of README.md whose header row is exactly header (the cells' text, in
// order), the separator row left out. It is an error when no such table exists, when there are two, or when a
// row has another number of cells than the header.
func Table(header ...string) ([]Row, error) {
	text, err := read()
	if err != nil {
		return nil, err
	}
	var rows []Row
	found := 0
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if cells, ok := split(lines[i]); !ok || !slices.Equal(cells, header) {
			continue
		}
		found++
		i += 2 // the separator
		for ; i < len(lines); i++ {
			cells, ok := split(lines[i])
			if !ok {
				break
			}
			if len(cells) != len(header) {
				return nil, fmt.Errorf("README.md:%d: %d cells, the table %q has %d", i+1, len(cells), strings.Join(header, " | "), len(header))
			}
			rows = append(rows, Row{Cells: cells, Line: i + 1})
		}
	}
	switch found {
	case 0:
		return nil, fmt.Errorf("README.md has no table with the header %q", strings.Join(header, " | "))
	case 1:
		return rows, nil
	}
	return nil, fmt.Errorf("README.md has %d tables with the header %q", found, strings.Join(header, " | "))
}

// Text is the whole of README.md.
func Text() (string, error) { return read() }

// split reads a table row: "| a | b |" is [a b]. A row's cells hold no "|" of their own (README.md's don't).
func split(line string) ([]string, bool) {
	line = strings.TrimSpace(line)
	if len(line) < 2 || line[0] != '|' || line[len(line)-1] != '|' {
		return nil, false
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells, true
}

// read finds README.md in the first directory at or above the working directory that holds go.mod.
func read() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, "README.md"))
			return string(b), err
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = up
	}
}
