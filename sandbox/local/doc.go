// Package local is the Linux sandbox provider of sandkit-mcp: sandboxes are bubblewrap (bwrap)
// containers on this machine, and snapshots are overlayfs layers in a data directory. It needs
// only the bwrap binary (Debian/Ubuntu: apt-get install -y bubblewrap); everything else is this
// package, a helper that mounts the overlays and becomes bwrap (package helper), and the
// in-sandbox agent (package agent); both come in one small static binary embedded here
// (agentbin.go), or else from this executable re-executed (reexec.go).
//
// It builds on every system, but only Linux runs it: everything else is in files built for Linux
// only; elsewhere (local_other.go) Usable, New and Diagnose say so and what to use instead.
//
// # Isolation
//
// Each sandbox has new user, PID, network, IPC, UTS and (where possible) cgroup namespaces. It
// sees a read-only /usr (with the host's /bin, /lib... symlinks), a curated read-only /etc (TLS
// roots, dynamic linker cache, time zone, alternatives, language runtimes' config; passwd,
// group, hosts, hostname and nsswitch.conf are generated), fresh /proc, /dev, /tmp and /dev/shm,
// and its durable state: /workspace and the home directory (/home/sandbox, or Options.HomeDir).
// Nothing else of the host is visible: no host home, no host sockets, no /run, no /var, and no
// host path in /proc/self/mountinfo or /proc/1/cmdline: the helper mounts the overlays, /etc
// and the agent by descriptor (/proc/self/fd/N; /etc and the agent through read-only
// overlays, as a bind mount's root shows its host path) and bwrap reads its options from a
// descriptor (--args). The
// network namespace has only loopback; the only way out is the egress proxy (below), which
// enforces the sandbox's policy (Capabilities.Egress is true).
//
// Commands run as uid/gid 1000 ("sandbox") with every capability dropped, no_new_privs, a
// seccomp filter (socket() only for AF_INET, AF_INET6 and AF_NETLINK, so no AF_UNIX, AF_VSOCK or
// AF_PACKET; io_uring and the kernel keyring are denied; see seccomp.go), no further user
// namespaces (--disable-userns), their own session, RLIMIT_CORE=0 and a bounded RLIMIT_NOFILE.
// Memory and process counts are limited through cgroups when the host offers them (see
// cgroup.go).
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
// over the snapshot's chain of immutable layers with a fresh upper directory per sandbox,
// mounted volatile (the overlay never syncs the host file system; an fsync inside does not reach
// the disk, and what a commit keeps the provider syncs itself, layers.go).
// Snapshot kills every process, compares the upper directory with the chain below it to report
// what changed (changes.go: whiteouts and opaque directories are deletes, added or modified by
// whether the path exists below), and renames the upper directory into a new layer (no copy)
// and records the chain (see layers.go) — or, when nothing changed (a plain `true` leaves the
// upper directory empty), drops it and makes no snapshot. Diff compares two snapshots by
// walking only the layers their chains do not share. Starting from any snapshot is O(1)
// whatever its size.
// Chains longer than Options.MaxLayers are squashed in the background (squasher.go: the oldest
// MaxLayers layers merged into one, every snapshot that shares them rewritten to use it; inline
// only past four times MaxLayers, at most 128), and layers are garbage-collected when the last snapshot or running
// sandbox that uses them is gone.
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
// which). It serves exec, files, background processes with buffered logs, signals, port relays
// and the egress forwarder over a Unix socket the provider creates in the sandbox's control
// directory on the host (sandboxes/<id>/ctl/agent.sock) and passes in as a descriptor, so the
// agent never creates a Unix socket and the seccomp filter covers it like every command. It reaps every process of
// the sandbox and ends the sandbox at its deadline by exiting (see Sandbox.Extend).
//
// # Warm helpers
//
// Starting a durable sandbox's helper costs, on the run's critical path, the start of the helper
// (the static agent binary, or this executable) and, with limits on a cgroup v1 host, its first
// write to a cgroup.procs file (the kernel waits for an RCU grace period the first time in a
// burst). So the provider keeps two spare helpers ready (spare.go): each was started exactly as a
// durable sandbox's helper is (new mount namespace, plus a user namespace when not root; a
// parent-death signal; its own process group), has joined cgroups made for it (named
// "sandkit-<id>" like a sandbox's, with the same limits), and waits on a socketpair holding no
// per-sandbox state. Start of a durable sandbox takes one and sends it the sandbox's descriptors
// (the agent's listening socket, bwrap's info pipe, the log file, by SCM_RIGHTS) and the helper
// spec; the spare puts them on the descriptors a cold helper has and carries on as one (mounts,
// privilege drop, exec bwrap), so isolation and limits are the same either way, and its cgroups
// become the sandbox's (removed when it ends). A replacement starts in the background, 10 ms
// after the sandbox ends (afterRun), or at once when no other spare is ready. A Start
// that finds no ready spare, and every Detached one (those need a session of their own and no
// parent-death signal), starts its helper as before. A spare that died is noticed (it was
// reaped) and discarded; spares die with the provider, and Close kills them and removes their
// cgroups. Each costs an idle process on the host, a few MiB of memory.
//
// # Warm sandboxes
//
// When a sandbox ends in a snapshot (the new one, or the one it started from when it changed
// nothing), a sandbox is started from that snapshot in the background (warm.go) and kept, idle,
// for the next Start from it: the workspace's next run. That Start gets it with its label,
// environment, lifetime and egress policy applied then; each serves one Start. At most
// Options.WarmSandboxes are kept, one unclaimed for two minutes ends, DeleteSnapshot ends its
// snapshot's one, and Detached starts never take one.
//
// # Live sandboxes
//
// A sandbox started without StartOptions.Detached dies with the provider (bwrap
// --die-with-parent, a parent-death signal on the helper), and the next provider removes its
// directory. Every agent also ends once bwrap's monitor is gone (a life pipe: helper.Spec
// LifePipe), which --die-with-parent misses when the monitor dies right after the clone. A Detached one runs in a session of its own without either, so it survives the
// provider's process being killed; it records its layer chain, deadline and processes (pids with
// their start times) in sandboxes/<id>/meta.json. New adopts every live one it finds there
// (Sandboxes lists them, Reconnect returns a working handle; background processes and their
// output live in the agent and are intact) and removes dead ones. Close leaves live sandboxes
// running. The provider follows a sandbox's processes through pidfds, so it can wait for an
// adopted sandbox's processes (not its children) to be gone before its upper directory becomes
// a layer. A live sandbox whose deadline passed while no provider ran has ended itself; the next
// provider cleans up after it.
//
// # Egress
//
// A sandbox has no network interface but lo, and its DNS resolves nothing. Every command's
// environment points HTTP_PROXY, HTTPS_PROXY, http_proxy and https_proxy (curl reads only the
// lower-case http_proxy) at http://127.0.0.1:3128, with NO_PROXY=localhost,127.0.0.1,::1,sandbox
// — also under deny-all, so a refused request is a readable 403 rather than a hang or a DNS
// error. ALL_PROXY is not set: some programs take it for a SOCKS proxy, which this is not.
//
//   - The carrier. The agent listens on 127.0.0.1:3128 inside and hands each accepted TCP
//     connection to the provider as a file descriptor (SCM_RIGHTS) over an "egress" subscription
//     the provider keeps open on the agent's control socket (agent/egress.go, egress.go). The
//     provider then owns the sandbox's socket: nothing is copied inside the sandbox, no Unix
//     socket is created in it (seccomp still denies socket(AF_UNIX) to the agent and everyone
//     else), and the sandbox is identified by the subscription the descriptor came over. A
//     provider that adopts a live sandbox after a restart subscribes again on the same socket
//     path; while no provider is subscribed a connection waits up to 10 s, then gets a 503.
//     (The alternative, relaying each connection through the agent over a second Unix
//     connection per request, costs a dial, an extra request and two copies per byte inside
//     the sandbox; passing the descriptor costs one sendmsg.) Descriptors are checked to be
//     connected TCP sockets: the agent runs as the sandbox user and is not trusted.
//   - The proxy (egressproxy.go) runs in the provider and handles CONNECT and absolute-URI
//     (http:// and https://) requests. It looks the host up in the sandbox's compiled policy
//     (policies.Rules.Match): a host that does not match is refused. It resolves names itself
//     (EgressOptions.Resolve first, then the system resolver) and refuses destinations in
//     loopback, link-local, private (RFC 1918, fc00::/7), CGNAT (100.64.0.0/10), unspecified,
//     multicast and reserved ranges, cloud metadata addresses (169.254.169.254, fd00:ec2::254,
//     100.100.100.200) and the host's own interface addresses, unless the operator allows them
//     (EgressOptions.AllowAddrs, AllowPrefixes); IPv4-mapped and NAT64 addresses are checked as
//     the IPv4 address inside. The check is made on the resolved addresses, and the proxy dials
//     the address it checked (no DNS rebinding). A refusal is an HTTP 403 whose body (and, for
//     clients that show only the status line of a failed CONNECT, reason phrase) names the host,
//     the reason, the policy, the workspace (StartOptions.Label) and how to allow it, and a log
//     line (workspace, policy, host, decision).
//   - Hosts whose rule has no headers are tunnelled untouched: the sandbox's TLS goes end to end
//     and the two sockets are spliced by the kernel. Hosts whose rule injects headers (credential
//     brokering) are intercepted: the proxy answers the CONNECT, terminates TLS with a
//     certificate for the host signed by the per-installation egress CA (egressca.go: ECDSA
//     P-256, <Dir>/egress-ca/, key 0600; leaves cached in memory), offers only HTTP/1.1, sets
//     the rule's headers on every request (replacing the sandbox's own) and forwards it over TLS
//     verified against EgressOptions.UpstreamRoots (default: the system roots), with keep-alive
//     on both sides. The headers carry credentials, so they are only ever sent inside TLS: a
//     plain http:// request to such a host is refused with a 403 that says to use https://, and
//     a CONNECT to one whose stream does not start with a TLS ClientHello is closed (the reason
//     is logged). Hosts without header rules may be reached over plain HTTP. Secrets exist only
//     in the provider's memory (the compiled rules).
//   - Trust: the curated /etc holds the CA (/etc/ssl/sandkit/ca.pem) and a bundle of the host's
//     system roots plus the CA (/etc/ssl/sandkit/ca-bundle.pem, also the sandbox's
//     /etc/ssl/certs/ca-certificates.crt); SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
//     GIT_SSL_CAINFO point at the bundle, NODE_EXTRA_CA_CERTS at the CA alone.
//   - Policies: StartOptions.Policy is compiled at Start with EgressOptions.Getenv (default
//     os.LookupEnv); one that cannot be (a missing credential) fails Start with an error
//     wrapping sandbox.ErrInvalid and the policies error. SetPolicy compiles and swaps the
//     policy of a running sandbox: new connections, and new requests on kept-alive plain-HTTP
//     proxy connections, follow it; open tunnels and intercepted connections keep the rule they
//     were opened with. A detached sandbox records its policy in meta.json with literal secrets
//     redacted; a provider that adopts it compiles it again from its environment. Services whose
//     credential was a literal (per-session overrides) cannot be restored: their hosts are
//     denied and Warnings says so until the policy is set again.
//
// Port 3128 inside a sandbox belongs to the forwarder.
//
// An idle live sandbox costs two processes on the host: bwrap's monitor outside and the agent
// inside (about 6 MiB of resident memory together with the static agent).
//
// The package is Linux-only.
package local
