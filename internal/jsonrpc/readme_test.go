package jsonrpc

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/evmlb/evmlb/internal/readme"
)

// TestReadmeErrorTable holds README.md's table of errors to Table: every error, in Table's order, no other row,
// each with its code and HTTP status.
func TestReadmeErrorTable(t *testing.T) {
	rows, err := readme.Table("code", "HTTP", "when")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range compareErrors(rows, Table) {
		t.Errorf("README.md's table of errors differs from jsonrpc.Table: %s", p)
	}
}

func compareErrors(rows []readme.Row, table []*Error) []string {
	// A code several errors share (-32005, "limit exceeded") has one row, with the first one's status.
	var unique []*Error
	for _, e := range table {
		if !slices.ContainsFunc(unique, func(u *Error) bool { return u.Code == e.Code }) {
			unique = append(unique, e)
		}
	}
	table = unique
	keys := make([]string, len(table))
	for i, e := range table {
		keys[i] = strconv.Itoa(e.Code)
	}
	aligned, out := readme.Align(rows, keys)
	for i, e := range table {
		r := aligned[i]
		if r == nil {
			continue
		}
		if status := strconv.Itoa(e.Status); r.Cells[1] != status {
			out = append(out, fmt.Sprintf("README.md:%d: row %s (%s): HTTP %s, jsonrpc.Table's is %s", r.Line, keys[i], e.Message, r.Cells[1], status))
		}
	}
	return out
}
