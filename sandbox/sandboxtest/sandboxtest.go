package sandboxtest

import (
	"context"
	"net/netip"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Harness makes providers for the suite.
type Harness interface {
	// MakeProvider returns a fresh provider with its own empty storage; the suite closes it.
	// It calls t.Fatal when the provider cannot be made.
	MakeProvider(ctx context.Context, t *testing.T) sandbox.Provider
}

// Restarter is an optional interface a Harness implements when its providers keep snapshots in
// storage that outlives the provider value, as the engine expects across a restart of the server.
// When the harness implements it, the Restart and ReconnectAfterRestart scenarios run; otherwise
// they are skipped.
type Restarter interface {
	// RestartProvider returns a new provider over the same storage as closed, a provider this
	// harness made and the suite has already closed. The suite closes the new provider.
	RestartProvider(ctx context.Context, t *testing.T, closed sandbox.Provider) sandbox.Provider
}

// EgressHarness is an optional interface a Harness implements when its providers can be pointed
// at test servers on the host, as an operator points a provider at a registry mirror. When the
// harness implements it, the EgressPolicies scenario checks that an allow-listed host is reached;
// otherwise it checks only what must be refused.
type EgressHarness interface {
	// MakeEgressProvider returns a fresh provider, like MakeProvider, under which each host name
	// in upstreams resolves to its address (a server the test runs on the host's 127.0.0.1) and
	// that address may be dialled although the provider refuses loopback destinations by
	// default. Policies still decide which names a sandbox may reach. The suite closes it.
	MakeEgressProvider(ctx context.Context, t *testing.T, upstreams map[string]netip.AddrPort) sandbox.Provider
}

// RunConformanceTests runs every scenario of the suite against providers made by h. Each scenario
// is a subtest with its own provider; most run in parallel with one another.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	s := &suite{h: h}

	// Measures the process heap, so it runs alone, before the parallel scenarios start.
	t.Run("OutputIsStreamedNotBuffered", s.testOutputNotBuffered)

	scenarios := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"CapabilitiesAndWarnings", s.testCapabilities},
		{"DurableRoundTrip", s.testDurableRoundTrip},
		{"FilesSurviveSnapshot", s.testFilesSurviveSnapshot},
		{"DeletesAndRenamesSurviveSnapshot", s.testDeletesAndRenames},
		{"ForkIsolation", s.testForkIsolation},
		{"Restore", s.testRestore},
		{"Changes", s.testChanges},
		{"FileOperations", s.testFileOperations},
		{"PathEscapes", s.testPathEscapes},
		{"Symlinks", s.testSymlinks},
		{"SizeLimits", s.testSizeLimits},
		{"ExecSemantics", s.testExecSemantics},
		{"TimeoutKillsProcessTree", s.testTimeout},
		{"ContextCancellation", s.testContextCancellation},
		{"SnapshotDeletion", s.testSnapshotDeletion},
		{"Lifecycle", s.testLifecycle},
		{"Lifetime", s.testLifetime},
		{"HomeIsDurable", s.testHomeIsDurable},
		{"HomeFiles", s.testHomeFiles},
		{"RemoveFiles", s.testRemoveFiles},
		{"Import", s.testImport},
		{"SnapshotTree", s.testSnapshotTree},
		{"Concurrency", s.testConcurrency},
		{"Restart", s.testRestart},
		// Live (Detached) sandboxes: sessions, background processes, ports.
		{"LiveSandboxes", s.testLiveSandboxes},
		{"LiveLifetime", s.testLiveLifetime},
		{"ReconnectAfterRestart", s.testReconnectAfterRestart},
		{"BackgroundProcesses", s.testBackgroundProcesses},
		{"Signals", s.testSignals},
		{"ProcessesShareTheSandbox", s.testProcessesShareSandbox},
		{"PortRelay", s.testPortRelay},
		// Egress policies: deny-all, an allow-list, SetPolicy.
		{"EgressPolicies", s.testEgressPolicies},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.fn(t)
		})
	}
}

// suite carries the harness to the scenarios.
type suite struct {
	h Harness
}

// provider makes a provider for one scenario and closes it when the scenario ends.
func (s *suite) provider(t *testing.T) sandbox.Provider {
	t.Helper()
	p := s.makeProvider(t)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Provider.Close: %v", err)
		}
	})
	return p
}

// makeProvider makes a provider the caller must close.
func (s *suite) makeProvider(t *testing.T) sandbox.Provider {
	t.Helper()
	p := s.h.MakeProvider(opCtx(t), t)
	if p == nil {
		t.Fatal("Harness.MakeProvider returned nil")
	}
	return p
}
