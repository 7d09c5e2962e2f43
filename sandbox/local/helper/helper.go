//go:build linux

package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Run plays role (RoleHelper or RoleSpare, with the process's arguments), and reports whether
// role is one of them. It returns only when the role failed (the helper ends in an exec of
// bwrap; a spare told to stop exits), with the error.
func Run(role string, args []string) (bool, error) {
	switch role {
	case RoleHelper:
		return true, Main()
	case RoleSpare:
		return true, SpareMain(args)
	}
	return false, nil
}

// The helper bridges the gap between what the sandbox needs and what bwrap 0.8 (Debian 12) can
// do: bwrap before 0.10 has no --overlay, so the provider mounts the overlays itself. It starts
// the helper in a new mount namespace (plus a user namespace when the provider is not root); the
// helper
//
//  1. makes every mount private, so nothing it mounts propagates to the host;
//  2. mounts a small tmpfs "stage" over a world-traversable directory (/run) and, inside it,
//     the workspace and home overlays (always with userxattr, the format bwrap >= 0.10 --overlay
//     would also produce), the sandbox /etc and the agent (the static agent binary, or the
//     provider's executable; see the provider's agentbin.go), each through a read-only overlay of
//     its host directory and every host directory named by descriptor, so that no host path shows
//     in the sandbox's /proc/self/mountinfo (pathFds);
//  3. joins the sandbox's cgroups (root only; a spare of the warm pool joined them before it
//     was handed the sandbox, see SpareMain);
//  4. when the provider is root, drops to the unprivileged sandbox host uid/gid, so bwrap and
//     everything in the sandbox run as that uid and never as host root;
//  5. execs bwrap, which binds the stage into the sandbox by path. The helper's process becomes
//     bwrap's monitor outside the sandbox (the "outer" process); the agent is bwrap's child.
//
// A durable sandbox's helper dies with the provider (parent-death signal, bwrap
// --die-with-parent). A detached one does not: it runs in a session of its own and outlives the
// provider.
//
// The stage is needed because bwrap resolves bind sources by path as the (now unprivileged) user:
// the provider's data directory and executable may sit below directories that user cannot
// traverse (/root, a 0700 temp dir), while /run is traversable by everyone.

// Spec is what the provider tells the helper, as JSON on fd 3 (a pipe; a spare's
// socketpair).
type Spec struct {
	// Protocol is the provider's Protocol; Main refuses another.
	Protocol string `json:"protocol"`
	// LayersDir becomes the working directory; overlay paths are relative to it. The helper
	// opens them and mounts by descriptor (pathFds), so the mount data shows no host path and
	// stays short (it is limited to one page).
	LayersDir string `json:"layers_dir"`
	// Stage is the existing directory the staging tmpfs is mounted on.
	Stage    string    `json:"stage"`
	Overlays []Overlay `json:"overlays"`
	// Etc is the directory bound read-only at the sandbox's /etc (see etc.go), relative to
	// LayersDir.
	Etc string `json:"etc"`
	// Cgroups lists cgroup.procs files the helper joins before dropping privileges.
	Cgroups []string `json:"cgroups,omitempty"`
	// Agent is the host path of the agent binary to bind at /.sb/agent; "" binds the helper's
	// own executable.
	Agent string `json:"agent,omitempty"`
	// Detached: do not tie this process (which becomes bwrap) to the provider's life.
	Detached bool `json:"detached,omitempty"`
	// Drop asks the helper to switch to UID/GID (the provider runs as root).
	Drop      bool `json:"drop"`
	UID       int  `json:"uid"`
	GID       int  `json:"gid"`
	ParentPid int  `json:"parent_pid"`
	// Bwrap is the absolute path of bwrap; Args are its options (passed with --args so host
	// paths do not show in the sandbox's /proc/1/cmdline); Command is what it runs.
	Bwrap   string   `json:"bwrap"`
	Args    []string `json:"args"`
	Seccomp []byte   `json:"seccomp,omitempty"`
	Command []string `json:"command"`
	// LifePipe: Command is the agent, which takes -life-fd=R:W (see Main).
	LifePipe bool `json:"life_pipe,omitempty"`
}

type Overlay struct {
	// Lower lists the lower directories top first, as overlayfs wants them.
	Lower  []string `json:"lower"`
	Upper  string   `json:"upper"`
	Work   string   `json:"work"`
	Target string   `json:"target"` // name under Stage
}

// Fixed descriptors of the helper (and of bwrap after the exec).
const (
	FdSpec     = 3 // helper spec (closed by the helper)
	FdListener = 4 // the agent's listening control socket (agent.DefaultListenFd)
	FdInfo     = 5 // bwrap --info-fd
)

// OverlayData is the mount data for one overlay.
func OverlayData(o Overlay) string {
	return "lowerdir=" + strings.Join(o.Lower, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work + ",userxattr"
}

// Main is the helper role: read the Spec on fd FdSpec, mount, join the cgroups, drop
// privileges, exec bwrap (see above).
func Main() error {
	f := os.NewFile(FdSpec, "spec")
	var spec Spec
	err := json.NewDecoder(f).Decode(&spec)
	f.Close()
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	if spec.Protocol != Protocol {
		return fmt.Errorf("the provider speaks %q, this helper %q (rebuild the embedded agent with `go generate ./sandbox/local`)", spec.Protocol, Protocol)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := os.Chdir(spec.LayersDir); err != nil {
		return err
	}
	// Open bwrap and the agent before the stage may hide them. Our own executable is reopened
	// by path: /proc/self/exe points into the parent's mount namespace, and a bind mount's
	// source must be a mount of this one.
	bw, err := os.Open(spec.Bwrap)
	if err != nil {
		return err
	}
	agentSrc := spec.Agent
	if agentSrc == "" {
		if agentSrc, err = os.Readlink("/proc/self/exe"); err != nil {
			return err
		}
	}
	// Every directory a mount takes from the host is named by descriptor (/proc/self/fd/N), so
	// the sandbox's /proc/self/mountinfo shows no host path.
	exeFd, err := unix.Open(agentSrc, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the agent executable %s: %w", agentSrc, err)
	}
	var fds pathFds
	defer fds.close()
	fds = append(fds, exeFd)
	agentDir, err := fds.open(filepath.Dir(agentSrc))
	if err != nil {
		return fmt.Errorf("open the agent executable's directory: %w", err)
	}
	etcDir, err := fds.open(spec.Etc)
	if err != nil {
		return fmt.Errorf("open the sandbox /etc: %w", err)
	}
	overlays := make([]Overlay, len(spec.Overlays))
	for i, o := range spec.Overlays {
		if overlays[i], err = fds.overlay(o); err != nil {
			return fmt.Errorf("open the layers of %s: %w", o.Target, err)
		}
	}
	if err := unix.Mount("tmpfs", spec.Stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mount staging tmpfs on %s: %w", spec.Stage, err)
	}
	for _, o := range overlays {
		target := filepath.Join(spec.Stage, o.Target)
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		// volatile: the overlay never syncs its upper file system — not on fsync inside, and
		// not when it is unmounted with the sandbox's mount namespace, which without it runs
		// sync_filesystem on the whole host file system and so waits for every dirty page
		// anyone left there (a run after a 512 MiB write took 20× a quiet one). What a commit
		// keeps is made durable by the provider itself, file by file (layers.go); an upper
		// directory is never mounted again. Kernels before 5.10 refuse the option: then without.
		err := unix.Mount("overlay", target, "overlay", unix.MS_NOSUID|unix.MS_NODEV, OverlayData(o)+",volatile")
		if errors.Is(err, unix.EINVAL) {
			err = unix.Mount("overlay", target, "overlay", unix.MS_NOSUID|unix.MS_NODEV, OverlayData(o))
		}
		if err != nil {
			return fmt.Errorf("mount overlay for %s (%d layers): %w", o.Target, len(o.Lower), err)
		}
	}
	// /etc and the agent come from host directories through read-only overlays (an empty
	// directory of the stage below the real one, as overlayfs wants two layers without an upper
	// one): a bind mount's root would show in mountinfo as the host path within its filesystem.
	empty := filepath.Join(spec.Stage, "e")
	if err := os.Mkdir(empty, 0o755); err != nil {
		return err
	}
	emptyDir, err := fds.open(empty)
	if err != nil {
		return err
	}
	etc := filepath.Join(spec.Stage, "etc")
	if err := roOverlay(etcDir, emptyDir, etc); err != nil {
		return fmt.Errorf("mount the sandbox /etc: %w", err)
	}
	agent := filepath.Join(spec.Stage, "agent")
	if err := os.WriteFile(agent, nil, 0o755); err != nil {
		return err
	}
	// The directory of an executable found elsewhere (the re-exec agent) may be on a filesystem
	// overlayfs does not take as a layer: then a plain bind, whose root shows the executable's
	// host path.
	agentView := filepath.Join(spec.Stage, "a")
	if err := roOverlay(agentDir, emptyDir, agentView); err == nil {
		if err := unix.Mount(filepath.Join(agentView, filepath.Base(agentSrc)), agent, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the agent executable: %w", err)
		}
		// The bind keeps the overlay; the rest of the directory leaves the stage.
		if err := unix.Unmount(agentView, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", agentView, err)
		}
	} else if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", exeFd), agent, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the agent executable: %w", err)
	}
	fds.close()
	fdir := filepath.Join(spec.Stage, "f")
	if err := os.Mkdir(fdir, 0o700); err != nil {
		return err
	}
	argsFd, err := stageFd(filepath.Join(fdir, "args"), []byte(strings.Join(spec.Args, "\x00")+"\x00"))
	if err != nil {
		return err
	}
	argv := []string{"bwrap"}
	if len(spec.Seccomp) > 0 {
		scFd, err := stageFd(filepath.Join(fdir, "seccomp"), spec.Seccomp)
		if err != nil {
			return err
		}
		argv = append(argv, "--seccomp", strconv.Itoa(scFd))
	}
	var life [2]int
	if spec.LifePipe {
		// A pipe whose write end only bwrap's monitor (this process, once it is bwrap) keeps:
		// it closes every descriptor but a few, among them --json-status-fd, where it writes
		// the child's pid and, at the end, its exit status. The agent closes its copy and
		// reads that end until EOF, which comes when the monitor is gone: bwrap's
		// --die-with-parent misses a monitor that dies before its child has set it.
		if err := unix.Pipe2(life[:], 0); err != nil {
			return fmt.Errorf("life pipe: %w", err)
		}
		argv = append(argv, "--json-status-fd", strconv.Itoa(life[1]))
	}
	argv = append(argv, "--args", strconv.Itoa(argsFd), "--")
	argv = append(argv, spec.Command...)
	if spec.LifePipe {
		argv = append(argv, fmt.Sprintf("-life-fd=%d:%d", life[0], life[1]))
	}

	for _, procs := range spec.Cgroups {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	if spec.Drop {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
			return fmt.Errorf("setresgid %d: %w", spec.GID, err)
		}
		if err := syscall.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
			return fmt.Errorf("setresuid %d: %w", spec.UID, err)
		}
		// A credential change clears the parent-death signal; set it again so bwrap (which
		// this process becomes) still dies with the provider.
		if !spec.Detached {
			if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
				return err
			}
		}
	}
	if spec.ParentPid != 0 && os.Getppid() != spec.ParentPid {
		return fmt.Errorf("provider exited during start")
	}
	return syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", bw.Fd()), argv, []string{"PATH=/usr/bin:/bin"})
}

// SpareMain is the spare role: join the cgroups named by the arguments (their cgroup.procs
// files), say so with one byte on fd FdSpec (one end of a socketpair), wait there for a
// sandbox's descriptors (by SCM_RIGHTS: the agent's listening socket, bwrap's info pipe, the
// log file), put them on fds FdListener, FdInfo, 1 and 2, then continue as Main, which reads
// the spec from the same socket. EOF instead of descriptors means the pool is closing: exit 0.
func SpareMain(cgroups []string) error {
	for _, procs := range cgroups {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	if _, err := unix.Write(FdSpec, []byte{'r'}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := unix.Recvmsg(FdSpec, b[:], oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("wait for a sandbox: %w", err)
	}
	if n == 0 {
		os.Exit(0) // the provider closed the pool
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("sandbox descriptors: %d messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		return fmt.Errorf("sandbox descriptors: %d, %v", len(fds), err)
	}
	// The received descriptors are at 6 or above (0-5 are taken), so none is a target.
	for _, m := range []struct{ from, to int }{{fds[0], FdListener}, {fds[1], FdInfo}, {fds[2], 1}, {fds[2], 2}} {
		if err := unix.Dup3(m.from, m.to, 0); err != nil {
			return fmt.Errorf("dup %d to %d: %w", m.from, m.to, err)
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	return Main()
}

// pathFds are O_PATH descriptors of host directories, named in mount data as /proc/self/fd/N:
// overlayfs shows its options in mountinfo as they were given, so a path there is a path the
// sandbox reads. The names are also shorter than layer paths, which keeps long chains within
// the one page of mount data.
type pathFds []int

// open opens dir and returns the name of its descriptor.
func (f *pathFds) open(dir string) (string, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	*f = append(*f, fd)
	return "/proc/self/fd/" + strconv.Itoa(fd), nil
}

// overlay returns o with every directory named by descriptor.
func (f *pathFds) overlay(o Overlay) (Overlay, error) {
	out := Overlay{Target: o.Target, Lower: make([]string, len(o.Lower))}
	var err error
	for i, l := range o.Lower {
		if out.Lower[i], err = f.open(l); err != nil {
			return out, err
		}
	}
	if out.Upper, err = f.open(o.Upper); err != nil {
		return out, err
	}
	out.Work, err = f.open(o.Work)
	return out, err
}

// close closes the descriptors (the mounts made with them keep what they need).
func (f *pathFds) close() {
	for _, fd := range *f {
		unix.Close(fd)
	}
	*f = nil
}

// roOverlay mounts a read-only overlay of dir (over the empty directory empty) on target, which
// it creates.
func roOverlay(dir, empty, target string) error {
	if err := os.Mkdir(target, 0o755); err != nil {
		return err
	}
	return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "lowerdir="+dir+":"+empty+",userxattr")
}

// stageFd writes data to a new file and returns a descriptor for it that survives exec.
func stageFd(path string, data []byte) (int, error) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return -1, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}
