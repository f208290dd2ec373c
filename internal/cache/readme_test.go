package cache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/readme"
)

// TestReadmeTable holds README.md's table of what may be cached to Table: every rule, in Table's order, with its
// block reference and kinds (Rule.BlockDoc, Rule.KindDoc), and a last row for every other method (never).
func TestReadmeTable(t *testing.T) {
	rows, err := readme.Table("method", "block", "cached as")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(Table)+1)
	for _, r := range Table {
		keys = append(keys, "`"+r.Method+"`")
	}
	keys = append(keys, otherRow)
	aligned, problems := readme.Align(rows, keys)
	for i, r := range Table {
		row := aligned[i]
		if row == nil {
			continue
		}
		if row.Cells[1] != r.BlockDoc() || row.Cells[2] != r.KindDoc() {
			problems = append(problems, fmt.Sprintf("README.md:%d: row %s is %q | %q, the table's is %q | %q", row.Line, keys[i], row.Cells[1], row.Cells[2], r.BlockDoc(), r.KindDoc()))
		}
	}
	if row := aligned[len(Table)]; row != nil && row.Cells[2] != "never" {
		problems = append(problems, fmt.Sprintf("README.md:%d: every other method is cached as %q, never in the code", row.Line, row.Cells[2]))
	}
	for _, p := range problems {
		t.Errorf("README.md's cache table differs from cache.Table: %s", p)
	}
}

// otherRow is the first cell of README.md's last row: every method not in Table.
const otherRow = "every other method"

// TestReadmeParamsBound: README.md states the size of params above which a call is never cached.
func TestReadmeParamsBound(t *testing.T) {
	text, err := readme.Text()
	if err != nil {
		t.Fatal(err)
	}
	if MaxParamsBytes != 64<<10 || !strings.Contains(strings.Join(strings.Fields(text), " "), "a call whose params are over 64 KiB") {
		t.Errorf("README.md does not state MaxParamsBytes (%d) as it is", MaxParamsBytes)
	}
}
