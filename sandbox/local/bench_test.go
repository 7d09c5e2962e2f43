//go:build linux

package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Benchmarks print each figure of the provider next to a raw baseline measured in the same run:
// sub-benchmarks named baseline=... and local=... .
//
//	go test ./sandbox/local/ -run '^$' -bench . -benchtime 200x

// BenchmarkExec: one command in a warm sandbox versus a plain fork+exec on the host.
func BenchmarkExec(b *testing.B) {
	b.Run("baseline=host-sh-c-true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("sh", "-c", "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=agent-exec-sh-c-true", func(b *testing.B) {
		p := newTestProvider(b, Options{})
		sb := startSandbox(b, p, sandbox.StartOptions{})
		ctx := context.Background()
		for b.Loop() {
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "true"}})
			if err != nil || res.ExitCode != 0 {
				b.Fatal(res, err)
			}
		}
	})
}

// BenchmarkSandbox: a whole sandbox life. The baseline is the provider's own helper and bwrap
// argv (overlay mounted by the helper, same namespaces, mounts and seccomp filter) running
// /usr/bin/true instead of the agent; the provider adds the agent, its init request, the snapshot.
func BenchmarkSandbox(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	b.Run("baseline=bwrap-overlay-true", func(b *testing.B) {
		for b.Loop() {
			if err := p.RunBare(context.Background(), "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=start-exec-true-stop", func(b *testing.B) {
		for b.Loop() {
			sb := startExecTrue(ctx, b, p)
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=start-exec-true-snapshot", func(b *testing.B) {
		for b.Loop() {
			sb := startExecTrue(ctx, b, p)
			snapshotDiscard(ctx, b, p, sb)
		}
	})
}

// startExecTrue starts a sandbox on p and runs true in it.
func startExecTrue(ctx context.Context, b *testing.B, p *Provider) sandbox.Sandbox {
	b.Helper()
	sb, err := p.Start(ctx, sandbox.StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
		b.Fatal(err)
	}
	return sb
}

// snapshotDiscard snapshots sb, timed, and deletes the snapshot untimed.
func snapshotDiscard(ctx context.Context, b *testing.B, p *Provider, sb sandbox.Sandbox) {
	b.Helper()
	info, err := sb.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = p.DeleteSnapshot(ctx, info.Ref)
	b.StartTimer()
}

// BenchmarkSnapshots: commit (start, write one file, snapshot) and fork (start + stop) on an
// empty workspace versus a 200 MB / 20,000-file one, built once per run. Targets: both big/empty
// ratios at most 2.
func BenchmarkSnapshots(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	big := buildBigSnapshot(b, p)

	commit := func(b *testing.B, base sandbox.SnapshotRef) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: base})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "node_modules/changed.txt", Content: []byte("one change\n")}}); err != nil {
				b.Fatal(err)
			}
			snapshotDiscard(ctx, b, p, sb)
		}
	}
	fork := func(b *testing.B, base sandbox.SnapshotRef) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: base})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("commit/baseline=empty", func(b *testing.B) { commit(b, "") })
	b.Run("commit/local=200MB-20k-files", func(b *testing.B) { commit(b, big) })
	b.Run("fork/baseline=empty", func(b *testing.B) { fork(b, "") })
	b.Run("fork/local=200MB-20k-files", func(b *testing.B) { fork(b, big) })
}

// buildBigSnapshot makes a node_modules-like workspace: 20,000 files of 10 KiB (200 MB) in
// 1,000 package directories, committed as one snapshot.
func buildBigSnapshot(b *testing.B, p *Provider) sandbox.SnapshotRef {
	b.Helper()
	sb := startSandbox(b, p, sandbox.StartOptions{})
	shOK(b, sb, `python3 - <<'EOF'
import os
blob = os.urandom(10240)
for pkg in range(1000):
    d = "/workspace/node_modules/pkg%04d/lib" % pkg
    os.makedirs(d)
    for f in range(20):
        with open("%s/f%02d.js" % (d, f), "wb") as fh:
            fh.write(blob)
EOF`)
	info := snapshot(b, sb)
	if info.ChangedFiles != 20000 || info.ChangedBytes != 20000*10240 {
		b.Fatalf("big snapshot: %+v", info)
	}
	return info.Ref
}

// Live (detached) sandboxes, with the static agent built from this source. Each pair reports the
// local figure's ratio to its baseline as x-baseline. Targets: exec at most 5x a host fork+exec
// (the MCP overhead is measured elsewhere), start + first exec and a snapshot each at most 10x a
// raw bwrap start, idle memory at most 15 MiB.
//
//	go test ./sandbox/local/ -run '^$' -bench Live -benchtime 200x

// pair runs a baseline and then the local figure, and reports the ratio of their ns/op.
func pair(b *testing.B, baseName string, base func(*testing.B), localName string, local func(*testing.B)) {
	var baseNs float64
	b.Run(baseName, func(b *testing.B) {
		base(b)
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run(localName, func(b *testing.B) {
		local(b)
		if baseNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baseNs, "x-baseline")
		}
	})
}

func liveProvider(b *testing.B) *Provider {
	return newTestProvider(b, Options{agent: agentChoice{binary: freshAgent(b)}})
}

// BenchmarkLiveExec: `true` through the agent of a live sandbox versus a plain fork+exec of
// `true` on the host.
func BenchmarkLiveExec(b *testing.B) {
	p := liveProvider(b)
	sb := startSandbox(b, p, sandbox.StartOptions{Detached: true})
	ctx := context.Background()
	pair(b, "baseline=host-fork-exec-true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	}, "local=live-exec-true", func(b *testing.B) {
		for b.Loop() {
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"})
			if err != nil || res.ExitCode != 0 {
				b.Fatal(res, err)
			}
		}
	})
}

// bwrapTrue is the baseline of the live benchmarks: raw bwrap starts of p running /usr/bin/true.
func bwrapTrue(ctx context.Context, p *Provider) func(*testing.B) {
	return func(b *testing.B) {
		for b.Loop() {
			if err := p.RunBare(ctx, "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLiveStart: Start(Detached) until the first Exec has answered, versus the raw bwrap
// start of RunBare (same helper, mounts and profile, running /usr/bin/true). Stopping the
// sandbox is not timed.
func BenchmarkLiveStart(b *testing.B) {
	p := liveProvider(b)
	ctx := context.Background()
	pair(b, "baseline=bwrap-overlay-true", bwrapTrue(ctx, p), "local=start-detached-first-exec", func(b *testing.B) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkLiveSnapshot: Snapshot of a live sandbox that changed one file (kill everything,
// wait for it to be gone, commit the upper directory) versus a raw bwrap start.
func BenchmarkLiveSnapshot(b *testing.B) {
	p := liveProvider(b)
	ctx := context.Background()
	pair(b, "baseline=bwrap-overlay-true", bwrapTrue(ctx, p), "local=snapshot-live", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "changed.txt", Content: []byte("one change\n")}}); err != nil {
				b.Fatal(err)
			}
			if _, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sleep", Args: []string{"1000"}}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			snapshotDiscard(ctx, b, p, sb)
		}
	})
}

// BenchmarkLiveIdleRSS: resident memory of an idle live sandbox — its agent plus bwrap outside
// it — with the static agent and with the re-exec fallback, versus a raw bwrap sandbox idling
// in `sleep` (bwrap outside, bwrap's init, sleep). Reported in MiB per sandbox.
func BenchmarkLiveIdleRSS(b *testing.B) {
	b.Run("baseline=bwrap-sleep", func(b *testing.B) {
		requireBwrap(b)
		var sum float64
		for b.Loop() {
			cmd := exec.Command("bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent",
				"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
				"--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "sleep", "1000")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			var mib float64
			for _, pid := range append([]int{cmd.Process.Pid}, descendantsOf(cmd.Process.Pid)...) {
				mib += vmRSS(b, pid)
			}
			sum += mib
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		b.ReportMetric(sum/float64(b.N), "MiB/sandbox")
	})
	for _, kind := range []string{agentStatic, agentReexec} {
		b.Run("local="+kind+"-agent", func(b *testing.B) {
			opts := Options{agent: agentChoice{reexec: kind == agentReexec}}
			if kind == agentStatic {
				opts.agent.binary = freshAgent(b)
			}
			p := newTestProvider(b, opts)
			ctx := context.Background()
			var sum float64
			for b.Loop() {
				sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
				if err != nil {
					b.Fatal(err)
				}
				shOK(b, sb, "true")
				sum += idleRSS(b, sb).total()
				if err := sb.Stop(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(sum/float64(b.N), "MiB/sandbox")
		})
	}
}

// descendantsOf lists pid's descendants on the host.
func descendantsOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for q := []int{pid}; len(q) > 0; q = q[1:] {
		for _, c := range children[q[0]] {
			out = append(out, c)
			q = append(q, c)
		}
	}
	return out
}

// egressClientSrc is a small HTTP client, built statically at benchmark time, that runs the same
// way in the sandbox (through the proxy) and on the host (the direct baseline) and times its own
// requests, so neither process start nor Exec is measured. One untimed request warms it up.
const egressClientSrc = `package main

import (
	"crypto/tls"
	"crypto/x509"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	u := flag.String("url", "", "URL to get")
	n := flag.Int("n", 1, "requests")
	ca := flag.String("ca", "", "extra CA file")
	proxy := flag.String("proxy", "", "proxy URL")
	connect := flag.String("connect", "", "dial this address instead of the URL's")
	keep := flag.Bool("keepalive", false, "reuse connections")
	flag.Parse()
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if *ca != "" {
		b, err := os.ReadFile(*ca)
		if err != nil {
			panic(err)
		}
		roots.AppendCertsFromPEM(b)
	}
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: roots},
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableKeepAlives:  !*keep,
		DisableCompression: true,
	}
	if *proxy != "" {
		pu, err := url.Parse(*proxy)
		if err != nil {
			panic(err)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	if *connect != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, *connect)
		}
	}
	c := &http.Client{Transport: tr}
	get := func() int64 {
		resp, err := c.Get(*u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(os.Stderr, "%s: %s\n", resp.Status, b)
			os.Exit(1)
		}
		k, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return k
	}
	get()
	var total int64
	t0 := time.Now()
	for i := 0; i < *n; i++ {
		total += get()
	}
	fmt.Printf("%d %d\n", time.Since(t0).Nanoseconds(), total)
}
`

var builtEgressClient atomic.Pointer[string]

// egressClient builds egressClientSrc once per test binary and returns the binary's path.
func egressClient(b *testing.B) string {
	b.Helper()
	if p := builtEgressClient.Load(); p != nil {
		return *p
	}
	dir, err := os.MkdirTemp("", "sandkit-egress-client")
	if err != nil {
		b.Fatal(err)
	}
	for name, content := range map[string]string{"go.mod": "module egressclient\n\ngo 1.22\n", "main.go": egressClientSrc} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(dir, "egressclient")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the benchmark client: %v\n%s", err, msg)
	}
	builtEgressClient.Store(&out)
	b.Cleanup(func() { _ = os.RemoveAll(dir); builtEgressClient.Store(nil) })
	return out
}

// BenchmarkEgress: HTTPS through the egress proxy from inside a sandbox versus the same client
// on the host talking to the same loopback server directly. Both speak HTTP/1.1 over TLS 1.3.
//
//   - get-newconn: one small GET per new connection (proxy: forwarder, CONNECT, TLS handshake);
//   - get-keepalive: small GETs on one kept-alive connection;
//   - download-100MiB: one 100 MiB response per request (reported in MB/s).
//
// For https, "tunnel" is an allowed host (bytes spliced, the client's own TLS end to end) and
// "mitm" a host whose rule injects a header (TLS terminated with the egress CA, forwarded over
// TLS). For plain http there is only "tunnel", a forwarded request: the proxy refuses plain
// HTTP to hosts whose rule injects a header (credentials go out only inside TLS).
// Targets: tunnel get-newconn at most 3x the direct figure; tunnel download at least 50%.
//
//	go test ./sandbox/local/ -run '^$' -bench Egress
func BenchmarkEgress(b *testing.B) {
	f := newEgressFixture(b)
	client := egressClient(b)
	p := f.provider(b, "")
	sb := f.sandbox(b, p, brokerPolicy(), false)
	bin, err := os.ReadFile(client)
	if err != nil {
		b.Fatal(err)
	}
	if err := sb.WriteFiles(context.Background(), []sandbox.File{{Path: "egressclient", Content: bin, Mode: 0o755}}); err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(b.TempDir(), "testca.pem")
	if err := os.WriteFile(caFile, f.caPEM, 0o644); err != nil {
		b.Fatal(err)
	}
	const big = 100 << 20
	// run runs the client n times and returns ns per request and bytes per request.
	run := func(b *testing.B, inSandbox bool, args ...string) (float64, float64) {
		args = append(args, "-n", strconv.Itoa(b.N))
		var out, errb strings.Builder
		if inSandbox {
			res, err := sb.Exec(context.Background(), sandbox.ExecRequest{Command: "/workspace/egressclient", Args: args, Stdout: &out, Stderr: &errb})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("client in the sandbox: %v %+v %s", err, res, errb.String())
			}
		} else {
			cmd := exec.Command(client, args...)
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				b.Fatalf("client on the host: %v %s", err, errb.String())
			}
		}
		var ns, total float64
		if _, err := fmt.Sscan(out.String(), &ns, &total); err != nil {
			b.Fatalf("client output %q: %v", out.String(), err)
		}
		return ns / float64(b.N), total / float64(b.N)
	}
	type variant struct {
		name string
		args []string
		in   bool
	}
	cases := []struct {
		name, scheme, path string
		keep, bytes        bool
	}{
		{"https-get-newconn", "https", "/small", false, false},
		{"https-get-keepalive", "https", "/small", true, false},
		{"https-download-100MiB", "https", "/big?bytes=" + strconv.Itoa(big), true, true},
		{"http-get-newconn", "http", "/small", false, false},
		{"http-download-100MiB", "http", "/big?bytes=" + strconv.Itoa(big), true, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			port := f.tlsPort
			if c.scheme == "http" {
				port = f.httpPort
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			u := func(host string) string { return fmt.Sprintf("%s://%s:%d%s", c.scheme, host, port, c.path) }
			keep := "-keepalive=" + strconv.FormatBool(c.keep)
			tunnel := "local=proxy-tunnel"
			if c.scheme == "http" {
				tunnel = "local=proxy-forward"
			}
			variants := []variant{
				{"baseline=direct-loopback", []string{"-url", u("api.github.test"), "-connect", addr, "-ca", caFile, keep}, false},
				{tunnel, []string{"-url", u("api.github.test"), "-proxy", proxyURL, "-ca", "/workspace/testca.pem", keep}, true},
			}
			if c.scheme == "https" {
				variants = append(variants, variant{"local=proxy-mitm", []string{"-url", u("broker.test"), "-proxy", proxyURL, keep}, true})
			}
			var baseNs float64
			for _, v := range variants {
				b.Run(v.name, func(b *testing.B) {
					ns, per := run(b, v.in, v.args...)
					b.ReportMetric(ns, "ns/op")
					if c.bytes {
						b.ReportMetric(per/ns*1e3, "MB/s")
					}
					// The framework runs each sub-benchmark several times with growing b.N; the
					// baseline's last run is the one it reports.
					if !v.in {
						baseNs = ns
					} else if baseNs > 0 {
						b.ReportMetric(ns/baseNs, "x-baseline")
					}
				})
			}
		})
	}
}
