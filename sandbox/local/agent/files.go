package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// File operations of the agent. They run inside the sandbox as the sandbox user, so they can
// never reach anything the sandboxed commands could not reach themselves; the path rules here
// give the contract's semantics: a path names something inside its root (/workspace, or the home
// directory the request names) after every symbolic link on the way is followed the way the
// kernel would (an absolute link to /workspace/x, or one that goes "../workspace/x", stays
// inside), and anything that ends up outside that root fails with ErrPathEscape before any byte
// is read, written or removed.

// maxListEntries bounds one ListFiles answer.
const maxListEntries = 20000

// split maps a contract path ("src/a.go", "/workspace/src/a.go", "/home/sandbox/.bashrc") to its
// root and the clean path relative to it ("." for the root itself).
func split(p, home string) (root, rel string, werr *WireError) {
	root, rel, err := sandbox.SplitPath(p, home)
	if err != nil {
		kind := KindInvalid
		if errors.Is(err, sandbox.ErrPathEscape) {
			kind = KindEscape
		}
		msg := err.Error()
		for _, s := range []error{sandbox.ErrPathEscape, sandbox.ErrInvalid} {
			msg = strings.TrimPrefix(msg, s.Error()+": ")
		}
		return "", "", &WireError{Kind: kind, Message: msg}
	}
	return root, rel, nil
}

// inside reports whether the absolute clean path p is root or lies under it.
func inside(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// fileErr maps an error of an os.Root operation on p to a wire error that names p.
func fileErr(p string, err error) *WireError {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &WireError{Kind: KindNotFound, Message: fmt.Sprintf("%s: no such file or directory", p)}
	case errors.Is(err, syscall.ENOTDIR):
		return &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: a component of the path is not a directory", p)}
	case errors.Is(err, syscall.EISDIR):
		return &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is a directory", p)}
	case errors.Is(err, syscall.ELOOP):
		return &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: too many levels of symbolic links", p)}
	default:
		return &WireError{Kind: KindIO, Message: fmt.Sprintf("%s: %s", p, msg)}
	}
}

// maxSymlinks bounds the links followed while resolving one path, like the kernel's limit.
const maxSymlinks = 40

// resolve returns the real absolute path that rel (relative to root, a split result) names,
// following every symbolic link; when a component does not exist, it and the rest are appended
// as they are (a write creates them). The result must lie in root, else the error is an escape.
func resolve(orig, root, rel string) (string, *WireError) {
	var todo []string
	if rel != "." {
		todo = strings.Split(rel, "/")
	}
	cur := root
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			cur = path.Join(append([]string{next}, todo...)...)
			break
		}
		if err != nil {
			return "", fileErr(orig, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: %s is not a directory", orig, strings.TrimPrefix(next, root+"/"))}
			}
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: too many levels of symbolic links", orig)}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fileErr(orig, err)
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if !inside(cur, root) {
		return "", &WireError{Kind: KindEscape, Message: fmt.Sprintf("%s: resolves to %s, outside %s (through a symbolic link)", orig, cur, root)}
	}
	return cur, nil
}

// removal is one checked path of a write request's Remove list.
type removal struct {
	orig      string
	root, rel string // lexical, for overlap checks
	abs       string // the entry to remove: its parent resolved, its own name not followed
}

// checkRemove validates one path to remove: it exists, is not a root, and is a directory only
// when recursive. The last component is not followed, so a symlink is removed, not its target.
func checkRemove(p, home string, recursive bool) (removal, *WireError) {
	root, rel, werr := split(p, home)
	if werr != nil {
		return removal{}, werr
	}
	if rel == "." {
		return removal{}, &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is %s itself, which cannot be removed; remove the entries inside it instead", p, root)}
	}
	parent, werr := resolve(p, root, path.Dir(rel))
	if werr != nil {
		return removal{}, werr
	}
	abs := path.Join(parent, path.Base(rel))
	if abs == root {
		return removal{}, &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is %s itself, which cannot be removed", p, root)}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return removal{}, fileErr(p, err)
	}
	if fi.IsDir() && !recursive {
		return removal{}, &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is a directory; remove it with recursive set", p)}
	}
	return removal{orig: p, root: root, rel: rel, abs: abs}, nil
}

func (a *agent) writeFiles(ac *conn, req *Request) Result {
	// Read every blob first: the request must be consumed whatever we decide.
	data := make([][]byte, len(req.Files))
	for i := range req.Files {
		b, err := ReadBlob(ac.r, req.MaxSize)
		if err != nil {
			return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: %v", req.Files[i].Path, err)}}
		}
		data[i] = b
	}
	// Validate every path, removed and written, before changing anything.
	removals := make([]removal, len(req.Remove))
	for i, p := range req.Remove {
		r, werr := checkRemove(p, req.Home, req.Recursive)
		if werr != nil {
			return Result{Err: werr}
		}
		removals[i] = r
	}
	targets := make([]string, len(req.Files))
	for i, f := range req.Files {
		root, rel, werr := split(f.Path, req.Home)
		if werr != nil {
			return Result{Err: werr}
		}
		if rel == "." || strings.HasSuffix(f.Path, "/") {
			return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is a directory, not a file path", f.Path)}}
		}
		for _, r := range removals {
			if r.root == root && (sandbox.Within(rel, r.rel) || sandbox.Within(r.rel, rel)) {
				return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is written and %s removed in the same request; write and remove in separate requests", f.Path, r.orig)}}
			}
		}
		abs, werr := resolve(f.Path, root, rel)
		if werr != nil {
			return Result{Err: werr}
		}
		if fi, err := os.Lstat(abs); err == nil {
			if fi.IsDir() {
				return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is a directory", f.Path)}}
			}
			if !fi.Mode().IsRegular() {
				return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: exists and is not a regular file", f.Path)}}
			}
		}
		targets[i] = abs
	}
	for _, r := range removals {
		// A path inside a directory removed earlier in this request is gone already.
		if _, err := os.Lstat(r.abs); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(r.abs); err != nil {
			return Result{Err: fileErr(r.orig, err)}
		}
	}
	for i, f := range req.Files {
		if err := writeOne(targets[i], data[i], fs.FileMode(f.Mode)); err != nil {
			return Result{Err: fileErr(f.Path, err)}
		}
	}
	return Result{}
}

func writeOne(abs string, data []byte, mode fs.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	mode &= fs.ModePerm
	if err := os.MkdirAll(path.Dir(abs), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *agent) readFile(req *Request) ([]byte, Result) {
	root, rel, werr := split(req.Path, req.Home)
	if werr != nil {
		return nil, Result{Err: werr}
	}
	if req.Offset < 0 {
		return nil, Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: negative offset %d", req.Path, req.Offset)}}
	}
	abs, werr := resolve(req.Path, root, rel)
	if werr != nil {
		return nil, Result{Err: werr}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, Result{Err: fileErr(req.Path, err)}
	}
	if fi.IsDir() {
		return nil, Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: is a directory; list it with list_files", req.Path)}}
	}
	if !fi.Mode().IsRegular() {
		return nil, Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: not a regular file", req.Path)}}
	}
	// O_NONBLOCK: should the file have become a FIFO meanwhile, do not wait for a writer.
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Result{Err: fileErr(req.Path, err)}
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: not a regular file", req.Path)}}
	}
	size := fi.Size()
	n := req.Max
	if rest := size - req.Offset; n > rest {
		n = max(rest, 0)
	}
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, req.Offset)
	if err != nil && err != io.EOF {
		return nil, Result{Err: fileErr(req.Path, err)}
	}
	return buf[:m], Result{Size: size}
}

func (a *agent) listFiles(req *Request) Result {
	root, rel, werr := split(req.Path, req.Home)
	if werr != nil {
		return Result{Err: werr}
	}
	abs, werr := resolve(req.Path, root, rel)
	if werr != nil {
		return Result{Err: werr}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return Result{Err: fileErr(req.Path, err)}
	}
	if !fi.IsDir() {
		return Result{Err: &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: not a directory", req.Path)}}
	}
	depth := max(req.Depth, 1)
	limit := req.Limit
	if limit <= 0 {
		limit = maxListEntries
	}
	// Entries are named under the directory as the caller named it (through any symlink):
	// relative to /workspace there, absolute in the home (the contract's FileEntry.Path).
	prefix := rel
	if root != sandbox.WorkspaceDir {
		prefix = path.Join(root, rel)
	}
	var out []sandbox.FileEntry
	var walk func(dirAbs, dirRel string, level int) *WireError
	walk = func(dirAbs, dirRel string, level int) *WireError {
		ents, err := os.ReadDir(dirAbs)
		if err != nil {
			return fileErr(dirRel, err)
		}
		for _, e := range ents {
			p := e.Name()
			if dirRel != "." {
				p = dirRel + "/" + e.Name()
			}
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if len(out) >= limit {
				return &WireError{Kind: KindInvalid, Message: fmt.Sprintf("%s: more than %d entries; list a subdirectory or use a smaller depth", req.Path, limit)}
			}
			ent := sandbox.FileEntry{Path: p, Mode: info.Mode().Perm(), ModTime: info.ModTime()}
			full := path.Join(dirAbs, e.Name())
			switch {
			case info.Mode().IsRegular():
				ent.Type = "file"
				ent.Size = info.Size()
			case info.IsDir():
				ent.Type = "dir"
			case info.Mode()&fs.ModeSymlink != 0:
				ent.Type = "symlink"
				ent.Target, _ = os.Readlink(full)
			default:
				ent.Type = "other"
			}
			out = append(out, ent)
			if ent.Type == "dir" && level < depth {
				if werr := walk(full, p, level+1); werr != nil {
					return werr
				}
			}
		}
		return nil
	}
	if werr := walk(abs, prefix, 1); werr != nil {
		return Result{Err: werr}
	}
	return Result{Entries: out}
}
