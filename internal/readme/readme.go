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

// Align pairs the code's rows, named by keys (as README.md writes a row's first cell), with rows by their first
// cell. It returns each key's row (nil when README.md lacks it) and the problems: each row missing from
// README.md, each row README.md has and the code does not, each name README.md has twice and, when the rows are
// the same, the first one out of the code's order.
func Align(rows []Row, keys []string) ([]*Row, []string) {
	var problems []string
	byName := map[string]*Row{}
	for i, r := range rows {
		if byName[r.Cells[0]] != nil {
			problems = append(problems, fmt.Sprintf("README.md:%d: row %s a second time", r.Line, r.Cells[0]))
			continue
		}
		byName[r.Cells[0]] = &rows[i]
	}
	out := make([]*Row, len(keys))
	for i, k := range keys {
		if out[i] = byName[k]; out[i] == nil {
			problems = append(problems, fmt.Sprintf("row %s is missing from README.md", k))
		}
	}
	for _, r := range rows {
		if !slices.Contains(keys, r.Cells[0]) {
			problems = append(problems, fmt.Sprintf("README.md:%d: row %s is not in the code's table", r.Line, r.Cells[0]))
		}
	}
	if len(problems) == 0 {
		for i, r := range rows {
			if r.Cells[0] != keys[i] {
				problems = append(problems, fmt.Sprintf("README.md:%d: row %s is out of order: the code's table has %s here", r.Line, r.Cells[0], keys[i]))
				break
			}
		}
	}
	return out, problems
}
