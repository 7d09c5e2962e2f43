package main_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/benchutil"
)

// initializeLine is the MCP initialize request a client sends first.
const initializeLine = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"

// helloServer is the baseline: a Go program that answers one line with one line, as fast as a
// Go binary can start and do that.
const helloServer = `package main

import (
	"bufio"
	"os"
)

func main() {
	r := bufio.NewReader(os.Stdin)
	if _, err := r.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n")
	_, _ = r.ReadString('\n')
}
`

// BenchmarkDoorStart measures a warm stdio door's start, interleaved in one loop so machine noise
// hits all three alike, each from spawn until the initialize answer's line arrives on stdout
// (the request is written to stdin at once; then stdin is closed and the process waited for,
// outside the measure):
//
//   - hello: a hello-world Go binary built here, answering one line (the baseline);
//   - full: the full binary's own door (sandkit-mcpd with no subcommand), as every door was;
//   - thin: the front's door (sandkit-mcp with no subcommand), what agents launch.
//
// Both doors reach the same warm daemon. It reports each as ms/op and the ratios thin/hello
// (target ≤ 3) and full/hello.
//
//	go test ./cmd/sandkit-mcp/ -run '^$' -bench DoorStart -benchtime 50x
func BenchmarkDoorStart(b *testing.B) {
	src := filepath.Join(b.TempDir(), "hello")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for name, body := range map[string]string{"main.go": helloServer, "go.mod": "module hello\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	hello := filepath.Join(b.TempDir(), "hello")
	build := exec.Command("go", "build", "-o", hello, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build hello: %v\n%s", err, out)
	}
	dir := dataDir(b)
	// Warm: the daemon runs, and each binary has been read once.
	for _, bin := range []string{hello, full, front} {
		startAndAnswer(b, bin, dir)
	}
	var h, f, th time.Duration
	for b.Loop() {
		h += startAndAnswer(b, hello, dir)
		f += startAndAnswer(b, full, dir)
		th += startAndAnswer(b, front, dir)
	}
	benchutil.Report(b, benchutil.Ms{"hello-ms/op": h, "full-ms/op": f, "thin-ms/op": th},
		benchutil.Ratios{"thin/hello": {th, h}, "full/hello": {f, h}})
}

// startAndAnswer starts bin as a stdio door of dir (the hello binary ignores the flags), writes
// the initialize request and returns the time from the start until a line came back; then it
// closes stdin and waits for the process.
func startAndAnswer(b *testing.B, bin, dir string) time.Duration {
	cmd := exec.Command(bin, "--data-dir", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	t := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if _, err := io.WriteString(stdin, initializeLine); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	d := time.Since(t)
	if err != nil || !strings.Contains(line, `"id":1`) || !strings.Contains(line, `"result"`) {
		b.Fatalf("%s: %q, %v", bin, line, err)
	}
	stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: %v", bin, err)
	}
	return d
}
