package engine

import (
	"fmt"
	"strings"
	"testing"
)

// TestEditContext: the context numbers the lines of the edited file around the replacement,
// EditContextLines before and after, shortens a long replacement in its middle and long lines at
// their end, and places a deletion (no new text) at the line that follows it.
func TestEditContext(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := 1; i <= 40; i++ {
		lines = append(lines, fmt.Sprintf("l%d", i))
	}
	file := strings.Join(lines, "\n") + "\n"
	at := strings.Index(file, "l10\n")
	long := strings.Join(lines[9:30], "\n") // l10 … l30, 21 lines
	cases := []struct {
		what  string
		out   string
		at, n int
		line  int
		want  string
	}{
		{"one line", file, at, len("l10"), 10, "7\tl7\n8\tl8\n9\tl9\n10\tl10\n11\tl11\n12\tl12\n13\tl13"},
		{"at the start", file, 0, 2, 1, "1\tl1\n2\tl2\n3\tl3\n4\tl4"},
		{"at the end", file, strings.Index(file, "l40"), 3, 40, "37\tl37\n38\tl38\n39\tl39\n40\tl40"},
		{"a deletion", file, at, 0, 10, "7\tl7\n8\tl8\n9\tl9\n10\tl10\n11\tl11\n12\tl12\n13\tl13"},
		{"a long replacement", file, at, len(long), 10,
			"7\tl7\n8\tl8\n9\tl9\n10\tl10\n11\tl11\n12\tl12\n13\tl13\n14\tl14\n15\tl15\n…\t(9 more lines)\n25\tl25\n26\tl26\n27\tl27\n28\tl28\n29\tl29\n30\tl30\n31\tl31\n32\tl32\n33\tl33"},
		{"a long line", "a\n" + strings.Repeat("é", 150) + "\n", 2, 300, 2, "1\ta\n2\t" + strings.Repeat("é", 100) + "…"},
		{"an empty file", "", 0, 0, 1, "1\t"},
	}
	for _, tc := range cases {
		line, got := editContext(tc.out, tc.at, tc.n)
		if line != tc.line || got != tc.want {
			t.Errorf("%s: line %d, context\n%s\nwant line %d, context\n%s", tc.what, line, got, tc.line, tc.want)
		}
	}
}

// TestEditLineList: ambiguous matches are named by their first lines, "and more" past the bound.
func TestEditLineList(t *testing.T) {
	t.Parallel()
	if got := lineList("x\ny x\nx\n", "x"); got != "lines 1, 2, 3" {
		t.Errorf("three matches: %q", got)
	}
	if got := lineList(strings.Repeat("x\n", 9), "x"); got != "lines 1, 2, 3, 4, 5 and more" {
		t.Errorf("nine matches: %q", got)
	}
}
