//go:build linux

package local

import (
	"fmt"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Inside every sandbox.
const (
	sandboxUID  = 1000
	sandboxGID  = 1000
	sandboxUser = "sandbox"
	agentPath   = "/.sb/agent"
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// bwrapInfo is what the provider learnt about one bwrap binary.
type bwrapInfo struct {
	Path          string
	Version       string // "0.8.0"
	DisableUserns bool   // --disable-userns is supported
}

var bwrapCache sync.Map // path -> *bwrapInfo

var versionRe = regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`)

// findBwrap resolves the bwrap binary (explicit path or PATH) and probes its version and options
// once per path.
func findBwrap(path string) (*bwrapInfo, error) {
	if path == "" {
		path = "bwrap"
	}
	abs, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: bubblewrap (bwrap) not found (%v); install it with: apt-get install -y bubblewrap", sandbox.ErrUnavailable, err)
	}
	if abs, err = filepath.Abs(abs); err != nil {
		return nil, err
	}
	if v, ok := bwrapCache.Load(abs); ok {
		return v.(*bwrapInfo), nil
	}
	out, err := exec.Command(abs, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version failed: %v: %s; reinstall it with: apt-get install -y bubblewrap", sandbox.ErrUnavailable, abs, err, strings.TrimSpace(string(out)))
	}
	info := &bwrapInfo{Path: abs}
	if m := versionRe.FindString(string(out)); m != "" {
		info.Version = m
	}
	help, _ := exec.Command(abs, "--help").CombinedOutput()
	info.DisableUserns = strings.Contains(string(help), "--disable-userns")
	bwrapCache.Store(abs, info)
	return info, nil
}

// rootLinks mirrors the host's top-level /bin, /lib... : merged-/usr symlinks become the same
// symlinks, real directories are bound read-only.
func rootLinks() []string {
	var args []string
	for _, name := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + name
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err == nil {
				args = append(args, "--symlink", target, p)
			}
			continue
		}
		if fi.IsDir() {
			args = append(args, "--ro-bind", p, p)
		}
	}
	return args
}

// stageDir picks the directory the helper mounts its staging tmpfs on: it must exist, be a real
// directory and be traversable by anyone.
func stageDir() (string, error) {
	for _, d := range []string{"/run", "/mnt", "/media", "/srv", "/opt"} {
		fi, err := os.Lstat(d)
		if err == nil && fi.IsDir() && fi.Mode().Perm()&0o001 != 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no world-traversable /run or /mnt directory to stage sandbox mounts on", sandbox.ErrUnavailable)
}

// sandboxProfile is the bwrap option list (everything but --seccomp and the command).
type sandboxProfile struct {
	bw      *bwrapInfo
	stage   string
	links   []string
	tmpSize int64
	home    string // the sandbox user's home directory
}

// launch says how one sandbox is started.
type launch struct {
	// detached sandboxes outlive the provider: no --die-with-parent.
	detached bool
	// reexec: the agent is the provider's own executable, which needs its role in the
	// environment (reexec.go).
	reexec bool
}

// args are the bwrap options for one sandbox. The command runs as PID 1 of the sandbox's PID
// namespace (--as-pid-1: no bwrap init in between), so it must reap orphans; the agent does.
func (pr *sandboxProfile) args(l launch) []string {
	a := []string{
		"--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
		"--unshare-cgroup-try",
		"--uid", strconv.Itoa(sandboxUID), "--gid", strconv.Itoa(sandboxGID),
		"--hostname", "sandbox",
		"--as-pid-1", "--new-session", "--cap-drop", "ALL",
	}
	if !l.detached {
		a = append(a, "--die-with-parent")
	}
	if pr.bw.DisableUserns {
		a = append(a, "--disable-userns")
	}
	a = append(a, "--dir", "/home", "--ro-bind", "/usr", "/usr")
	a = append(a, pr.links...)
	a = append(a, "--ro-bind", filepath.Join(pr.stage, "etc"), "/etc")
	a = append(a,
		"--proc", "/proc",
		"--dev", "/dev",
		"--perms", "1777", "--size", strconv.FormatInt(pr.tmpSize, 10), "--tmpfs", "/tmp",
		"--perms", "1777", "--size", strconv.FormatInt(pr.tmpSize, 10), "--tmpfs", "/dev/shm",
		"--bind", filepath.Join(pr.stage, "ws"), sandbox.WorkspaceDir,
		"--bind", filepath.Join(pr.stage, "home"), pr.home,
		"--ro-bind", filepath.Join(pr.stage, "agent"), agentPath,
		// The root tmpfs (with /etc, /home, /.sb) read-only; /tmp, /dev/shm, /workspace and
		// the home directory are mounts of their own and stay writable.
		"--remount-ro", "/",
		"--chdir", sandbox.WorkspaceDir,
		"--clearenv",
		"--setenv", "PATH", defaultPath,
		"--setenv", "HOME", pr.home,
		"--setenv", "USER", sandboxUser,
		"--setenv", "LANG", "C.UTF-8",
		"--setenv", "TERM", "dumb",
	)
	if l.reexec {
		a = append(a, "--setenv", helper.Env, roleAgent)
	}
	a = append(a, "--info-fd", strconv.Itoa(helper.FdInfo))
	return a
}

// baseEnv is the environment of every command before StartOptions.Env and ExecRequest.Env.
func baseEnv(home string) map[string]string {
	env := map[string]string{
		"PATH":    defaultPath,
		"HOME":    home,
		"USER":    sandboxUser,
		"LOGNAME": sandboxUser,
		"SHELL":   "/bin/sh",
		"LANG":    "C.UTF-8",
		"TERM":    "dumb",
		"TMPDIR":  "/tmp",
	}
	for k, v := range proxyEnv() {
		env[k] = v
	}
	return env
}
