package retry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/readme"
)

// TestReadmeClassTable holds README.md's table of failure classes to Table: every class, in Table's order, no
// other row, each with Table's "when" (Doc) and what it does: next upstream for reads (NextUpstream), for writes
// (NextUpstream and WriteSafe), counted against the upstream (Penalise). A cell may explain itself after its
// yes or no ("no: passed through unchanged").
func TestReadmeClassTable(t *testing.T) {
	rows, err := readme.Table("class", "when", "next upstream for reads", "next upstream for writes", "counts against the upstream")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range compareClasses(rows, Table) {
		t.Errorf("README.md's class table differs from retry.Table: %s", p)
	}
}

// classCell is how README.md names a class: (answer) for OK.
func classCell(c Class) string {
	if c == OK {
		return "(answer)"
	}
	return "`" + string(c) + "`"
}

// yesNo reads a cell's verdict: "yes", "**yes**", "no: …".
func yesNo(cell string) string {
	w, _, _ := strings.Cut(strings.ReplaceAll(cell, "**", ""), ":")
	return strings.TrimSpace(w)
}

func compareClasses(rows []readme.Row, table []Row) []string {
	word := map[bool]string{true: "yes", false: "no"}
	keys := make([]string, len(table))
	for i, c := range table {
		keys[i] = classCell(c.Class)
	}
	aligned, out := readme.Align(rows, keys)
	for i, c := range table {
		r := aligned[i]
		if r == nil {
			continue
		}
		if r.Cells[1] != c.Doc {
			out = append(out, fmt.Sprintf("README.md:%d: row %s: when is %q, retry.Table's Doc is %q", r.Line, keys[i], r.Cells[1], c.Doc))
		}
		for j, want := range []bool{c.NextUpstream, c.NextUpstream && c.WriteSafe, c.Penalise} {
			if got := yesNo(r.Cells[j+2]); got != word[want] {
				col := []string{"next upstream for reads", "next upstream for writes", "counts against the upstream"}[j]
				out = append(out, fmt.Sprintf("README.md:%d: row %s: %s says %q, retry.Table says %s", r.Line, keys[i], col, got, word[want]))
			}
		}
	}
	return out
}
