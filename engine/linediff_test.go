package engine

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// apply replays an edit script on a and checks that it walks both sides in order.
func apply(t *testing.T, a, b []string, script []edit) []string {
	t.Helper()
	var out []string
	i, j := 0, 0
	for _, e := range script {
		switch e.op {
		case ' ':
			if e.a != i || e.b != j || a[i] != b[j] {
				t.Fatalf("equal edit %+v at a %d, b %d: lines differ or out of order", e, i, j)
			}
			out = append(out, a[i])
			i, j = i+1, j+1
		case '-':
			if e.a != i {
				t.Fatalf("delete %+v at a %d", e, i)
			}
			i++
		case '+':
			if e.b != j {
				t.Fatalf("insert %+v at b %d", e, j)
			}
			out = append(out, b[j])
			j++
		}
	}
	if i != len(a) || j != len(b) {
		t.Fatalf("script ends at a %d/%d, b %d/%d", i, len(a), j, len(b))
	}
	return out
}

// lcs is the length of a longest common subsequence, by dynamic programming: the edit script of
// a shortest diff keeps exactly that many lines.
func lcs(a, b []string) int {
	prev := make([]int, len(b)+1)
	for i := range a {
		cur := make([]int, len(b)+1)
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(cur[j], prev[j+1])
			}
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestEditScriptIsShortest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a\n", "b\n", "c\n", "d\n"}
	gen := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[rng.IntN(len(words))]
		}
		return out
	}
	for i := range 500 {
		a, b := gen(rng.IntN(30)), gen(rng.IntN(30))
		script := editScript(a, b)
		if got := apply(t, a, b, script); strings.Join(got, "") != strings.Join(b, "") {
			t.Fatalf("case %d: the script does not produce b", i)
		}
		kept := 0
		for _, e := range script {
			if e.op == ' ' {
				kept++
			}
		}
		if want := lcs(a, b); kept != want {
			t.Fatalf("case %d: script keeps %d lines, a shortest diff keeps %d\na=%q\nb=%q", i, kept, want, a, b)
		}
	}
}

// TestEditScriptBeyondTheCap: two middles further apart than maxDiffEdits still get a correct
// script (the plain replacement), quickly.
func TestEditScriptBeyondTheCap(t *testing.T) {
	t.Parallel()
	var a, b []string
	for i := range 3000 {
		a = append(a, "same\n", "a"+strings.Repeat("x", i%7)+"\n")
		b = append(b, "same\n", "b"+strings.Repeat("y", i%5)+"\n")
	}
	script := editScript(a, b)
	apply(t, a, b, script)
}

func TestUnified(t *testing.T) {
	t.Parallel()
	lines := func(n int, change map[int]string) string {
		var sb strings.Builder
		for i := 1; i <= n; i++ {
			if c, ok := change[i]; ok {
				sb.WriteString(c)
				continue
			}
			sb.WriteString("l" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + "\n")
		}
		return sb.String()
	}
	cases := []struct {
		name, a, b, want string
		added, removed   int
	}{
		{name: "same", a: "x\ny\n", b: "x\ny\n"},
		{name: "new file", a: "", b: "x\ny\n", want: "@@ -0,0 +1,2 @@\n+x\n+y\n", added: 2},
		{name: "emptied", a: "x\n", b: "", want: "@@ -1 +0,0 @@\n-x\n", removed: 1},
		{name: "one line in the middle", a: lines(20, nil), b: lines(20, map[int]string{10: "TEN\n"}),
			want: "@@ -7,7 +7,7 @@\n l07\n l08\n l09\n-l10\n+TEN\n l11\n l12\n l13\n", added: 1, removed: 1},
		{name: "two changes, one hunk", a: lines(20, nil), b: lines(20, map[int]string{5: "", 11: "ELEVEN\n"}),
			want: "@@ -2,13 +2,12 @@\n l02\n l03\n l04\n-l05\n l06\n l07\n l08\n l09\n l10\n-l11\n+ELEVEN\n l12\n l13\n l14\n", added: 1, removed: 2},
		{name: "two hunks", a: lines(30, nil), b: lines(30, map[int]string{2: "TWO\n", 25: "X\nY\n"}),
			want: "@@ -1,5 +1,5 @@\n l01\n-l02\n+TWO\n l03\n l04\n l05\n@@ -22,7 +22,8 @@\n l22\n l23\n l24\n-l25\n+X\n+Y\n l26\n l27\n l28\n", added: 3, removed: 2},
		{name: "no newline at the end", a: "x\ny", b: "x\ny\n",
			want: "@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n", added: 1, removed: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := splitLines(c.a), splitLines(c.b)
			got, added, removed := unified(a, b, editScript(a, b))
			if got != c.want || added != c.added || removed != c.removed {
				t.Errorf("got (+%d -%d)\n%s\nwant (+%d -%d)\n%s", added, removed, got, c.added, c.removed, c.want)
			}
		})
	}
}
