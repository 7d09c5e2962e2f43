package engine

import (
	"fmt"
	"strings"
)

// The line diff of workspace_diff: Myers' O(ND) algorithm ("An O(ND) Difference Algorithm and Its
// Variations", 1986) over the lines that remain once the common head and tail are set aside, and
// a unified-diff rendering with diffContext lines of context. When the two middles differ by more
// than maxDiffEdits lines, the edit script is the plain replacement of one middle by the other:
// still a correct diff, only not the shortest, at a bounded cost in time and memory
// ((maxDiffEdits+1)² int32s at most).

const (
	// diffContext is the number of unchanged lines shown around each change.
	diffContext = 3
	// maxDiffEdits bounds the edit distance the line diff searches for a shortest script.
	maxDiffEdits = 1000
)

// edit is one line of an edit script: op ' ' (in both), '-' (only in a) or '+' (only in b), with
// the line's index in a (for ' ' and '-') and in b (for ' ' and '+').
type edit struct {
	op   byte
	a, b int
}

// splitLines splits text into lines, each with its "\n" (the last one may lack it).
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// editScript is an edit script turning a into b.
func editScript(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]edit, 0, len(a)+len(b)-pre-suf)
	for i := range pre {
		out = append(out, edit{' ', i, i})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	mid, ok := myers(ma, mb, maxDiffEdits)
	if !ok {
		mid = mid[:0]
		for i := range ma {
			mid = append(mid, edit{'-', i, 0})
		}
		for j := range mb {
			mid = append(mid, edit{'+', len(ma), j})
		}
	}
	for _, e := range mid {
		out = append(out, edit{e.op, e.a + pre, e.b + pre})
	}
	for i := range suf {
		out = append(out, edit{' ', len(a) - suf + i, len(b) - suf + i})
	}
	return out
}

// myers finds a shortest edit script from a to b, or reports false when it needs more than maxD
// insertions and deletions.
func myers(a, b []string, maxD int) ([]edit, bool) {
	n, m := len(a), len(b)
	if n+m == 0 {
		return nil, true
	}
	limit := min(n+m, maxD)
	off := limit + 1
	// v[off+k] is the furthest x reached on diagonal k (y = x-k); trace[d] keeps v's diagonals
	// -d..d as they were after round d, for the walk back.
	v := make([]int32, 2*limit+3)
	var trace [][]int32
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1]) // down: a line of b inserted
			} else {
				x = int(v[off+k-1]) + 1 // right: a line of a deleted
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				return backtrack(trace, a, b, d), true
			}
		}
		trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
	}
	return nil, false
}

// backtrack walks the rounds of myers back from (len(a), len(b)), reached in round d.
func backtrack(trace [][]int32, a, b []string, d int) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for ; d > 0; d-- {
		prev := trace[d-1] // diagonals -(d-1)..d-1
		at := func(k int) int { return int(prev[k+d-1]) }
		k := x - y
		pk := k - 1
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		}
		px := at(pk)
		py := px - pk
		sx, sy := px, py // where the snake after this round's edit starts
		if pk == k+1 {
			sy++
		} else {
			sx++
		}
		for x > sx && y > sy {
			x, y = x-1, y-1
			rev = append(rev, edit{' ', x, y})
		}
		if pk == k+1 {
			y--
			rev = append(rev, edit{'+', x, y})
		} else {
			x--
			rev = append(rev, edit{'-', x, y})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, edit{' ', x, y})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

// unified renders the hunks of an edit script from a to b ("" when they are the same), and counts
// the lines added and removed.
func unified(a, b []string, script []edit) (text string, added, removed int) {
	var sb strings.Builder
	for i := 0; i < len(script); {
		if script[i].op == ' ' {
			i++
			continue
		}
		// A hunk: from diffContext lines before this change to diffContext lines after the last
		// change that follows within 2*diffContext unchanged lines.
		start := max(0, i-diffContext)
		end := i
		for j := i; j < len(script); j++ {
			if script[j].op != ' ' {
				end = j
				continue
			}
			if j-end > 2*diffContext {
				break
			}
		}
		stop := min(len(script), end+1+diffContext)
		var na, nb int
		for _, e := range script[start:stop] {
			if e.op != '+' {
				na++
			}
			if e.op != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(script[start].a, na), hunkRange(script[start].b, nb))
		for _, e := range script[start:stop] {
			line := ""
			switch e.op {
			case ' ':
				line = a[e.a]
			case '-':
				line = a[e.a]
				removed++
			case '+':
				line = b[e.b]
				added++
			}
			sb.WriteByte(e.op)
			sb.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = stop
	}
	return sb.String(), added, removed
}

// hunkRange is one side of a hunk header: "start,count" with start 1-based (the line before the
// hunk when it is empty), and ",count" left out when it is 1.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}
