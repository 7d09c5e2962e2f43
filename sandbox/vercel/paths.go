package vercel

import (
	"path"
	"strings"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// vmPath is a contract path as the VM scripts take it: its root ('w' for /workspace, 'h' for the
// home, which inside the VM is the user's $HOME whatever the image) and the clean path relative
// to that root ("." for the root itself). Symlinks are checked inside the VM (see vmScript).
type vmPath struct {
	root byte
	rel  string
}

// split turns a contract path (relative to /workspace, or absolute under /workspace or the home
// HomeDir) into a vmPath. Lexical escapes fail with ErrPathEscape.
func (p *Provider) split(name string) (vmPath, error) {
	root, rel, err := sandbox.SplitPath(name, p.opts.HomeDir)
	if err != nil {
		return vmPath{}, err
	}
	if root == sandbox.WorkspaceDir {
		return vmPath{'w', rel}, nil
	}
	return vmPath{'h', rel}, nil
}

// arg is the path as a vmScript argument: "w:src/a.go", "h:.bashrc".
func (v vmPath) arg() string { return string(v.root) + ":" + v.rel }

// display names a vmScript argument for a message, in the contract's terms.
func (p *Provider) display(arg string) string {
	root, rel, ok := strings.Cut(arg, ":")
	if !ok {
		return arg
	}
	base := sandbox.WorkspaceDir
	if root == "h" {
		base = p.opts.HomeDir
	}
	return path.Join(base, rel)
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

// vmScript carries out file operations inside the VM that the REST API has no endpoint for
// (symlink-aware containment checks, windows of files, listings, removal). It runs as
// `sh -c vmScript sandkit-fs OP ARGS...`; paths are vmPath arguments ("w:rel" under /workspace,
// "h:rel" under $HOME), and a path must resolve, all symlinks followed, inside its own root. It
// reports failures through its exit status, printing the path at fault:
//
//	10 the (resolved) path leaves its root      11 it is a directory
//	12 it does not exist                         13 not a regular file / not a directory
//	15 it is a root itself (cannot be removed)   16 a directory to remove without recursive
//
// Output that may be binary is base64-encoded, so it survives the JSON log stream.
const vmScript = `set -u
home=${HOME:-}
[ -n "$home" ] || home=$(getent passwd "$(id -u)" | cut -d: -f6)
rootof() { case "$1" in h:*) realpath -m -- "$home";; *) realpath -m -- /workspace;; esac; }
absof() { printf '%s/%s' "$(rootof "$1")" "${1#?:}"; }
inside() { case "$1" in "$2"|"$2"/*) return 0;; esac; return 1; }
fail() { printf '%s\n' "$1"; exit "$2"; }
# entry ARG: the entry ARG names, its parent resolved but not itself (a symlink stays a link).
entry() { a=$(absof "$1"); printf '%s/%s' "$(realpath -m -- "$(dirname -- "$a")")" "$(basename -- "$a")"; }
checkremove() {
	root=$(rootof "$1"); e=$(entry "$1")
	inside "$(dirname -- "$e")" "$root" || fail "$1" 10
	[ "$e" != "$root" ] && inside "$e" "$root" || fail "$1" 15
	[ -e "$e" ] || [ -L "$e" ] || fail "$1" 12
	if [ -d "$e" ] && [ ! -L "$e" ] && [ "$2" != 1 ]; then fail "$1" 16; fi
}
checkwrite() {
	root=$(rootof "$1"); r=$(realpath -m -- "$(absof "$1")") || fail "$1" 13
	inside "$r" "$root" || fail "$1" 10
	[ -d "$r" ] && fail "$1" 11
	d=$(dirname -- "$r")
	while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
	[ -d "$d" ] || fail "$1" 13
}
op=$1; shift
case "$op" in
change)
	# change RECURSIVE NREMOVE REMOVE... WRITE...: check everything, remove, then print the
	# resolved targets of the writes (NUL-separated, base64) for the upload.
	rec=$1; n=$2; shift 2
	i=0; for p in "$@"; do i=$((i+1)); if [ "$i" -le "$n" ]; then checkremove "$p" "$rec"; else checkwrite "$p"; fi; done
	i=0; for p in "$@"; do i=$((i+1)); [ "$i" -le "$n" ] || break; rm -rf -- "$(entry "$p")" || exit 14; done
	i=0; for p in "$@"; do i=$((i+1)); [ "$i" -gt "$n" ] || continue; printf '%s\0' "$(realpath -m -- "$(absof "$p")")"; done | base64 -w0
	exit 0;;
read)
	root=$(rootof "$1"); r=$(realpath -m -- "$(absof "$1")") || exit 13
	inside "$r" "$root" || exit 10
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
	# Prints the resolved directory relative to its root ("" for the root), then the entries.
	root=$(rootof "$1"); r=$(realpath -m -- "$(absof "$1")") || exit 13
	inside "$r" "$root" || exit 10
	[ -e "$r" ] || exit 12
	[ -d "$r" ] || exit 13
	printf '%s\n' "${r#"$root"}"
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
