package vercel

import (
	"fmt"
	"path"
	"strings"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// absPath turns a contract path (relative to /workspace, or absolute under it) into the absolute
// path inside the VM. Lexical escapes fail with ErrPathEscape; symlinks are checked inside the VM
// (see vmScript).
func absPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: path %q contains a NUL byte", sandbox.ErrInvalid, p)
	}
	var abs string
	if strings.HasPrefix(p, "/") {
		abs = path.Clean(p)
	} else {
		abs = path.Clean(sandbox.WorkspaceDir + "/" + p)
	}
	if abs != sandbox.WorkspaceDir && !strings.HasPrefix(abs, sandbox.WorkspaceDir+"/") {
		return "", fmt.Errorf("%w: %q", sandbox.ErrPathEscape, p)
	}
	return abs, nil
}

// execCwd turns ExecRequest.Cwd into the command's absolute working directory: "" is
// /workspace, a relative one is resolved against it, an absolute one is kept (commands may run
// anywhere in the VM).
func execCwd(cwd string) string {
	switch {
	case cwd == "":
		return sandbox.WorkspaceDir
	case strings.HasPrefix(cwd, "/"):
		return path.Clean(cwd)
	default:
		return path.Clean(sandbox.WorkspaceDir + "/" + cwd)
	}
}

// rel returns abs relative to /workspace ("" for /workspace itself).
func rel(abs string) string {
	return strings.TrimPrefix(strings.TrimPrefix(abs, sandbox.WorkspaceDir), "/")
}

// vmScript carries out file operations inside the VM that the REST API has no endpoint for
// (symlink-aware containment checks, windows of files, listings). It runs as
// `sh -c vmScript sandkit-fs OP ARGS...` and reports failures through its exit status:
//
//	10 the (resolved) path leaves /workspace   11 it is a directory
//	12 it does not exist                        13 not a regular file / not a directory
//
// Output that may be binary is base64-encoded, so it survives the JSON log stream.
const vmScript = `set -u
inside() { case "$1" in /workspace|/workspace/*) return 0;; esac; return 1; }
op=$1; shift
case "$op" in
check-write)
	for p in "$@"; do
		r=$(realpath -m -- "$p") || exit 13
		inside "$r" || { printf '%s\n' "$p"; exit 10; }
		[ -d "$r" ] && { printf '%s\n' "$p"; exit 11; }
		d=$(dirname -- "$r")
		while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
		[ -d "$d" ] || { printf '%s\n' "$p"; exit 13; }
	done
	exit 0;;
read)
	r=$(realpath -m -- "$1") || exit 13
	inside "$r" || exit 10
	[ -e "$r" ] || exit 12
	[ -d "$r" ] && exit 11
	[ -f "$r" ] || exit 13
	size=$(stat -c %s -- "$r") || exit 12
	printf '%s\n' "$size"
	if [ "$3" -gt 0 ]; then
		tail -c +"$(($2 + 1))" -- "$r" | head -c "$3" | base64 -w0 || exit 14
	fi
	exit 0;;
list)
	r=$(realpath -m -- "$1") || exit 13
	inside "$r" || exit 10
	[ -e "$r" ] || exit 12
	[ -d "$r" ] || exit 13
	printf '%s\n' "$r"
	cd "$r" && find . -mindepth 1 -maxdepth "$2" -printf '%y\t%s\t%m\t%T@\t%P\t%l\0' | base64 -w0 || exit 14
	exit 0;;
esac
exit 2`

// execWrapper runs a command with the stdin sandkit gives it: `sh -c execWrapper sandkit-exec
// STDIN-FILE CMD ARGS...` where STDIN-FILE is "-" for an empty stdin. The file is opened, then
// removed, then the command replaces the shell. A command that cannot be started (not found, not
// executable) exits 127 with a message on stderr, as the contract asks.
const execWrapper = `f=$1; shift
case "$1" in
*/*) if [ ! -e "$1" ]; then echo "$1: no such file" >&2; exit 127; fi
	if [ -d "$1" ] || [ ! -x "$1" ]; then echo "$1: not an executable file" >&2; exit 127; fi;;
*) command -v -- "$1" >/dev/null 2>&1 || { echo "$1: command not found" >&2; exit 127; };;
esac
if [ "$f" = - ]; then exec "$@" </dev/null; fi
exec 0<"$f" || exit 126
rm -f -- "$f"
exec "$@"`

// wrapperName is the $0 of the wrapper shells, so commands can be recognised in listings.
const (
	wrapperName = "sandkit-exec"
	fsName      = "sandkit-fs"
)

// wrapped returns the command line that runs command with args under execWrapper.
func wrapped(stdinFile, command string, args []string) (string, []string) {
	return "/bin/sh", append([]string{"-c", execWrapper, wrapperName, stdinFile, command}, args...)
}

// unwrap recovers the user's command and arguments from a command the wrapper runs.
func unwrap(name string, args []string) (string, []string) {
	if name == "/bin/sh" && len(args) >= 5 && args[0] == "-c" && args[1] == execWrapper && args[2] == wrapperName {
		return args[4], args[5:]
	}
	return name, args
}
