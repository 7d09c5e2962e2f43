package sandboxtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// tree is the expected content of /workspace: path relative to /workspace → "dir",
// "file:<content>", "link:<target>" or "other" (a FIFO, a device, ...).
type tree map[string]string

// checkTree checks that /workspace holds exactly want, twice: through ListFiles and ReadFile (the
// provider's file API) and through a shell walk inside the sandbox (what commands see).
func checkTree(t *testing.T, sb sandbox.Sandbox, want tree) {
	t.Helper()
	got := list(t, sb, ".", 1000)
	var problems []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		w := want[p]
		e, ok := got[p]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (want %s)", p, short(w)))
			continue
		}
		switch kind, body, _ := strings.Cut(w, ":"); kind {
		case "dir", "other":
			if e.Type != kind {
				problems = append(problems, fmt.Sprintf("%q: type %q, want %s", p, e.Type, kind))
			}
		case "link":
			if e.Type != "symlink" || e.Target != body {
				problems = append(problems, fmt.Sprintf("%q: type %q target %q, want symlink to %q", p, e.Type, e.Target, body))
			}
		case "file":
			if e.Type != "file" || e.Size != int64(len(body)) {
				problems = append(problems, fmt.Sprintf("%q: type %q size %d, want file of %d bytes", p, e.Type, e.Size, len(body)))
				continue
			}
			if data := readAll(t, sb, p); string(data) != body {
				problems = append(problems, fmt.Sprintf("%q: ReadFile gives %q, want %q", p, clip(string(data)), clip(body)))
			}
		default:
			t.Fatalf("bad tree spec %q for %q", w, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q (type %q)", p, got[p].Type))
		}
	}
	if len(problems) > 0 {
		t.Errorf("ListFiles/ReadFile of /workspace in sandbox %s:\n  %s", sb.ID(), strings.Join(problems, "\n  "))
	}

	// The same check from inside: what commands in the sandbox see.
	seen := walkInside(t, sb)
	problems = nil
	for _, p := range slices.Sorted(maps.Keys(want)) {
		kind, body, _ := strings.Cut(want[p], ":")
		var w string
		switch kind {
		case "dir", "other":
			w = kind
		case "link":
			w = "link " + body
		case "file":
			sum := sha256.Sum256([]byte(body))
			w = "file " + hex.EncodeToString(sum[:])
		}
		if g, ok := seen[p]; !ok {
			problems = append(problems, fmt.Sprintf("missing %q (want %s)", p, short(want[p])))
		} else if g != w {
			problems = append(problems, fmt.Sprintf("%q: %s, want %s", p, g, w))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(seen)) {
		if _, ok := want[p]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q (%s)", p, seen[p]))
		}
	}
	if len(problems) > 0 {
		t.Errorf("/workspace as seen by commands in sandbox %s:\n  %s", sb.ID(), strings.Join(problems, "\n  "))
	}
}

// walkScript prints every entry under /workspace, one per line: kind, tab, path, tab, detail
// (a file's sha256, a link's target).
const walkScript = `walk() {
  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    if [ -L "$f" ]; then printf 'link\t%s\t%s\n' "${f#./}" "$(readlink "$f")"
    elif [ -d "$f" ]; then printf 'dir\t%s\t\n' "${f#./}"; walk "$f"
    elif [ -f "$f" ]; then printf 'file\t%s\t%s\n' "${f#./}" "$(sha256sum < "$f" | cut -d ' ' -f 1)"
    elif [ -e "$f" ]; then printf 'other\t%s\t\n' "${f#./}"
    fi
  done
}
cd /workspace && walk .`

// walkInside lists /workspace from inside the sandbox: path → "dir", "file <sha256>",
// "link <target>" or "other".
func walkInside(t *testing.T, sb sandbox.Sandbox) map[string]string {
	t.Helper()
	out := mustRun(t, sb, walkScript)
	seen := map[string]string{}
	for line := range strings.Lines(out) {
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("walk inside the sandbox printed an unexpected line %q", line)
		}
		v := parts[0]
		if parts[2] != "" {
			v += " " + parts[2]
		}
		seen[parts[1]] = v
	}
	return seen
}

func short(spec string) string {
	if len(spec) > 40 {
		return spec[:40] + "…"
	}
	return spec
}
