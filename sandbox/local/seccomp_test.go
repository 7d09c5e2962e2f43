//go:build linux

package local

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestSeccompProgramShape(t *testing.T) {
	t.Parallel()
	if !seccompSupported() {
		t.Fatal("no seccomp filter for this architecture; the provider supports amd64 and arm64")
	}
	prog := seccompProgram()
	if len(prog)%8 != 0 || len(prog)/8 < 10 || len(prog)/8 > 64 {
		t.Fatalf("program of %d bytes", len(prog))
	}
}

// seccompCall is one system call as the filter sees it (struct seccomp_data).
type seccompCall struct {
	arch uint32
	nr   uint32
	arg0 uint64
}

// runFilter interprets prog (the classic BPF subset seccompFilter emits) on call and returns
// the action.
func runFilter(t *testing.T, prog []unix.SockFilter, call seccompCall) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[offNr:], call.nr)
	binary.LittleEndian.PutUint32(data[offArch:], call.arch)
	binary.LittleEndian.PutUint64(data[offArg0:], call.arg0)
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		f := prog[pc]
		jump := func(cond bool) {
			if cond {
				pc += int(f.Jt)
			} else {
				pc += int(f.Jf)
			}
		}
		switch f.Code {
		case bpfLd:
			if f.K+4 > uint32(len(data)) {
				t.Fatalf("instruction %d loads offset %d", pc, f.K)
			}
			acc = binary.LittleEndian.Uint32(data[f.K:])
		case bpfJeq:
			jump(acc == f.K)
		case bpfJge:
			jump(acc >= f.K)
		case bpfRet:
			return f.K
		default:
			t.Fatalf("instruction %d: unexpected opcode %#x", pc, f.Code)
		}
	}
	t.Fatalf("the program runs off its end for %+v", call)
	return 0
}

// TestSeccompFilterDecisions runs the filter of every supported architecture (arm64's too,
// which this machine cannot run) on the system calls it is about.
func TestSeccompFilterDecisions(t *testing.T) {
	t.Parallel()
	type nrs struct{ socket, socketpair, read, connect uint32 }
	numbers := map[string]nrs{
		"amd64": {socket: 41, socketpair: 53, read: 0, connect: 42},
		"arm64": {socket: 198, socketpair: 199, read: 63, connect: 203},
	}
	allowed := map[uint64]bool{unix.AF_INET: true, unix.AF_INET6: true, unix.AF_NETLINK: true}
	for arch, a := range seccompArches {
		t.Run(arch, func(t *testing.T) {
			prog := seccompFilter(arch)
			n, ok := numbers[arch]
			if !ok || a.socket != n.socket {
				t.Fatalf("no system call numbers for %s in this test, or socket is %d", arch, a.socket)
			}
			decide := func(nr uint32, arg0 uint64) uint32 {
				return runFilter(t, prog, seccompCall{arch: a.audit, nr: nr, arg0: arg0})
			}
			families := []uint64{0xffffffff, 0x80000000, 1 << 16}
			for fam := range uint64(64) {
				families = append(families, fam)
			}
			for _, fam := range families {
				want := uint32(retDeny)
				if allowed[fam] {
					want = unix.SECCOMP_RET_ALLOW
				}
				if got := decide(n.socket, fam); got != want {
					t.Errorf("socket(%d): action %#x, want %#x", fam, got, want)
				}
			}
			for _, c := range []struct {
				what string
				nr   uint32
				arg0 uint64
				want uint32
			}{
				{"socketpair(AF_UNIX)", n.socketpair, unix.AF_UNIX, unix.SECCOMP_RET_ALLOW},
				{"read", n.read, 3, unix.SECCOMP_RET_ALLOW},
				{"connect", n.connect, 3, unix.SECCOMP_RET_ALLOW},
			} {
				if got := decide(c.nr, c.arg0); got != c.want {
					t.Errorf("%s: action %#x, want %#x", c.what, got, c.want)
				}
			}
			for _, nr := range a.denyAll {
				if got := decide(nr, 0); got != retDeny {
					t.Errorf("system call %d: action %#x, want EPERM", nr, got)
				}
			}
			// A foreign ABI (i386 socketcall, arm32) is denied whatever the call.
			if got := runFilter(t, prog, seccompCall{arch: unix.AUDIT_ARCH_I386, nr: 102, arg0: 1}); got != retDeny {
				t.Errorf("a foreign ABI's socketcall: action %#x, want EPERM", got)
			}
			if a.x32 {
				if got := decide(x32SyscallBit|n.socket, unix.AF_INET); got != retDeny {
					t.Errorf("an x32 socket(AF_INET): action %#x, want EPERM", got)
				}
			}
		})
	}
}

// pySocketFamilies tries every address family up to 63 with the common socket types and prints
// the families socket() did not refuse with EPERM, with what happened instead ("ok" when
// none), then the outcome for AF_VSOCK and AF_PACKET.
const pySocketFamilies = `import errno, socket
allowed = {socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK}
bad = []
def try_(fam, typ):
    try:
        socket.socket(fam, typ).close()
        return "created"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
for fam in range(64):
    if fam in allowed:
        continue
    for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
        got = try_(fam, typ)
        if got != "EPERM":
            bad.append("%d/%d:%s" % (fam, typ, got))
print(" ".join(bad) or "ok")
print("vsock", try_(socket.AF_VSOCK, socket.SOCK_STREAM), try_(socket.AF_VSOCK, socket.SOCK_DGRAM))
print("packet", try_(socket.AF_PACKET, socket.SOCK_RAW), try_(socket.AF_PACKET, socket.SOCK_DGRAM))
`

// TestSeccompSocketFamilies: inside a sandbox socket() creates only AF_INET, AF_INET6 and
// AF_NETLINK sockets; AF_VSOCK (which reaches the hypervisor's services on a VM), AF_PACKET and
// every other family fail with EPERM.
func TestSeccompSocketFamilies(t *testing.T) {
	t.Parallel()
	requirePython(t)
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	lines := strings.Split(shOK(t, sb, "python3 -c "+shellQuote(pySocketFamilies)), "\n")
	if len(lines) != 3 {
		t.Fatalf("probe output: %q", lines)
	}
	if lines[1] != "vsock EPERM EPERM" {
		t.Errorf("AF_VSOCK in the sandbox: %q, want EPERM for stream and datagram sockets", lines[1])
	}
	if lines[2] != "packet EPERM EPERM" {
		t.Errorf("AF_PACKET in the sandbox: %q, want EPERM", lines[2])
	}
	if lines[0] != "ok" {
		t.Errorf("address families socket() did not refuse with EPERM (family/type:outcome): %s", lines[0])
	}
	// The allowed families still work, and socketpair makes Unix sockets as before.
	shOK(t, sb, `python3 -c 'import socket; socket.socket(socket.AF_INET6).close(); socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close(); socket.socketpair()'`)
}

func requirePython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("these tests need /usr/bin/python3 on the host: apt-get install -y python3")
	}
}

// goNetProbe is a Go program for the sandbox: interfaces (rtnetlink), the pure-Go resolver,
// and a TCP round trip on 127.0.0.1.
const goNetProbe = `package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
)

func main() {
	fail := func(what string, err error) { fmt.Fprintln(os.Stderr, what+":", err); os.Exit(1) }
	ifs, err := net.Interfaces()
	if err != nil {
		fail("interfaces", err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if _, err := net.InterfaceAddrs(); err != nil {
		fail("interface addresses", err)
	}
	hosts, err := net.LookupHost("localhost")
	if err != nil || !slices.Contains(hosts, "127.0.0.1") {
		fail("lookup localhost", fmt.Errorf("%v %v", hosts, err))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen", err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.WriteString(c, "go-echo")
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		fail("dial", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		fail("read", err)
	}
	all, err := net.Listen("tcp", ":0")
	if err != nil {
		fail("listen on every address", err)
	}
	all.Close()
	fmt.Printf("go interfaces=%v localhost=ok tcp=%s\n", names, b)
}
`

// buildGoProbe builds src as a static program in a temporary directory and returns its path.
func buildGoProbe(t *testing.T, src string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("this test builds a Go program and needs the go command on PATH")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"go.mod": "module probe\n\ngo 1.22\n", "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, msg)
	}
	return out
}

// toolsScript serves a directory (with a bare git repository) over HTTP on the sandbox's
// loopback with python3 and reaches it with curl, wget, git and node, by name (getaddrinfo)
// and by address.
const toolsScript = `set -e
cd /tmp
mkdir -p www
echo served-in-the-sandbox > www/index.html
git init -q -b main work
git -C work -c user.name=t -c user.email=t@example.com commit -q --allow-empty -m first
git clone -q --bare work www/repo.git
git -C www/repo.git update-server-info
python3 -m http.server 18080 --bind 127.0.0.1 --directory www >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
i=0
until curl -s --noproxy '*' -o /dev/null http://127.0.0.1:18080/; do
  i=$((i+1)); [ $i -lt 100 ] || { echo "the python3 server did not start"; exit 9; }
  sleep 0.1
done
echo "curl $(curl -sS --noproxy '*' http://localhost:18080/index.html)"
echo "wget $(wget -q --no-proxy -O - http://localhost:18080/index.html)"
echo "git $(git --version | cut -d' ' -f1-2) $(git clone -q http://127.0.0.1:18080/repo.git cloned && git -C cloned log --format=%s)"
python3 -c '
import socket
infos = socket.getaddrinfo("localhost", 18080, 0, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
with socket.create_connection(("localhost", 18080), timeout=10) as s:
    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    body = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        body += b
print("python3", len(infos) > 0, body.split(b"\r\n\r\n", 1)[1].decode().strip())
'
node -e '
const dns = require("dns"), http = require("http"), os = require("os");
dns.lookup("localhost", { all: true }, (err, addrs) => {
  if (err) throw err;
  const lo = Object.keys(os.networkInterfaces()).includes("lo");
  http.get({ host: "localhost", family: 4, port: 18080, path: "/index.html" }, res => {
    let b = ""; res.on("data", d => b += d);
    res.on("end", () => console.log("node " + (addrs.length > 0) + " " + lo + " " + b.trim()));
  }).on("error", e => { console.error(e); process.exit(1); });
});
'
/workspace/goprobe
`

// TestSeccompToolsStillWork: under the address-family allow-list the everyday tools still
// resolve names, list interfaces, listen and connect on the sandbox's loopback.
func TestSeccompToolsStillWork(t *testing.T) {
	t.Parallel()
	requirePython(t)
	// The sandbox sees the host's /usr, so the tools must be there.
	for _, tool := range []string{"curl", "wget", "git", "node"} {
		if _, err := os.Stat("/usr/bin/" + tool); err != nil {
			t.Fatalf("this test needs /usr/bin/%s on the host (apt-get install -y curl wget git nodejs)", tool)
		}
	}
	probe, err := os.ReadFile(buildGoProbe(t, goNetProbe))
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	if err := sb.WriteFiles(context.Background(), []sandbox.File{{Path: "goprobe", Content: probe, Mode: 0o755}}); err != nil {
		t.Fatal(err)
	}
	got := shOK(t, sb, toolsScript)
	want := []string{
		"curl served-in-the-sandbox",
		"wget served-in-the-sandbox",
		"git git version first",
		"python3 True served-in-the-sandbox",
		"node true true served-in-the-sandbox",
		"go interfaces=[lo] localhost=ok tcp=go-echo",
	}
	if got != strings.Join(want, "\n") {
		t.Fatalf("the tools in the sandbox printed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
