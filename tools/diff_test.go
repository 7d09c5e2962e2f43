package tools

import (
	"strings"
	"testing"
)

// TestDiffRoundTrip: workspace_diff and read_file/list_files at a commit, through the MCP client
// (every result checked against its output schema by the rig).
func TestDiffRoundTrip(t *testing.T) {
	r := newRig(t)
	ws, _ := r.ok("create_workspace", map[string]any{"name": "df"})
	wsID := str(ws, "workspace_id")
	w1, _ := r.ok("write_files", map[string]any{"workspace": "df", "files": []any{
		map[string]any{"path": "notes.txt", "content": "one\ntwo\nthree\n"},
		map[string]any{"path": "gone.txt", "content": "bye\n"},
		map[string]any{"path": "img.bin", "content": "AP8B", "encoding": "base64"},
	}})
	c1 := str(sub(w1, "commit"), "commit_id")
	w2, _ := r.ok("write_files", map[string]any{"workspace": "df", "delete": []any{"gone.txt"}, "files": []any{
		map[string]any{"path": "notes.txt", "content": "one\n2\nthree\n"},
		map[string]any{"path": "img.bin", "content": "AP8C", "encoding": "base64"},
	}})
	c2 := str(sub(w2, "commit"), "commit_id")

	d, text := r.ok("workspace_diff", map[string]any{"workspace": "df"})
	if str(d, "from") != c1 || str(d, "to") != c2 || num(d, "changed") != 3 || num(d, "modified") != 2 || num(d, "deleted") != 1 {
		t.Fatalf("workspace_diff: %v", d)
	}
	files, _ := d["files"].([]any)
	var got []string
	for _, f := range files {
		m := f.(map[string]any)
		got = append(got, str(m, "op")+" "+str(m, "path"))
		if str(m, "path") == "img.bin" && (m["binary"] != true || num(m, "size_before") != 3 || num(m, "size_after") != 3) {
			t.Errorf("img.bin: %v", m)
		}
	}
	if strings.Join(got, ", ") != "deleted gone.txt, modified img.bin, modified notes.txt" {
		t.Errorf("files: %v", got)
	}
	for _, want := range []string{"--- a/notes.txt\n+++ b/notes.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n", "Binary files a/img.bin and b/img.bin differ", "-bye\n"} {
		if !strings.Contains(str(d, "diff"), want) || !strings.Contains(text, strings.TrimSuffix(want, "\n")) {
			t.Errorf("the diff (structured and text) lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, "~notes.txt") || !strings.Contains(text, "-gone.txt") || !strings.Contains(text, c1+" → "+c2) {
		t.Errorf("text lacks the file list or the commits: %s", text)
	}

	only, _ := r.ok("workspace_diff", map[string]any{"workspace": wsID, "from": c2, "to": c1, "paths": []any{"gone.txt"}})
	if fs, _ := only["files"].([]any); len(fs) != 1 || str(fs[0].(map[string]any), "op") != "added" {
		t.Errorf("backwards, one path: %v", only)
	}
	r.fails("workspace_diff", map[string]any{"workspace": "df", "to": "c_nope"}, `"argument":"to"`)
	r.fails("workspace_diff", map[string]any{"workspace": "df", "from": "yesterday"}, `"argument":"from"`)

	old, text := r.ok("read_file", map[string]any{"workspace": "df", "path": "gone.txt", "commit": c1})
	if str(old, "content") != "bye\n" || str(old, "commit") != c1 || !strings.Contains(text, c1) {
		t.Errorf("read_file at %s: %v / %s", c1, old, text)
	}
	r.fails("read_file", map[string]any{"workspace": "df", "path": "gone.txt"}, "not found")
	r.fails("read_file", map[string]any{"workspace": "df", "path": "notes.txt", "commit": "c_nope"}, `"argument":"commit"`)
	r.fails("read_file", map[string]any{"session_id": "ses_x", "path": "notes.txt", "commit": c1}, `"argument":"commit"`)
	l, _ := r.ok("list_files", map[string]any{"workspace": "df", "commit": c1})
	if es, _ := l["entries"].([]any); len(es) != 3 {
		t.Errorf("list_files at %s: %v", c1, l)
	}
}
