package tools

import (
	"encoding/json"
	"strings"
	"testing"
)

// editFileBudget bounds edit_file's model-facing definition (description and input schema, in
// compact JSON): a tool an agent uses for every change must stay cheap to list.
const editFileBudget = 900

func TestEditFileBudget(t *testing.T) {
	for _, tool := range registeredTools(t) {
		if tool.Name != "edit_file" {
			continue
		}
		b, err := json.Marshal(map[string]any{"description": tool.Description, "inputSchema": tool.RawInputSchema})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("edit_file: %d bytes of description and input schema (budget %d)", len(b), editFileBudget)
		if len(b) > editFileBudget {
			t.Errorf("edit_file's description and input schema take %d bytes, more than %d", len(b), editFileBudget)
		}
		return
	}
	t.Fatal("edit_file is not registered")
}

// TestEditFileRoundTrip: edit_file as an agent calls it, durably and in a session: one commit per
// edit, the context and the next steps in both forms, and every refusal a tool error naming the
// argument that leaves the head where it was.
func TestEditFileRoundTrip(t *testing.T) {
	r := newRig(t)
	r.ok("create_workspace", map[string]any{"name": "ed"})
	r.ok("write_files", map[string]any{"workspace": "ed", "files": []any{
		map[string]any{"path": "app.py", "content": "def f():\n    return 1\n\n\ndef g():\n    return 1\n"},
		map[string]any{"path": "run.sh", "content": "#!/bin/sh\necho one\n", "mode": "0755"},
		map[string]any{"path": "blob.bin", "content": "AP8B", "encoding": "base64"},
	}})

	out, text := r.ok("edit_file", map[string]any{"workspace": "ed", "path": "/workspace/run.sh", "old_text": "echo one", "new_text": "echo two"})
	c := sub(out, "commit")
	if !strings.HasPrefix(str(c, "commit_id"), "c_") || str(c, "kind") != "write" || str(c, "message") != "edit run.sh" ||
		num(out, "replacements") != 1 || num(out, "line") != 2 || str(out, "path") != "run.sh" || !strings.HasPrefix(str(out, "workspace_id"), "ws_") {
		t.Fatalf("edit_file: %v", out)
	}
	if !strings.Contains(text, str(c, "commit_id")) || !strings.Contains(text, "2\techo two") || !strings.Contains(str(out, "context"), "1\t#!/bin/sh\n2\techo two") {
		t.Errorf("edit_file text %q or context %q lacks the commit or the edited lines", text, str(out, "context"))
	}
	if next, _ := out["next"].([]any); len(next) != 1 || str(next[0].(map[string]any), "tool") != "run_command" {
		t.Errorf("a durable edit's next step is run_command: %v", out["next"])
	}
	if run, _ := r.ok("run_command", map[string]any{"workspace": "ed", "command": "./run.sh"}); str(run, "stdout") != "two\n" {
		t.Errorf("the edited script (still executable) prints %v", run)
	}

	ws, _ := r.ok("get_workspace", map[string]any{"workspace": "ed"})
	head := str(ws, "head")
	refusals := []struct {
		args      map[string]any
		arg, want string
	}{
		{map[string]any{"workspace": "ed", "path": "app.py", "old_text": "return 1", "new_text": "return 2"}, "old_text", "occurs 2 times in app.py (at lines 2, 6)"},
		{map[string]any{"workspace": "ed", "path": "app.py", "old_text": "return 3", "new_text": "return 2"}, "old_text", "not found in app.py"},
		{map[string]any{"workspace": "ed", "path": "app.py", "old_text": "return 1"}, "new_text", "new_text: missing"},
		{map[string]any{"workspace": "ed", "path": "app.py", "old_text": "f", "new_text": "f"}, "new_text", "change nothing"},
		{map[string]any{"workspace": "ed", "path": "blob.bin", "old_text": "a", "new_text": "b"}, "path", "not a text file"},
		{map[string]any{"workspace": "ed", "path": "nope.py", "old_text": "a", "new_text": "b"}, "path", "create it with write_files"},
		{map[string]any{"workspace": "ed", "session_id": "ses_x", "path": "app.py", "old_text": "a", "new_text": "b"}, "session_id", "not both"},
	}
	for _, tc := range refusals {
		out, _ := r.fails("edit_file", tc.args, tc.want)
		if e := sub(out, "error"); str(e, "argument") != tc.arg {
			t.Errorf("edit_file %v: error %v names argument %q, want %q", tc.args, e, str(e, "argument"), tc.arg)
		}
	}
	if e := sub(r.must("edit_file", map[string]any{"workspace": "ed", "path": "app.py", "old_text": "return 1", "new_text": "x"}), "error"); num(e, "got") != 2 || num(e, "limit") != 1 {
		t.Errorf("ambiguous edit: error %v, want got 2, limit 1", e)
	}
	if ws, _ := r.ok("get_workspace", map[string]any{"workspace": "ed"}); str(ws, "head") != head {
		t.Fatalf("refused edits moved the head from %s to %s", head, str(ws, "head"))
	}

	out, _ = r.ok("edit_file", map[string]any{"workspace": "ed", "path": "app.py", "old_text": "return 1", "new_text": "return 2", "replace_all": true})
	if num(out, "replacements") != 2 || num(out, "line") != 2 {
		t.Errorf("replace_all: %v", out)
	}

	s, _ := r.ok("open_session", map[string]any{"workspace": "ed"})
	sid := str(s, "session_id")
	r.fails("edit_file", map[string]any{"workspace": "ed", "path": "app.py", "old_text": "def g", "new_text": "def h"}, "leased by a session")
	out, text = r.ok("edit_file", map[string]any{"session_id": sid, "path": "app.py", "old_text": "def g", "new_text": "def h"})
	if str(out, "session_id") != sid || out["commit"] != nil || num(out, "line") != 5 || !strings.Contains(text, "not committed") {
		t.Errorf("session edit_file: %v / %q", out, text)
	}
	if next, _ := out["next"].([]any); len(next) != 2 || str(next[1].(map[string]any), "tool") != "commit_session" {
		t.Errorf("a session edit's next steps: %v", out["next"])
	}
	r.ok("commit_session", map[string]any{"session_id": sid})
	if f, _ := r.ok("read_file", map[string]any{"workspace": "ed", "path": "app.py"}); str(f, "content") != "def f():\n    return 2\n\n\ndef h():\n    return 2\n" {
		t.Errorf("after the edits and commit_session app.py reads %q", str(f, "content"))
	}
}

// must calls a tool that must fail and returns its structured result.
func (r *rig) must(tool string, args map[string]any) map[string]any {
	r.t.Helper()
	out, _ := r.fails(tool, args, "")
	return out
}
