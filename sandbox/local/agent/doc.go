// Package agent is the program that runs inside every sandbox of the local provider
// (sandbox/local): PID 1 of the sandbox's PID namespace, serving the provider's requests — exec,
// files, background processes with buffered logs, signals, port relays, the sandbox's deadline —
// over a Unix socket, and forwarding the sandbox's proxy connections (127.0.0.1:3128) to the
// provider's egress proxy (egress.go).
//
// It is built two ways, which behave the same:
//
//   - as a small static binary, cmd/sandkit-agent (CGO_ENABLED=0, about 3 MB), which the local
//     provider embeds (go generate ./sandbox/local) and bind-mounts read-only at /.sb/agent;
//   - as part of the provider's own executable, re-executed in the sandbox when no agent binary
//     was embedded (see sandbox/local/reexec.go).
//
// # Contract with the provider
//
// The provider starts the agent through bwrap --as-pid-1 with these descriptors and flags:
//
//   - fd 4 (-listen-fd): a listening Unix stream socket the provider created and bound on the
//     host (<data>/sandboxes/<id>/ctl/agent.sock). The agent only accepts on it, so it never
//     calls socket(AF_UNIX), which the sandbox's seccomp filter denies. A restarted provider
//     reaches a running agent by connecting to the same path.
//   - stdout and stderr: a log file on the host; the agent writes a line there when it ends the
//     sandbox or something goes wrong.
//   - -deadline MS: Unix milliseconds at which the agent exits, which ends the sandbox (the
//     kernel kills everything else in a PID namespace whose init exits). The agent enforces it
//     whether or not a provider is running; OpDeadline moves it.
//   - -egress-port P: the agent listens on 127.0.0.1:P (3128) and hands every connection accepted
//     there to the provider's egress proxy as a descriptor (see egress.go).
//   - -boot-timeout D: the agent exits unless the provider's OpInit request (the sandbox's
//     environment) arrives within D, so a provider that crashed while starting a sandbox
//     leaves nothing running for long.
//   - -life-fd R:W: a pipe the helper made before it became bwrap, whose write end W only
//     bwrap's monitor keeps once the agent has closed its copy: the agent exits when R reads
//     EOF. bwrap's --die-with-parent is set by its child some time after the clone, so a monitor
//     killed (with the provider) before that would otherwise leave the agent running.
//
// Each request is one connection (see protocol.go). Background processes and their output live
// in the agent, so they outlive the provider process that started them.
//
// # Processes
//
// As PID 1 the agent reaps every process of the sandbox, its own children and orphans alike: it
// starts commands itself (fork/exec, each in a new session) and a single reaper collects every
// exit status on SIGCHLD, handing each to the command that waits for it. Nothing else in the
// agent may wait for children.
//
// The agent makes itself non-dumpable, so sandboxed processes (same user) cannot ptrace it or
// take its descriptors, and it ignores the termination signals a process inside may send it.
// It is still not a security boundary: the provider treats what it says as untrusted input.
package agent
