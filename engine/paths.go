package engine

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Paths agents give the file tools (read_file, list_files, write_files) name something in one of
// the two durable roots of a workspace: /workspace and the sandbox user's home directory (the
// provider's Capabilities.HomeDir). Accepted forms:
//
//	src/main.go              relative: inside /workspace
//	/workspace/src/main.go   absolute under /workspace
//	~  ~/.bashrc             the home, or a path inside it
//	/home/sandbox/.bashrc    absolute under the home
//
// A path is cleaned first ("//workspace//x" is /workspace/x, "a/../b" is b); one that still
// leaves its root after cleaning ("../x", "~/../x", "/etc/passwd") is refused, naming the roots.
// Symlinks are the provider's to check. Paths the engine hands back — read_file's path,
// list_files' entries, commit messages — are relative for /workspace and "~/..." for the home,
// so an agent can pass them back as they are.

// filePath is an agent's path, cleaned.
type filePath struct {
	// prov is the path as the provider takes it: relative to /workspace ("." for /workspace
	// itself) or absolute under the home.
	prov string
	// show is the path as the engine shows it: relative to /workspace, or "~"/"~/...".
	show string
	// home is true for the home root; rel is the path relative to its root ("." for the root).
	home bool
	rel  string
}

// rootName names p's root for messages.
func (p filePath) rootName() string {
	if p.home {
		return "the home directory (~)"
	}
	return "/workspace"
}

// within reports whether p equals q or lies inside it.
func (p filePath) within(q filePath) bool {
	return p.home == q.home && sandbox.Within(p.rel, q.rel)
}

// allowedRoots says which path forms are accepted, for messages.
func allowedRoots(home string) string {
	if home == "" {
		return "use a path relative to /workspace or starting with /workspace/"
	}
	return fmt.Sprintf("use a path relative to /workspace, starting with /workspace/, or in the home directory (~/... or %s/...)", home)
}

// parsePath cleans an agent's path p (see above) against home, the provider's home directory
// ("" when it has none: then only /workspace paths are accepted). allowRoot admits the roots
// themselves ("", ".", "/workspace", "~"). arg names the argument for the error's fields.
func parsePath(p, home string, allowRoot bool, arg string) (filePath, error) {
	fail := func(format string, args ...any) (filePath, error) {
		return filePath{}, errorf(ErrInvalid, format, args...).with(ErrorFields{Argument: arg, Path: p})
	}
	if strings.ContainsRune(p, 0) {
		return fail("%s %q contains a NUL byte", arg, p)
	}
	if !utf8.ValidString(p) {
		return fail("%s is not valid UTF-8", arg)
	}
	if len(p) > 4096 {
		return fail("%s is longer than 4096 bytes", arg)
	}
	var fp filePath
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		if home == "" {
			return fail("%s %q is in the home directory, but this workspace's provider has none; %s", arg, p, allowedRoots(home))
		}
		fp.home, fp.rel = true, "."
		if rest := strings.TrimLeft(p[1:], "/"); rest != "" {
			fp.rel = path.Clean(rest)
		}
	case strings.HasPrefix(p, "~"):
		return fail("%s %q: only the sandbox user's own home can be named with ~ (~/...); %s", arg, p, allowedRoots(home))
	case strings.HasPrefix(p, "/"):
		c := path.Clean(p)
		switch {
		case c == sandbox.WorkspaceDir || strings.HasPrefix(c, sandbox.WorkspaceDir+"/"):
			fp.rel = strings.TrimPrefix(strings.TrimPrefix(c, sandbox.WorkspaceDir), "/")
		case home != "" && (c == home || strings.HasPrefix(c, home+"/")):
			fp.home, fp.rel = true, strings.TrimPrefix(strings.TrimPrefix(c, home), "/")
		default:
			return fail("%s %q is outside /workspace and the home directory; %s", arg, p, allowedRoots(home))
		}
	default:
		fp.rel = path.Clean(p)
		if fp.rel == ".." || strings.HasPrefix(fp.rel, "../") {
			return fail("%s %q leaves /workspace through \"..\"; %s", arg, p, allowedRoots(home))
		}
	}
	if fp.rel == "" {
		fp.rel = "."
	}
	if fp.home && (fp.rel == ".." || strings.HasPrefix(fp.rel, "../")) {
		return fail("%s %q leaves the home directory through \"..\"; %s", arg, p, allowedRoots(home))
	}
	if fp.rel == "." && !allowRoot {
		if fp.home {
			return fail("%s %q names the home directory itself; give a file path inside it, e.g. ~/notes.txt", arg, p)
		}
		return fail("%s %q names /workspace itself; give a file path, e.g. src/main.go", arg, p)
	}
	if fp.home {
		fp.prov, fp.show = path.Join(home, fp.rel), "~"
		if fp.rel != "." {
			fp.show = "~/" + fp.rel
		}
	} else {
		fp.prov, fp.show = fp.rel, fp.rel
	}
	return fp, nil
}

// WorkspacePath checks p as a path in /workspace (relative to it, or absolute inside it; not the
// home directory) by the rules of every path argument, and returns it relative to /workspace,
// cleaned ("." for /workspace itself). For names of workspace files outside a tool's arguments
// (resource URIs); the error is of kind invalid and says what to give instead.
func WorkspacePath(p string) (string, error) {
	fp, err := parsePath(p, "", true, "path")
	return fp.rel, err
}

// cleanPath validates a working directory inside /workspace and returns it relative to
// /workspace ("." for the directory itself), cleaned.
func cleanPath(p string, allowRoot bool) (string, error) {
	if strings.HasPrefix(p, "~") {
		return "", errorf(ErrInvalid, "cwd %q: commands start in /workspace or a directory inside it; use a path relative to /workspace, or cd in the command", p).with(ErrorFields{Argument: "cwd", Path: p})
	}
	fp, err := parsePath(p, "", allowRoot, "cwd")
	return fp.prov, err
}

// showPath turns a path from the provider (relative to /workspace, or absolute under home) into
// the form the engine shows.
func showPath(p, home string) string {
	if home != "" && path.IsAbs(p) {
		if p == home {
			return "~"
		}
		if rest, ok := strings.CutPrefix(p, home+"/"); ok {
			return "~/" + rest
		}
	}
	return p
}

// fileEntries converts provider entries for the agent.
func fileEntries(entries []sandbox.FileEntry, home string) []FileEntry {
	out := make([]FileEntry, 0, min(len(entries), MaxListEntries))
	for i, en := range entries {
		if i == MaxListEntries {
			break
		}
		out = append(out, FileEntry{
			Path: showPath(en.Path, home), Type: en.Type, Size: en.Size, Mode: fmt.Sprintf("%04o", en.Mode.Perm()),
			ModTime: en.ModTime.UTC(), Target: en.Target,
		})
	}
	return out
}

// listArgs validates list_files' path and depth.
func listArgs(p, home string, depth int) (filePath, int, error) {
	fp := filePath{prov: ".", show: ".", rel: "."}
	if p != "" {
		var err error
		if fp, err = parsePath(p, home, true, "path"); err != nil {
			return filePath{}, 0, err
		}
	}
	if depth <= 0 {
		depth = 1
	}
	if depth > MaxListDepth {
		return filePath{}, 0, errorf(ErrInvalid, "depth %d is more than the maximum %d; list a subdirectory instead", depth, MaxListDepth).
			with(ErrorFields{Argument: "depth", Limit: ptr(int64(MaxListDepth)), Got: ptr(int64(depth))})
	}
	return fp, depth, nil
}

// readArgs validates read_file's path, offset and max (0: MaxFileSize).
func readArgs(p, home string, offset, max int64) (filePath, int64, error) {
	fp, err := parsePath(p, home, false, "path")
	if err != nil {
		return filePath{}, 0, err
	}
	if offset < 0 {
		return filePath{}, 0, errorf(ErrInvalid, "offset %d is negative; give 0 for the start, or a previous result's next_offset", offset).
			with(ErrorFields{Argument: "offset", Limit: ptr(int64(0)), Got: ptr(offset)})
	}
	if max < 0 || max > MaxFileSize {
		return filePath{}, 0, errorf(ErrInvalid, "max_bytes %d is out of range: give 1 to %d (read larger files in windows with offset)", max, int64(MaxFileSize)).
			with(ErrorFields{Argument: "max_bytes", Limit: ptr(int64(MaxFileSize)), Got: ptr(max)})
	}
	if max == 0 {
		max = MaxFileSize
	}
	return fp, max, nil
}

// change is a validated WriteRequest: what the provider applies and what the engine reports.
type change struct {
	sandbox.FileChanges
	written, deleted []filePath
}

// message is the commit message of a durable write: "write 2 file(s), delete 1: a, b, ~/c".
func (c change) message() string {
	var what []string
	if n := len(c.written); n > 0 {
		what = append(what, fmt.Sprintf("write %d file(s)", n))
	}
	if n := len(c.deleted); n > 0 {
		what = append(what, fmt.Sprintf("delete %d", n))
	}
	all := append(append([]filePath{}, c.written...), c.deleted...)
	names := make([]string, 0, 4)
	for i, p := range all {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(all)-3))
			break
		}
		names = append(names, p.show)
	}
	return strings.Join(what, ", ") + ": " + strings.Join(names, ", ")
}

// validWrite checks a write_files request against the limits and the path rules, before any
// sandbox is involved, and converts it for the provider (which checks symlinks and existence).
func validWrite(req WriteRequest, home string) (change, error) {
	var c change
	if len(req.Files) == 0 && len(req.Delete) == 0 {
		return c, errorf(ErrInvalid, "files and delete are both empty, so there is nothing to do: give files to write ({path, content}) and/or paths to delete").with(ErrorFields{Argument: "files"})
	}
	if n := len(req.Files); n > MaxFilesPerWrite {
		return c, errorf(ErrInvalid, "%d files in one call is more than the %d allowed; split the write", n, MaxFilesPerWrite).
			with(ErrorFields{Argument: "files", Limit: ptr(int64(MaxFilesPerWrite)), Got: ptr(int64(n))})
	}
	if n := len(req.Delete); n > MaxFilesPerWrite {
		return c, errorf(ErrInvalid, "%d paths to delete in one call is more than the %d allowed; delete a directory with recursive, or split the call", n, MaxFilesPerWrite).
			with(ErrorFields{Argument: "delete", Limit: ptr(int64(MaxFilesPerWrite)), Got: ptr(int64(n))})
	}
	var total int64
	seen := map[filePath]string{}
	for i, f := range req.Files {
		arg := fmt.Sprintf("files[%d].path", i)
		p, err := parsePath(f.Path, home, false, arg)
		if err != nil {
			return c, err
		}
		if other, dup := seen[p]; dup {
			return c, errorf(ErrInvalid, "%s %q names the same file as %s; give each file once", arg, f.Path, other).with(ErrorFields{Argument: arg, Path: f.Path})
		}
		seen[p] = arg
		if n := int64(len(f.Content)); n > MaxFileSize {
			return c, errorf(ErrInvalid, "%s is %d bytes, more than the %d-byte limit per file; generate large files with a command instead", f.Path, n, MaxFileSize).
				with(ErrorFields{Argument: fmt.Sprintf("files[%d].content", i), Path: f.Path, Limit: ptr(int64(MaxFileSize)), Got: ptr(n)})
		}
		total += int64(len(f.Content))
		if f.Mode&^0o7777 != 0 {
			return c, errorf(ErrInvalid, "mode %o of %s has bits beyond permissions (use e.g. 0644 or 0755)", f.Mode, f.Path).
				with(ErrorFields{Argument: fmt.Sprintf("files[%d].mode", i), Path: f.Path})
		}
		c.written = append(c.written, p)
		c.Write = append(c.Write, sandbox.File{Path: p.prov, Content: f.Content, Mode: fs.FileMode(f.Mode)})
	}
	if total > MaxWriteTotal {
		return c, errorf(ErrInvalid, "%d bytes in one call is more than the %d-byte limit; split the write", total, MaxWriteTotal).
			with(ErrorFields{Argument: "files", Limit: ptr(int64(MaxWriteTotal)), Got: ptr(total)})
	}
	deleted := map[filePath]string{}
	for i, d := range req.Delete {
		arg := fmt.Sprintf("delete[%d]", i)
		p, err := parsePath(d, home, true, arg)
		if err != nil {
			return c, err
		}
		if p.rel == "." {
			return c, errorf(ErrInvalid, "%s %q is %s itself, which cannot be deleted; delete the entries inside it instead", arg, d, p.rootName()).with(ErrorFields{Argument: arg, Path: d})
		}
		if other, dup := deleted[p]; dup {
			return c, errorf(ErrInvalid, "%s %q names the same path as %s; give each path once", arg, d, other).with(ErrorFields{Argument: arg, Path: d})
		}
		deleted[p] = arg
		for j, w := range c.written {
			if w.within(p) || p.within(w) {
				return c, errorf(ErrInvalid, "%s %q overlaps files[%d].path %q: a path cannot be written and deleted in one call (nor a file written inside a deleted directory); use two write_files calls", arg, d, j, req.Files[j].Path).
					with(ErrorFields{Argument: arg, Path: d})
			}
		}
		c.deleted = append(c.deleted, p)
		c.Remove = append(c.Remove, p.prov)
	}
	c.Recursive = req.Recursive && len(c.Remove) > 0
	return c, nil
}

// attribute fills an *Error's Argument and Path with the request path its message names (the
// provider's message names the path it refused, in one of the provider's forms), when one does.
func (c change) attribute(err error, req WriteRequest) error {
	e, ok := AsError(err)
	if !ok || !pathKind(e) || e.Fields.Argument != "" {
		return err
	}
	best, arg, orig := 0, "", ""
	try := func(p filePath, a, o string) {
		forms := []string{p.prov}
		if !p.home {
			forms = append(forms, path.Join(sandbox.WorkspaceDir, p.rel))
		}
		for _, f := range forms {
			if len(f) > best && mentions(e.Msg, f) {
				best, arg, orig = len(f), a, o
			}
		}
	}
	for i, p := range c.written {
		try(p, fmt.Sprintf("files[%d].path", i), req.Files[i].Path)
	}
	for i, p := range c.deleted {
		try(p, fmt.Sprintf("delete[%d]", i), req.Delete[i])
	}
	if arg != "" {
		e.Fields.Argument, e.Fields.Path = arg, orig
	}
	return e
}

// mentions reports whether msg holds name as a whole word: not as a part of a longer path.
func mentions(msg, name string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], name)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(name)
		before := j == 0 || strings.ContainsRune(" \"'(", rune(msg[j-1]))
		after := end == len(msg) || strings.ContainsRune(" \"'):,;", rune(msg[end]))
		if before && after {
			return true
		}
		i = j + 1
	}
}
