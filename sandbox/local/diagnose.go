//go:build linux

package local

import (
	"bytes"
	"context"
	"fmt"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// Diagnose checks whether this host can run local sandboxes, with bwrapPath ("" = look up
// "bwrap" in PATH): bwrap present and its version, unprivileged user namespaces, overlayfs
// mountable the way the provider mounts it, which in-sandbox agent this build runs (the embedded
// static binary or the re-exec fallback), complete starts of a durable and of a live sandbox,
// cgroup limits and the seccomp filter. It starts throwaway sandboxes in a temporary directory
// and cleans up after itself.
func Diagnose(bwrapPath string) []Check {
	var out []Check
	bw, err := findBwrap(bwrapPath)
	if err != nil {
		out = append(out, Check{Name: "bwrap", Detail: err.Error(), Fix: "apt-get install -y bubblewrap"})
	} else {
		detail := fmt.Sprintf("%s, version %s", bw.Path, bw.Version)
		if !bw.DisableUserns {
			detail += " (no --disable-userns: nested user namespaces stay possible inside sandboxes)"
		}
		out = append(out, Check{Name: "bwrap", OK: true, Detail: detail})
		out = append(out, checkUserns(bw))
	}
	out = append(out, checkOverlay(), checkAgent())
	if err == nil {
		out = append(out, checkSandbox(bw.Path))
	}
	ok, why := cgroupSupport("")
	c := Check{Name: "cgroups (memory/pids limits)", OK: ok, Detail: why}
	if !ok {
		c.Fix = "optional: run as root on a cgroup v1 host, or give the provider a delegated cgroup v2 subtree (Options.CgroupParent); without it only per-command timeouts and rlimits apply"
	}
	out = append(out, c)
	if seccompSupported() {
		out = append(out, Check{Name: "seccomp filter", OK: true, Detail: "allows socket() for AF_INET, AF_INET6 and AF_NETLINK only; denies io_uring and keyrings on " + runtime.GOARCH})
	} else {
		out = append(out, Check{Name: "seccomp filter", Detail: "no filter for " + runtime.GOARCH + ": sandboxed code can create Unix and vsock sockets", Fix: "run on x86-64 or arm64"})
	}
	return out
}

func sandboxIDs() (uid, gid int, drop bool) {
	if os.Geteuid() == 0 {
		return DefaultHostUID, DefaultHostGID, true
	}
	return os.Geteuid(), os.Getegid(), false
}

// checkUserns runs bwrap with a new user namespace as the uid sandboxes use.
func checkUserns(bw *bwrapInfo) Check {
	c := Check{Name: "user namespaces"}
	uid, gid, drop := sandboxIDs()
	// Like the helper, exec bwrap through a descriptor opened before dropping to the sandbox
	// uid, not by path: that uid may not be able to traverse the directories above bwrap (e.g. a
	// bwrap built into /root/.cache by scripts/build-bwrap-new.sh), which the provider handles
	// fine and which must not be reported as missing user namespaces.
	f, err := os.Open(bw.Path)
	if err != nil {
		c.Detail = fmt.Sprintf("open %s: %v", bw.Path, err)
		c.Fix = "check that bwrap is readable"
		return c
	}
	defer f.Close()
	cmd := exec.Command("/proc/self/fd/3", "--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--", "/bin/true")
	cmd.Args[0] = "bwrap"
	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
	if drop {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.Detail = fmt.Sprintf("bwrap --unshare-user as uid %d failed: %v: %s", uid, err, strings.TrimSpace(string(out)))
		c.Fix = "allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 (Debian), sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04), and user.max_user_namespaces > 0"
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("bwrap can create user, pid and network namespaces as uid %d", uid)
	return c
}

// checkOverlay mounts a tiny overlay the way the helper does and checks that a deletion leaves
// a whiteout in the upper directory.
func checkOverlay() Check {
	c := Check{Name: "overlayfs", Fix: "the kernel needs overlayfs (CONFIG_OVERLAY_FS, Linux >= 5.11 for unprivileged use): modprobe overlay"}
	dir, err := os.MkdirTemp("", "sandkit-overlay-probe-")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer removeTree(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			c.Detail = err.Error()
			return c
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower", "old"), []byte("x"), 0o644); err != nil {
		c.Detail = err.Error()
		return c
	}
	uid, gid, drop := sandboxIDs()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"sandkit-local-probe"}
	cmd.Env = []string{helper.Env + "=" + roleProbe, "SANDKIT_PROBE_DIR=" + dir}
	cmd.SysProcAttr = helperSysProcAttr(drop, uid, gid, false)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.Detail = fmt.Sprintf("mounting overlay (userxattr) failed: %v: %s", err, strings.TrimSpace(string(out)))
		return c
	}
	fi, err := os.Lstat(filepath.Join(dir, "upper", "old"))
	if err != nil || !isWhiteout(fi) {
		c.Detail = fmt.Sprintf("overlay mounted, but a deletion did not leave a whiteout in the upper directory (%v, %v)", fi, err)
		return c
	}
	c.OK, c.Fix = true, ""
	c.Detail = "overlay with userxattr mounts; deletions are recorded as whiteouts"
	return c
}

// probeMain is the probe role: mount the overlay in SANDKIT_PROBE_DIR, create and delete a
// file through it.
func probeMain() error {
	dir := os.Getenv("SANDKIT_PROBE_DIR")
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	merged := filepath.Join(dir, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, helper.OverlayData(helper.Overlay{Lower: []string{"lower"}, Upper: "upper", Work: "work"})); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	if err := os.WriteFile(filepath.Join(merged, "new"), []byte("y"), 0o644); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(merged, "old")); err != nil {
		return err
	}
	return unix.Unmount(merged, 0)
}

// checkAgent says which agent sandboxes run. Both work; the fallback costs more memory per live
// sandbox, so the detail says how to get the static one.
func checkAgent() Check { return agentCheck(embeddedOnce()) }

func agentCheck(bin []byte, why string) Check {
	c := Check{Name: "sandbox agent", OK: true}
	if bin != nil {
		c.Detail = fmt.Sprintf("static agent embedded (%.1f MB, %s): PID 1 of every sandbox, a few MiB of memory per live sandbox", float64(len(bin))/1e6, agent.Protocol)
		return c
	}
	c.Detail = "falling back to this executable as the in-sandbox agent, which works but uses more memory per live sandbox: " + why
	return c
}

// checkSandbox starts a real sandbox in a temporary directory and runs one command in it.
func checkSandbox(bwrap string) Check {
	c := Check{Name: "sandbox start", Fix: "see the checks above; run the failing bwrap command by hand for details"}
	dir, err := os.MkdirTemp("", "sandkit-doctor-")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer removeTree(dir)
	p, err := New(Options{Dir: dir, Bwrap: bwrap})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	sb, err := p.Start(ctx, sandbox.StartOptions{Label: "doctor"})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	boot := time.Since(t0)
	defer sb.Stop(ctx)
	var stdout bytes.Buffer
	res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "id", Args: []string{"-u"}, Stdout: &stdout})
	if err != nil {
		c.Detail = "exec failed: " + err.Error()
		return c
	}
	if res.ExitCode != 0 || strings.TrimSpace(stdout.String()) != "1000" {
		c.Detail = fmt.Sprintf("`id -u` in the sandbox exited %d with %q, want 0 and 1000", res.ExitCode, stdout.String())
		return c
	}
	t0 = time.Now()
	live, err := p.Start(ctx, sandbox.StartOptions{Label: "doctor", Detached: true, Lifetime: time.Minute})
	if err != nil {
		c.Detail = "a live (detached) sandbox did not start: " + err.Error()
		return c
	}
	liveBoot := time.Since(t0)
	defer live.Stop(ctx)
	if res, err := live.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil || res.ExitCode != 0 {
		c.Detail = fmt.Sprintf("exec in a live sandbox: exit %d, %v", res.ExitCode, err)
		return c
	}
	c.OK, c.Fix = true, ""
	c.Detail = fmt.Sprintf("started in %s (live: %s); commands run as uid 1000 with no network but the egress proxy", boot.Round(time.Millisecond), liveBoot.Round(time.Millisecond))
	return c
}
