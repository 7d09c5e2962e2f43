//go:build linux

package local

import "testing"

func TestSeccompProgramShape(t *testing.T) {
	if !seccompSupported() {
		t.Fatal("no seccomp filter for this architecture; the provider supports amd64 and arm64")
	}
	prog := seccompProgram()
	if len(prog)%8 != 0 || len(prog)/8 < 10 || len(prog)/8 > 64 {
		t.Fatalf("program of %d bytes", len(prog))
	}
}
