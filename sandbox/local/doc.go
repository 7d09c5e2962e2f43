// Package local is the Linux sandbox provider of sandkit-mcp: sandboxes are bubblewrap (bwrap)
// containers on this machine, and snapshots are overlayfs layers in a data directory. It needs
// only the bwrap binary (Debian/Ubuntu: apt-get install -y bubblewrap); everything else is this
// package, which re-executes its own binary to mount the overlays (helper.go), and the
// in-sandbox agent (package agent), embedded as a small static binary (agentbin.go).
//
// # Isolation
//
// Each sandbox has new user, PID, network, IPC, UTS and (where possible) cgroup namespaces. It
// sees a read-only /usr (with the host's /bin, /lib... symlinks), a curated read-only /etc (TLS
// roots, dynamic linker cache, time zone, alternatives, language runtimes' config; passwd,
// group, hosts, hostname and nsswitch.conf are generated), fresh /proc, /dev, /tmp and /dev/shm,
// and its durable state: /workspace and the home directory /home/sandbox. Nothing else of the
// host is visible: no host home, no host sockets, no /run, no /var. The network namespace has
// only loopback; egress policies are not enforced yet, so a sandbox never has network access
// (Capabilities.Egress is false and Warnings says so when another policy was asked for).
//
// Commands run as uid/gid 1000 ("sandbox") with every capability dropped, no_new_privs, a
// seccomp filter (socket(AF_UNIX), io_uring and the kernel keyring are denied; see seccomp.go),
// no further user namespaces (--disable-userns), their own session, RLIMIT_CORE=0 and a bounded
// RLIMIT_NOFILE. Memory and process counts are limited through cgroups when the host offers them
// (see cgroup.go).
//
// On the host, the sandbox never runs as root. When the provider runs as root, sandboxes run as
// a dedicated unprivileged uid/gid (Options.HostUID, default 1000000000): the sandbox user 1000
// maps to it, files the sandbox writes are owned by it on disk, and an escape from the
// namespaces lands as a user who owns nothing on the host but sandbox layers. When the provider
// is not root, sandboxes run as the provider's own uid, through an extra user namespace.
//
// This is process isolation on a shared kernel (like Flatpak or srt), not a VM boundary.
//
// # Snapshots
//
// The durable state is two overlay mounts, one for /workspace and one for the home directory,
// over the snapshot's chain of immutable layers with a fresh upper directory per sandbox.
// Snapshot kills every process, renames the upper directory into a new layer (no copy) and
// records the chain (see layers.go). Starting from any snapshot is O(1) whatever its size.
// Chains longer than Options.MaxLayers are squashed into one layer (squash.go), and layers are
// garbage-collected when the last snapshot or running sandbox that uses them is gone.
//
// Known overlayfs limitation: renaming a directory that comes from an older snapshot fails
// with EXDEV ("Invalid cross-device link") for programs that call rename(2) directly; tools
// like mv fall back to copy-and-delete. (redirect_dir cannot be combined with userxattr.)
//
// # Processes
//
// The agent (package agent) is PID 1 of every sandbox: bwrap runs it with --as-pid-1 from a
// read-only bind at /.sb/agent. It is the static binary cmd/sandkit-agent when one was
// embedded at build time (go generate ./sandbox/local; written once into the data directory as
// agent-<sha256 prefix>), else this executable re-executed in the agent role (Diagnose says
// which). It serves exec, files, background processes with buffered logs, signals and port
// relays over a Unix socket the provider creates in the sandbox's control directory on the host
// (sandboxes/<id>/ctl/agent.sock) and passes in as a descriptor, so the agent never creates a
// Unix socket and the seccomp filter covers it like every command. It reaps every process of
// the sandbox and ends the sandbox at its deadline by exiting (see Sandbox.Extend).
//
// # Live sandboxes
//
// A sandbox started without StartOptions.Detached dies with the provider (bwrap
// --die-with-parent, a parent-death signal on the helper), and the next provider removes its
// directory. A Detached one runs in a session of its own without either, so it survives the
// provider's process being killed; it records its layer chain, deadline and processes (pids with
// their start times) in sandboxes/<id>/meta.json. New adopts every live one it finds there
// (Sandboxes lists them, Reconnect returns a working handle; background processes and their
// output live in the agent and are intact) and removes dead ones. Close leaves live sandboxes
// running. The provider follows a sandbox's processes through pidfds, so it can wait for an
// adopted sandbox's processes (not its children) to be gone before its upper directory becomes
// a layer. A live sandbox whose deadline passed while no provider ran has ended itself; the next
// provider cleans up after it.
//
// An idle live sandbox costs two processes on the host: bwrap's monitor outside and the agent
// inside (about 6 MiB of resident memory together with the static agent).
//
// The package is Linux-only.
package local
