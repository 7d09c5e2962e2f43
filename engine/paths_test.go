package engine_test

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// fields returns err's engine error fields, failing the test when err is not an *engine.Error.
func fields(t *testing.T, what string, err error) *engine.Error {
	t.Helper()
	var e *engine.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v is not an *engine.Error", what, err)
	}
	return e
}

func entryPaths(ents []engine.FileEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Path)
	}
	sort.Strings(out)
	return out
}

func wantList(t *testing.T, what string, ents []engine.FileEntry, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got := entryPaths(ents)
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// TestHomePathsDurable: ~/ paths, the home's absolute path and uncleaned /workspace paths work in
// write_files, read_file and list_files at the workspace head; entries of the home come back as
// ~/..., which read_file takes back; paths that leave both roots are refused naming the argument.
func TestHomePathsDurable(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	home := v.pv.Capabilities().HomeDir
	c, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{
		{Path: "~/.config/app.toml", Content: []byte("x=1\n")},
		{Path: "//workspace//src//a.txt", Content: []byte("a\n")},
		{Path: "/workspace/b/../b.txt", Content: []byte("b\n")},
	}})
	if err != nil || head(t, v, "w") != c.ID {
		t.Fatalf("write_files with home and uncleaned paths: %+v %v", c, err)
	}
	if want := "write 3 file(s): ~/.config/app.toml, src/a.txt, b.txt"; c.Message != want {
		t.Errorf("commit message %q, want %q", c.Message, want)
	}
	for name, want := range map[string][2]string{
		"~/.config/app.toml":            {"x=1\n", "~/.config/app.toml"},
		home + "/.config/app.toml":      {"x=1\n", "~/.config/app.toml"},
		"~/.config/../.config/app.toml": {"x=1\n", "~/.config/app.toml"},
		"~//.config//app.toml":          {"x=1\n", "~/.config/app.toml"},
		"//workspace//src//a.txt":       {"a\n", "src/a.txt"},
		"src/../b.txt":                  {"b\n", "b.txt"},
	} {
		fc, err := v.e.ReadFile(ctx, "w", name, 0, 0)
		if err != nil || string(fc.Data) != want[0] || fc.Path != want[1] {
			t.Errorf("read_file %q = %q as %q, %v; want %q as %q", name, fc.Data, fc.Path, err, want[0], want[1])
		}
	}
	if got := stdout(v.sh(t, "w", "cat ~/.config/app.toml")); got != "x=1\n" {
		t.Errorf("a command reads the home file written by write_files as %q", got)
	}
	ents, err := v.e.ListFiles(ctx, "w", "~/.config", 1)
	wantList(t, "list_files ~/.config", ents, err, "~/.config/app.toml")
	ents, err = v.e.ListFiles(ctx, "w", home+"/.config/", 1)
	wantList(t, "list_files "+home+"/.config/", ents, err, "~/.config/app.toml")
	ents, err = v.e.ListFiles(ctx, "w", "~", 1)
	if err != nil || !strings.Contains("|"+strings.Join(entryPaths(ents), "|")+"|", "|~/.config|") {
		t.Errorf("list_files ~ = %q, %v; want ~/.config among them", entryPaths(ents), err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Path, "~/") {
			t.Errorf("list_files ~ entry %q is not in the ~/ form", e.Path)
		}
	}
	ents, err = v.e.ListFiles(ctx, "w", "", 2)
	wantList(t, "list_files of /workspace", ents, err, "b.txt", "src", "src/a.txt")
	// What list_files gives back, read_file takes.
	ents, _ = v.e.ListFiles(ctx, "w", "~/.config", 1)
	if len(ents) == 1 {
		if fc, err := v.e.ReadFile(ctx, "w", ents[0].Path, 0, 0); err != nil || string(fc.Data) != "x=1\n" {
			t.Errorf("read_file of the listed %q: %q, %v", ents[0].Path, fc.Data, err)
		}
	}

	before := head(t, v, "w")
	for _, p := range []string{"../x", "~/../x", "~//../x", "/etc/passwd", "~root/x", "/home", home + "/../x", "~", ""} {
		_, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{
			{Path: "ok.txt", Content: []byte("ok")}, {Path: p, Content: []byte("x")},
		}})
		e := fields(t, "write_files "+p, err)
		if !errors.Is(err, engine.ErrInvalid) || e.Fields.Argument != "files[1].path" || e.Fields.Path != p {
			t.Errorf("write_files %q: %v (argument %q, path %q); want ErrInvalid about files[1].path", p, err, e.Fields.Argument, e.Fields.Path)
		}
		if p != "~" && p != "" && (!strings.Contains(e.Msg, "/workspace") || !strings.Contains(e.Msg, "~/")) {
			t.Errorf("write_files %q: message %q does not name the allowed roots", p, e.Msg)
		}
		if p == "~" || p == "" {
			continue
		}
		_, err = v.e.ReadFile(ctx, "w", p, 0, 0)
		if e := fields(t, "read_file "+p, err); !errors.Is(err, engine.ErrInvalid) || e.Fields.Argument != "path" {
			t.Errorf("read_file %q: %v (argument %q); want ErrInvalid about path", p, err, e.Fields.Argument)
		}
	}
	if head(t, v, "w") != before {
		t.Fatal("refused writes moved head")
	}
	if _, err := v.e.ReadFile(ctx, "w", "ok.txt", 0, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("ok.txt of a refused write_files: %v, want ErrNotFound (nothing written)", err)
	}

	// A directory is listed, not read; the error says how.
	_, err = v.e.ReadFile(ctx, "w", "src", 0, 0)
	e := fields(t, "read_file of a directory", err)
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(e.Msg, "list_files") || len(e.Next) == 0 || e.Next[0].Tool != "list_files" {
		t.Errorf("read_file of a directory: %v, next %+v; want ErrInvalid naming list_files", err, e.Next)
	}
	if strings.Contains(e.Msg, "ListFiles") {
		t.Errorf("read_file of a directory names ListFiles, which is no tool: %q", e.Msg)
	}
	// A symlink in the home pointing out of it is refused like one in /workspace.
	v.sh(t, "w", "ln -s /etc ~/etc-link")
	_, err = v.e.ReadFile(ctx, "w", "~/etc-link/passwd", 0, 0)
	wantErr(t, "read_file through a home symlink pointing out", err, engine.ErrInvalid, "symlink")
}

// TestWriteFilesDeletes: write_files deletes files, symlinks and (recursive) directories in
// /workspace and the home in the same single commit as its writes; a bad path among good ones —
// missing, a directory without recursive, escaping, a root, written and deleted — changes nothing
// and head stays.
func TestWriteFilesDeletes(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	v.sh(t, "w", `set -e; echo a > a.txt; echo k > keep.txt; mkdir -p dir/y; echo x > dir/x; echo z > dir/y/z
mkdir -p ~/.cache; echo c > ~/.cache/c; ln -s /etc etclink; ln -s keep.txt link`)
	h0 := head(t, v, "w")
	hist0, err := v.e.History(ctx, "w", 100)
	if err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name string
		req  engine.WriteRequest
		kind error
		arg  string
		msg  string
	}{
		{"a missing path among good ones", engine.WriteRequest{Files: []engine.WriteFile{{Path: "new.txt", Content: []byte("n")}}, Delete: []string{"a.txt", "missing.txt"}}, engine.ErrNotFound, "delete[1]", "missing.txt"},
		{"a directory without recursive", engine.WriteRequest{Delete: []string{"a.txt", "dir"}}, engine.ErrInvalid, "delete[1]", "recursive"},
		{"a lexical escape", engine.WriteRequest{Delete: []string{"a.txt", "../x"}}, engine.ErrInvalid, "delete[1]", "/workspace"},
		{"an escape through a symlink", engine.WriteRequest{Delete: []string{"a.txt", "etclink/passwd"}, Recursive: true}, engine.ErrInvalid, "delete[1]", "symlink"},
		{"the workspace root", engine.WriteRequest{Delete: []string{"/workspace"}, Recursive: true}, engine.ErrInvalid, "delete[0]", "cannot be deleted"},
		{"the home root", engine.WriteRequest{Delete: []string{"~/"}, Recursive: true}, engine.ErrInvalid, "delete[0]", "cannot be deleted"},
		{"a path written and deleted", engine.WriteRequest{Files: []engine.WriteFile{{Path: "a.txt", Content: []byte("n")}}, Delete: []string{"./a.txt"}}, engine.ErrInvalid, "delete[0]", "files[0].path"},
		{"a file written in a deleted directory", engine.WriteRequest{Files: []engine.WriteFile{{Path: "dir/new", Content: []byte("n")}}, Delete: []string{"dir"}, Recursive: true}, engine.ErrInvalid, "delete[0]", "two write_files calls"},
		{"nothing at all", engine.WriteRequest{Recursive: true}, engine.ErrInvalid, "files", "nothing to do"},
	}
	for _, r := range refused {
		_, err := v.e.WriteFiles(ctx, "w", r.req)
		e := fields(t, r.name, err)
		if !errors.Is(err, r.kind) || e.Fields.Argument != r.arg || !strings.Contains(e.Msg, r.msg) {
			t.Errorf("write_files with %s: %v (argument %q); want %v about %s mentioning %q", r.name, err, e.Fields.Argument, r.kind, r.arg, r.msg)
		}
		if head(t, v, "w") != h0 {
			t.Fatalf("write_files with %s moved head", r.name)
		}
	}
	if got := stdout(v.sh(t, "w", "cat a.txt dir/x ~/.cache/c; test -e new.txt || echo no-new")); got != "a\nx\nc\nno-new\n" {
		t.Fatalf("after the refused calls: %q, want everything as it was", got)
	}
	h1 := head(t, v, "w") // the sh above committed only where the provider cannot tell it changed nothing

	c, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{
		Files:  []engine.WriteFile{{Path: "new.txt", Content: []byte("new\n")}},
		Delete: []string{"a.txt", "dir", "~/.cache/c", "link"}, Recursive: true,
	})
	if err != nil {
		t.Fatalf("write_files with deletes: %v", err)
	}
	if c.Parent != h1 || head(t, v, "w") != c.ID || c.Kind != engine.CommitWrite {
		t.Errorf("commit %+v: want kind write, parent %s, and head on it", c, h1)
	}
	if want := "write 1 file(s), delete 4: new.txt, a.txt, dir, and 2 more"; c.Message != want {
		t.Errorf("commit message %q, want %q", c.Message, want)
	}
	hist, err := v.e.History(ctx, "w", 100)
	want := len(hist0) + 1 // the write
	if h1 != h0 {
		want++ // the checking sh
	}
	if err != nil || len(hist) != want {
		t.Errorf("history has %d commits (%v), want %d: one commit for the whole write_files", len(hist), err, want)
	}
	if got := stdout(v.sh(t, "w", "ls -A; ls -A ~/.cache; cat new.txt")); got != "etclink\nkeep.txt\nnew.txt\nnew\n" {
		t.Errorf("after write_files with deletes: %q", got)
	}
	c, err = v.e.WriteFiles(ctx, "w", engine.WriteRequest{Delete: []string{"keep.txt"}})
	if err != nil || c.Message != "delete 1: keep.txt" {
		t.Errorf("write_files with only a delete: %+v, %v; want a commit \"delete 1: keep.txt\"", c, err)
	}
	v.wantNoFile(t, ctx, "keep.txt", "read_file of a deleted file")
}

// TestSessionFilesHomeAndDeletes: in a live session, write_files, read_file and list_files take
// ~/ paths, deletes apply at once without a commit, a bad path among good ones changes no file,
// and commit_session keeps both the home files and the deletes.
func TestSessionFilesHomeAndDeletes(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	v.sh(t, "w", "echo old > old.txt")
	h0 := head(t, v, "w")
	s := v.open(t, alice, "w", 0)

	err := v.e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{Files: []engine.WriteFile{
		{Path: "~/notes/n.txt", Content: []byte("n\n")}, {Path: "~/notes/m.txt", Content: []byte("m\n")}, {Path: "//workspace//w.txt", Content: []byte("w\n")},
	}})
	if err != nil {
		t.Fatalf("session write_files: %v", err)
	}
	fc, err := v.e.SessionReadFile(ctx, alice, s.ID, "~/notes/n.txt", 0, 0)
	if err != nil || string(fc.Data) != "n\n" || fc.Path != "~/notes/n.txt" {
		t.Errorf("session read_file ~/notes/n.txt: %q as %q, %v", fc.Data, fc.Path, err)
	}
	ents, err := v.e.SessionListFiles(ctx, alice, s.ID, "~/notes", 1)
	wantList(t, "session list_files ~/notes", ents, err, "~/notes/m.txt", "~/notes/n.txt")
	if got := stdout(engine.RunResult{Stdout: v.sexec(t, alice, s.ID, "cat ~/notes/n.txt w.txt").Stdout}); got != "n\nw\n" {
		t.Errorf("session command reads %q", got)
	}

	err = v.e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{
		Files:  []engine.WriteFile{{Path: "ok.txt", Content: []byte("ok")}},
		Delete: []string{"~/notes/n.txt", "~/nope"},
	})
	if e := fields(t, "session write_files with a missing delete", err); !errors.Is(err, engine.ErrNotFound) || e.Fields.Argument != "delete[1]" || e.Fields.Path != "~/nope" {
		t.Errorf("session write_files with a missing delete: %v (argument %q, path %q); want ErrNotFound about delete[1] ~/nope", err, e.Fields.Argument, e.Fields.Path)
	}
	if got := stdout(engine.RunResult{Stdout: v.sexec(t, alice, s.ID, "cat ~/notes/n.txt; test -e ok.txt || echo no-ok").Stdout}); got != "n\nno-ok\n" {
		t.Errorf("after the refused session write: %q, want nothing changed", got)
	}

	if err := v.e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{Delete: []string{"~/notes/n.txt", "old.txt"}}); err != nil {
		t.Fatalf("session deletes: %v", err)
	}
	if got := stdout(engine.RunResult{Stdout: v.sexec(t, alice, s.ID, "ls ~/notes; test -e old.txt || echo no-old").Stdout}); got != "m.txt\nno-old\n" {
		t.Errorf("after session deletes: %q", got)
	}
	if head(t, v, "w") != h0 {
		t.Fatal("session writes and deletes moved head before commit_session")
	}
	if _, err := v.e.CommitSession(ctx, alice, s.ID, ""); err != nil {
		t.Fatalf("commit_session: %v", err)
	}
	if fc, err := v.e.ReadFile(ctx, "w", "~/notes/m.txt", 0, 0); err != nil || string(fc.Data) != "m\n" {
		t.Errorf("home file after commit_session: %q, %v", fc.Data, err)
	}
	for _, gone := range []string{"~/notes/n.txt", "old.txt"} {
		v.wantNoFile(t, ctx, gone, gone+" deleted in the session, after commit_session")
	}
}

// TestWorkspacePath: a path in /workspace, relative or absolute, comes back relative and clean;
// one that leaves it, the home directory, or a NUL is refused as invalid.
func TestWorkspacePath(t *testing.T) {
	for p, want := range map[string]string{"": ".", ".": ".", "/workspace": ".", "src/a.go": "src/a.go", "/workspace/src/../b": "b", "a//b/": "a/b"} {
		if got, err := engine.WorkspacePath(p); err != nil || got != want {
			t.Errorf("WorkspacePath(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	for _, p := range []string{"../x", "src/../../x", "/etc/passwd", "~/.profile", "a\x00b"} {
		if _, err := engine.WorkspacePath(p); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("WorkspacePath(%q): %v, want an invalid-argument error", p, err)
		}
	}
}
