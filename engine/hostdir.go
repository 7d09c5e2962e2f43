package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Host directories. The operator shares host directories with agents as host roots
// (`--host-root DIR` on the stdio door, for that door's connection; on `serve`, or "host_roots"
// in the operator config, for every connection). The roots travel with each request in its
// context (WithHostRoots), set by the server for the connection, never by an agent. Import
// (create_workspace from_host_dir) reads below a root; export writes below one.
//
// The rules, written once here:
//
//   - A host path is absolute inside a root, or relative, resolved against the first root.
//     After lexical cleaning it must stay inside its root: ".." out, or an absolute path in no
//     root, is refused.
//   - Every open is resolved beneath the root by the kernel (openat2 RESOLVE_BENEATH on Linux):
//     a symlink that leads out of the root is refused, also one in the middle of a path; within
//     the tree symlinks are copied as links, never followed.
//   - Without a root, the host-dir tools fail with an error that says how to enable them.
//   - Everything written into a host directory gets the owner (uid and gid) of the directory it
//     is written into, not the server's.

// HostRootsHelp says how an operator shares host directories, for errors and descriptions.
const HostRootsHelp = "the operator shares host directories with `--host-root DIR` (repeatable) on the stdio door (`sandkit-mcp --host-root .`) or on `sandkit-mcp serve`, or with \"host_roots\" in the operator config"

type hostRootsKey struct{}

// WithHostRoots returns a ctx whose requests may read and write below roots (absolute, clean
// directory paths; the server resolves them when it starts).
func WithHostRoots(ctx context.Context, roots []string) context.Context {
	return context.WithValue(ctx, hostRootsKey{}, roots)
}

// HostRootsFrom returns the roots WithHostRoots put in ctx (nil when none).
func HostRootsFrom(ctx context.Context) []string {
	r, _ := ctx.Value(hostRootsKey{}).([]string)
	return r
}

// hostPath is a host path resolved to its root.
type hostPath struct {
	root string // absolute, clean
	rel  string // relative to root, clean, OS separators; "." for the root itself
}

// show is the path as agents see it: absolute on the host.
func (h hostPath) show() string { return filepath.Join(h.root, h.rel) }

// resolveHostPath finds p's root among ctx's roots (see the rules above). arg names the
// argument for errors.
func resolveHostPath(ctx context.Context, arg, p string) (hostPath, error) {
	roots := HostRootsFrom(ctx)
	if len(roots) == 0 {
		return hostPath{}, errorf(ErrInvalid, "%s: this connection has no host directories: %s", arg, HostRootsHelp).
			with(ErrorFields{Argument: arg})
	}
	if strings.TrimSpace(p) == "" || strings.ContainsRune(p, 0) {
		return hostPath{}, ArgError(arg, "give a directory under a host root: "+strings.Join(roots, ", "))
	}
	if !filepath.IsAbs(p) {
		rel := filepath.Clean(p)
		if !filepath.IsLocal(rel) && rel != "." {
			return hostPath{}, errorf(ErrInvalid, "%s: %q leaves the host root %s; host paths must stay under a host root (%s)", arg, p, roots[0], strings.Join(roots, ", ")).
				with(ErrorFields{Argument: arg, Path: p})
		}
		return hostPath{root: roots[0], rel: rel}, nil
	}
	clean := filepath.Clean(p)
	for _, r := range roots {
		if rel, err := filepath.Rel(r, clean); err == nil && (rel == "." || filepath.IsLocal(rel)) {
			return hostPath{root: r, rel: rel}, nil
		}
	}
	return hostPath{}, errorf(ErrInvalid, "%s: %s is under no host root of this connection (%s)", arg, p, strings.Join(roots, ", ")).
		with(ErrorFields{Argument: arg, Path: p})
}

// errHostEscape marks an open refused because the path leads out of its root.
var errHostEscape = errors.New("leads out of its host root")

// hostErr maps a host file-system error about h (or a path below it) to an engine error.
func hostErr(arg string, h hostPath, what string, err error) error {
	shown := h.show()
	switch {
	case errors.Is(err, errHostEscape):
		return errorf(ErrInvalid, "%s: %s %s through a symlink or \"..\"; host paths must stay under %s", arg, what, errHostEscape, h.root).
			with(ErrorFields{Argument: arg, Path: shown})
	case errors.Is(err, fs.ErrNotExist):
		return errorf(ErrNotFound, "%s: %s does not exist (%s)", arg, what, shown).with(ErrorFields{Argument: arg, Path: shown})
	case errors.Is(err, fs.ErrPermission):
		return errorf(ErrInvalid, "%s: %s: permission denied on the host (%s)", arg, what, shown).with(ErrorFields{Argument: arg, Path: shown})
	case errors.Is(err, unix.ENOTDIR):
		return errorf(ErrInvalid, "%s: %s is not a directory (%s)", arg, what, shown).with(ErrorFields{Argument: arg, Path: shown})
	}
	return fmt.Errorf("%s %s: %w", what, shown, err)
}

// openRoot opens a host root directory.
func openRoot(root string) (*os.File, error) {
	return os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openDirBeneath opens the directory rel beneath dir.
func openDirBeneath(dir *os.File, rel string) (*os.File, error) {
	return openBeneath(dir, rel, os.O_RDONLY|unix.O_DIRECTORY, 0)
}

// lstatAt is lstat of name (one path element) in dir.
func lstatAt(dir *os.File, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// fileMode turns a stat mode into an fs.FileMode (type and permission bits).
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	default:
		mode |= fs.ModeDevice
	}
	return mode
}
