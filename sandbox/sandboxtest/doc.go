// Package sandboxtest is the conformance suite every sandbox provider must pass. It runs the same
// scenarios against any sandbox.Provider and checks, one by one, the sentences of the contract
// written in package sandbox: durable state survives a snapshot (including deletions, renames,
// binary content, modes and the home directory), forks are isolated, snapshots restore exactly and
// can be deleted without harming one another, paths cannot leave /workspace (not even through
// symbolic links), Exec reports exit codes, streams output, honours stdin, env, cwd, timeouts and
// cancellation and kills whole process trees, and ended sandboxes say so with ErrEnded. Snapshot
// reports what changed (each op, home paths as ~/…, bounded lists with totals) and makes no
// snapshot of a sandbox that changed nothing; Diff compares snapshots, forks included — or, for a
// provider whose Capabilities say it cannot, Changes.Known is false and Diff is ErrUnsupported.
//
// It also checks live (Detached) sandboxes, the sessions part of the contract: deadlines and
// Extend, Sandboxes and Reconnect (on the same provider and, with a Restarter, after a restart),
// lifetimes running out, background processes (output windows by offset, Process's wait, exit
// codes, output beyond MaxProcessLog, Signal to the whole process group) sharing the sandbox with
// Exec, and DialPort relaying real HTTP and arbitrary bytes, half-close included.
//
// And egress policies (EgressPolicies): under policies.Deny() a sandbox reaches neither an HTTP
// server the test runs on the host's 127.0.0.1 nor an outside address; under an allow-list the
// named host works and any other host, the host's loopback and the outside are refused; SetPolicy
// back to deny-all refuses the allowed host again. A provider without Capabilities.Egress must
// show no network at all, and say so in Warnings. Nothing leaves the machine: the outside address
// is TEST-NET-1 (192.0.2.1, which no network routes) and the host names are .test names, which
// only a harness implementing EgressHarness maps (onto the test's servers); without it the
// allowed host is not fetched at all, and only the refusals are checked.
//
// # Using the suite for a new provider
//
// Write a Harness whose MakeProvider returns a fresh provider over its own empty storage, and
// call RunConformanceTests from a test in the provider's package:
//
//	type harness struct{}
//
//	func (harness) MakeProvider(ctx context.Context, t *testing.T) sandbox.Provider {
//		p, err := myprovider.New(myprovider.Options{Dir: t.TempDir()})
//		if err != nil {
//			t.Fatalf("myprovider.New: %v", err)
//		}
//		return p
//	}
//
//	func TestConformance(t *testing.T) {
//		sandboxtest.RunConformanceTests(t, harness{})
//	}
//
// The suite closes every provider it makes. A harness whose providers keep their snapshots in
// storage that outlives the provider value (a directory, a remote account) should also implement
// Restarter, which enables the scenarios checking that snapshots, and live sandboxes with their
// background processes, survive a restart of the server (Restart, ReconnectAfterRestart). One
// whose providers can be pointed at servers on the host (the local provider's EgressOptions)
// should implement EgressHarness, so that EgressPolicies also checks that an allowed host works.
//
// A provider is done when the suite passes, not when it compiles. Run one scenario with
// `go test -run 'Conformance/ForkIsolation'`.
//
// # What the suite needs from a sandbox
//
// Commands run inside the sandbox use sh and coreutils (cat, ls, head, dd, sleep, printf, seq,
// sha256sum, stat, readlink, truncate, mkfifo, ...), which any Linux sandbox has, and python3:
// PortRelay serves HTTP with `python3 -m http.server` and runs a small TCP echo server, and
// EgressPolicies probes the network with python3's socket and urllib (which honour the proxy
// variables of the sandbox's environment, as programs do), so a provider must offer python3 (and
// a loopback interface) in its sandboxes to pass the suite; the scenarios fail saying so when
// python3 is missing.
//
// Scenarios run in parallel (bounded by -parallel) on separate providers; one scenario measures
// the process heap while a command writes 64 MiB, so it runs before the others start, and the
// provider's test package should not run other heavy tests in parallel with the suite.
//
// Detached sandboxes the suite starts get a Lifetime of 15 minutes unless a scenario asks for
// another, and are stopped when their scenario ends, so a failed run leaves none behind for long.
// Times a provider reports (deadlines, when a process started) may differ from the test's clock
// by up to 5 seconds.
//
// # What the suite assumes where the contract is terse
//
//   - DialPort's context bounds the dialing only, as with net.Dialer.DialContext: the connection
//     stays usable after the context ends (net/http's Transport relies on this).
//   - DialPort's connection has a CloseWrite method (like *net.TCPConn), so a relay can pass a
//     half-close on; the peer's answer after it still arrives.
//   - Signal of an unknown process id fails with ErrNotFound, like Process; and, for an ended
//     sandbox, every method but Stop (Process and Signal too) returns ErrEnded.
//   - A failed Extend (into the past) leaves the deadline and the sandbox as they were.
//   - A command that cannot be started either makes StartProcess fail with ErrNotFound or
//     ErrInvalid, or gives a process that exits 127 with a message in its output.
//   - Sandboxes never lists sandboxes started without Detached.
//
// # Capabilities the scenarios follow
//
// Where providers legitimately differ, Capabilities says how, and the scenarios check what the
// provider declares rather than skipping: with PortURLs, PortRelay serves HTTP at PortURL (ports
// given at Start, DialPort unsupported) instead of relaying raw connections; with FixedDeadline,
// an earlier Extend must fail with ErrUnsupported and change nothing; with TextOutput, stdin is
// checked byte for byte through a checksum instead of being echoed back; with WholeDisk, /tmp may
// survive a snapshot.
package sandboxtest
