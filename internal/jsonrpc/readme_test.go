package jsonrpc

import (
	"fmt"
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
	var out []string
	for i := range max(len(rows), len(table)) {
		if i >= len(rows) {
			out = append(out, fmt.Sprintf("row %d (%s) is missing from README.md (after line %d)", table[i].Code, table[i].Message, rows[len(rows)-1].Line))
			continue
		}
		r := rows[i]
		if i >= len(table) {
			out = append(out, fmt.Sprintf("README.md:%d: row %s is not an error of jsonrpc.Table", r.Line, r.Cells[0]))
			continue
		}
		e := table[i]
		if code := strconv.Itoa(e.Code); r.Cells[0] != code {
			out = append(out, fmt.Sprintf("README.md:%d: row %s, where jsonrpc.Table has %s (%s): a row missing, extra or out of order", r.Line, r.Cells[0], code, e.Message))
			continue
		}
		if status := strconv.Itoa(e.Status); r.Cells[1] != status {
			out = append(out, fmt.Sprintf("README.md:%d: row %s: HTTP %s, jsonrpc.Table's is %s", r.Line, r.Cells[0], r.Cells[1], status))
		}
	}
	return out
}
