package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// SmallFS mounts a tmpfs of size (e.g. "96m": a real file system that fills up) with mode, and
// returns its mount point; it is unmounted when the test ends, after the cleanups registered
// later (so stop what runs on it in a cleanup registered after this call). It needs root: the
// test fails under CI=true without it and is skipped elsewhere.
func SmallFS(t testing.TB, size, mode string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a small tmpfs and needs root (CI runs as root)")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode="+mode, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
