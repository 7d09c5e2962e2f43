package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// fileAt reads a whole file at the workspace head.
func (v *env) fileAt(t *testing.T, ws, p string) string {
	t.Helper()
	fc, err := v.e.ReadFile(ctxT(t), ws, p, 0, 0)
	if err != nil {
		t.Fatalf("read_file %s: %v", p, err)
	}
	return string(fc.Data)
}

// modeAt is the mode list_files shows for the entry p of directory dir at the workspace head.
func (v *env) modeAt(t *testing.T, ws, dir, p string) (string, string) {
	t.Helper()
	ents, err := v.e.ListFiles(ctxT(t), ws, dir, 1)
	if err != nil {
		t.Fatalf("list_files %s: %v", dir, err)
	}
	for _, e := range ents {
		if e.Path == p {
			return e.Mode, e.Type
		}
	}
	t.Fatalf("list_files %s has no %s: %+v", dir, p, ents)
	return "", ""
}

const appPy = "import sys\n\n\ndef main():\n    return 1\n\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n"

// TestEditFileDurable: a unique replacement becomes one commit of kind write modifying only the
// file, which keeps its mode (also through a symlink) and its root (~/ paths); replace_all
// replaces every occurrence; every refused edit (absent, ambiguous with its count and lines,
// binary, missing, a directory, no change, too large, a bad path) leaves head where it was.
func TestEditFileDurable(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	bin := []byte("abc\x00def\n")
	if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{
		{Path: "src/app.py", Content: []byte(appPy)},
		{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho one\n"), Mode: 0o755},
		{Path: "dup.txt", Content: []byte("a\nx = 1\nb\nx = 1\nc\nx = 1\n")},
		{Path: "crlf.txt", Content: []byte("one\r\ntwo\r\n")},
		{Path: "ab.txt", Content: []byte("ababa\n")},
		{Path: "blob.bin", Content: bin},
		{Path: "~/notes.md", Content: []byte("# notes\ntodo: edit\n")},
	}}); err != nil {
		t.Fatal(err)
	}

	ed, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "src/app.py", OldText: "    return 1\n", NewText: "    return 2\n"})
	if err != nil {
		t.Fatalf("unique edit: %v", err)
	}
	c := ed.Commit
	if c.ID == "" || head(t, v, "w") != c.ID || c.Kind != engine.CommitWrite || c.Message != "edit src/app.py" {
		t.Fatalf("unique edit: commit %+v, head %s; want a new write commit at head named edit src/app.py", c, head(t, v, "w"))
	}
	wantCommitChanges(t, v, "unique edit", v.commit(t, c.ID), "modified file src/app.py")
	if got, want := v.fileAt(t, "w", "src/app.py"), strings.Replace(appPy, "return 1", "return 2", 1); got != want {
		t.Errorf("after the edit src/app.py reads %q, want %q", got, want)
	}
	if ed.Replacements != 1 || ed.Path != "src/app.py" || ed.Line != 5 || ed.Size != int64(len(appPy)) {
		t.Errorf("edit result %+v, want 1 replacement at line 5 of src/app.py", ed)
	}
	if want := "2\t\n3\t\n4\tdef main():\n5\t    return 2\n6\t\n7\t\n8\tif __name__ == \"__main__\":"; ed.Context != want {
		t.Errorf("context %q, want %q", ed.Context, want)
	}

	// The mode stays, through a symlink too; the link stays a link.
	v.sh(t, "w", "ln -s ../bin/run.sh src/link.sh")
	if _, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "/workspace/bin/run.sh", OldText: "one", NewText: "two"}); err != nil {
		t.Fatalf("edit of an executable: %v", err)
	}
	if _, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "src/link.sh", OldText: "two", NewText: "three"}); err != nil {
		t.Fatalf("edit through a symlink: %v", err)
	}
	if out := stdout(v.sh(t, "w", "./bin/run.sh; ./src/link.sh")); out != "three\nthree\n" {
		t.Errorf("the edited script prints %q, want three twice (still executable)", out)
	}
	if mode, _ := v.modeAt(t, "w", "bin", "bin/run.sh"); mode != "0755" {
		t.Errorf("bin/run.sh has mode %s after the edits, want 0755", mode)
	}
	if _, typ := v.modeAt(t, "w", "src", "src/link.sh"); typ != "symlink" {
		t.Errorf("src/link.sh is a %s after an edit through it, want a symlink", typ)
	}

	if ed, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "~/notes.md", OldText: "todo: edit", NewText: "done"}); err != nil || ed.Path != "~/notes.md" {
		t.Fatalf("home edit: %+v, %v", ed, err)
	}
	if got := v.fileAt(t, "w", "~/notes.md"); got != "# notes\ndone\n" {
		t.Errorf("~/notes.md reads %q", got)
	}

	h0 := head(t, v, "w")
	refused := []struct {
		what  string
		req   engine.EditRequest
		kind  error
		arg   string
		words []string
	}{
		{"absent", engine.EditRequest{Path: "src/app.py", OldText: "return 3", NewText: "x"}, engine.ErrInvalid, "old_text", []string{"not found in src/app.py", "read_file"}},
		{"absent, indented otherwise", engine.EditRequest{Path: "src/app.py", OldText: "\treturn 2", NewText: "x"}, engine.ErrInvalid, "old_text", []string{"not found", "line(s) 5"}},
		{"absent, multi-line", engine.EditRequest{Path: "src/app.py", OldText: "def main():\n  return 2", NewText: "x"}, engine.ErrInvalid, "old_text", []string{`its first line "def main():" occurs at line(s) 4`}},
		{"ambiguous", engine.EditRequest{Path: "dup.txt", OldText: "x = 1", NewText: "x = 2"}, engine.ErrInvalid, "old_text", []string{"3 times", "lines 2, 4, 6", "replace_all", "more of the surrounding lines"}},
		{"ambiguous, overlapping", engine.EditRequest{Path: "ab.txt", OldText: "aba", NewText: "y"}, engine.ErrInvalid, "old_text", []string{"twice"}},
		{"crlf", engine.EditRequest{Path: "crlf.txt", OldText: "one\ntwo", NewText: "x"}, engine.ErrInvalid, "old_text", []string{`\r\n`}},
		{"binary", engine.EditRequest{Path: "blob.bin", OldText: "abc", NewText: "x"}, engine.ErrInvalid, "path", []string{"not a text file", "NUL byte at offset 3", "write_files"}},
		{"missing", engine.EditRequest{Path: "nope.txt", OldText: "a", NewText: "b"}, engine.ErrNotFound, "path", []string{"write_files"}},
		{"directory", engine.EditRequest{Path: "src", OldText: "a", NewText: "b"}, engine.ErrInvalid, "path", []string{"directory"}},
		{"no change", engine.EditRequest{Path: "src/app.py", OldText: "main", NewText: "main"}, engine.ErrInvalid, "new_text", []string{"change nothing"}},
		{"empty old_text", engine.EditRequest{Path: "src/app.py", OldText: "", NewText: "x"}, engine.ErrInvalid, "old_text", []string{"empty", "write_files"}},
		{"escape", engine.EditRequest{Path: "../etc/passwd", OldText: "root", NewText: "x"}, engine.ErrInvalid, "path", nil},
		{"too large", engine.EditRequest{Path: "dup.txt", OldText: "x = 1", NewText: strings.Repeat("y", engine.MaxFileSize/3+1), ReplaceAll: true}, engine.ErrInvalid, "new_text", []string{"more than"}},
	}
	for _, tc := range refused {
		_, err := v.e.EditFile(ctx, "w", tc.req)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.kind)
			continue
		}
		e := fields(t, tc.what, err)
		if e.Fields.Argument != tc.arg {
			t.Errorf("%s: argument %q, want %q (%v)", tc.what, e.Fields.Argument, tc.arg, err)
		}
		for _, w := range tc.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.what, err, w)
			}
		}
		if h := head(t, v, "w"); h != h0 {
			t.Fatalf("%s: the refused edit moved head from %s to %s", tc.what, h0, h)
		}
	}
	if e := fields(t, "ambiguous", func() error {
		_, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "dup.txt", OldText: "x = 1", NewText: "x = 2"})
		return err
	}()); e.Fields.Got == nil || *e.Fields.Got != 3 {
		t.Errorf("ambiguous: got %v, want 3", e.Fields.Got)
	}
	if _, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "nope.txt", OldText: "a", NewText: "b"}); len(fields(t, "missing", err).Next) == 0 || fields(t, "missing", err).Next[0].Tool != "write_files" {
		t.Errorf("missing file: next %+v, want write_files", fields(t, "missing", err).Next)
	}
	if got := v.fileAt(t, "w", "blob.bin"); got != string(bin) {
		t.Errorf("the binary file changed: %q", got)
	}

	ed, err = v.e.EditFile(ctx, "w", engine.EditRequest{Path: "dup.txt", OldText: "x = 1", NewText: "x = 2", ReplaceAll: true})
	if err != nil || ed.Replacements != 3 || ed.Line != 2 || ed.Commit.ID == "" || head(t, v, "w") != ed.Commit.ID {
		t.Fatalf("replace_all: %+v, %v", ed, err)
	}
	if got := v.fileAt(t, "w", "dup.txt"); got != "a\nx = 2\nb\nx = 2\nc\nx = 2\n" {
		t.Errorf("after replace_all dup.txt reads %q", got)
	}
	if _, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "dup.txt", OldText: "x = 1", NewText: "x", ReplaceAll: true}); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("replace_all of absent text: %v, want not found", err)
	}

	// Deleting text (new_text "") works, and the context shows where it was.
	ed, err = v.e.EditFile(ctx, "w", engine.EditRequest{Path: "dup.txt", OldText: "b\n", NewText: ""})
	if err != nil || ed.Line != 3 || !strings.Contains(ed.Context, "3\tx = 2") {
		t.Fatalf("deleting text: %+v, %v", ed, err)
	}
}

// TestEditFileSession: while a session holds the workspace the durable edit is refused (naming
// the session); the holder edits the live files at once without a commit, another connection
// cannot; commit_session saves the edit.
func TestEditFileSession(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "src/app.py", Content: []byte(appPy)}}}); err != nil {
		t.Fatal(err)
	}
	h0 := head(t, v, "w")
	s := v.open(t, alice, "w", 0)

	_, err := v.e.EditFile(ctx, "w", engine.EditRequest{Path: "src/app.py", OldText: "return 1", NewText: "return 2"})
	wantErr(t, "durable edit while a session holds the workspace", err, engine.ErrLeased, s.ID)

	ed, err := v.e.SessionEditFile(ctx, alice, s.ID, engine.EditRequest{Path: "src/app.py", OldText: "return 1", NewText: "return 2"})
	if err != nil || ed.Replacements != 1 || ed.Commit.ID != "" || ed.Line != 5 {
		t.Fatalf("session edit: %+v, %v", ed, err)
	}
	if out := stdout(engine.RunResult{Stdout: v.sexec(t, alice, s.ID, "grep return src/app.py").Stdout}); out != "    return 2\n" {
		t.Errorf("the live file after the session edit: %q", out)
	}
	if head(t, v, "w") != h0 {
		t.Fatal("a session edit moved head before commit_session")
	}
	_, err = v.e.SessionEditFile(ctx, bob, s.ID, engine.EditRequest{Path: "src/app.py", OldText: "return 2", NewText: "return 3"})
	wantErr(t, "session edit by another connection", err, engine.ErrNotHolder)
	_, err = v.e.SessionEditFile(ctx, alice, s.ID, engine.EditRequest{Path: "src/app.py", OldText: "return 1", NewText: "x"})
	if e := fields(t, "absent in the session", err); !errors.Is(err, engine.ErrInvalid) || e.Fields.Argument != "old_text" {
		t.Errorf("absent text in the session: %v", err)
	}

	c, err := v.e.CommitSession(ctx, alice, s.ID, "")
	if err != nil || c.ID == "" {
		t.Fatalf("commit_session: %+v, %v", c, err)
	}
	if got := v.fileAt(t, "w", "src/app.py"); !strings.Contains(got, "return 2") {
		t.Errorf("after commit_session src/app.py reads %q", got)
	}
}
