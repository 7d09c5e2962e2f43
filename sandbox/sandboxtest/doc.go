// Package sandboxtest is the conformance suite every sandbox provider must pass. It runs the same
// scenarios against any sandbox.Provider and checks, one by one, the sentences of the contract
// written in package sandbox: durable state survives a snapshot (including deletions, renames,
// binary content, modes and the home directory), forks are isolated, snapshots restore exactly and
// can be deleted without harming one another, paths cannot leave /workspace (not even through
// symbolic links), Exec reports exit codes, streams output, honours stdin, env, cwd, timeouts and
// cancellation and kills whole process trees, and ended sandboxes say so with ErrEnded.
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
// Restarter, which enables the scenario checking that snapshots survive a restart of the server.
//
// A provider is done when the suite passes, not when it compiles. Run one scenario with
// `go test -run 'Conformance/ForkIsolation'`.
//
// # What the suite needs from a sandbox
//
// Commands run inside the sandbox use only sh and coreutils (cat, ls, head, dd, sleep, printf,
// sha256sum, stat, readlink, truncate, mkfifo, ...), which any Linux sandbox has. Scenarios run in
// parallel (bounded by -parallel) on separate providers; one scenario measures the process heap
// while a command writes 64 MiB, so it runs before the others start, and the provider's test
// package should not run other heavy tests in parallel with the suite.
package sandboxtest
