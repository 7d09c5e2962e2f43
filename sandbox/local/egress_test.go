//go:build linux

package local

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/testutil"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The egress tests run real sandboxes against test servers on the host's 127.0.0.1 with TLS
// certificates made here. Test host names resolve to 127.0.0.1 through EgressOptions.Resolve,
// and exactly the servers' ports are allowed (AllowAddrs): nothing leaves the machine.

// testTLSNames are the names the TLS test server has a certificate for (all map to 127.0.0.1).
var testTLSNames = []string{"api.github.test", "broker.test", "plain.test", "evil.test", "github.com", "api.github.com"}

const testTokenEnv = "SANDKIT_CRED_TEST_TOKEN"

// egressFixture holds the test servers and what they saw.
type egressFixture struct {
	caPEM    []byte
	roots    *x509.CertPool
	tlsPort  int // TLS server (HTTP/1.1 and h2), cert signed by the test CA
	httpPort int // plain HTTP server
	badPort  int // TLS server whose certificate no one trusts
	offPort  int // a plain server on 127.0.0.1 NOT in AllowAddrs
	secret   string
	gitRepo  string // served at https://github.com:tlsPort/repo.git when git is installed

	mu   sync.Mutex
	seen []seenRequest

	logs *testutil.SyncBuffer
}

type seenRequest struct {
	Server, Host, Path, Auth, Proto, Remote string
}

func newTestCA(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newTestLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func listenLocal(t testing.TB) (net.Listener, int) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().(*net.TCPAddr).Port
}

func newEgressFixture(t testing.TB) *egressFixture {
	t.Helper()
	f := &egressFixture{secret: "sk-sandkit-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-s3cr3t", logs: &testutil.SyncBuffer{}}
	ca, caKey, caPEM := newTestCA(t, "sandkit test CA")
	f.caPEM = caPEM
	f.roots = x509.NewCertPool()
	f.roots.AddCert(ca)

	serve := func(name string, l net.Listener, cfg *tls.Config) {
		mux := http.NewServeMux()
		if name == "tls" && f.gitRepo != "" {
			mux.Handle("/repo.git/", f.gitHandler())
		}
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { f.handle(name, w, r) })
		srv := &http.Server{Handler: mux, TLSConfig: cfg, ErrorLog: quietLog()}
		if cfg != nil {
			l = tls.NewListener(l, cfg)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	if _, err := os.Stat("/usr/lib/git-core/git-http-backend"); err == nil {
		f.gitRepo = makeBareRepo(t)
	}
	tl, tport := listenLocal(t)
	f.tlsPort = tport
	serve("tls", tl, &tls.Config{Certificates: []tls.Certificate{newTestLeaf(t, ca, caKey, testTLSNames)}, NextProtos: []string{"h2", "http/1.1"}})
	hl, hport := listenLocal(t)
	f.httpPort = hport
	serve("http", hl, nil)
	other, otherKey, _ := newTestCA(t, "nobody trusts this CA")
	bl, bport := listenLocal(t)
	f.badPort = bport
	serve("bad", bl, &tls.Config{Certificates: []tls.Certificate{newTestLeaf(t, other, otherKey, []string{"badcert.test"})}})
	ol, oport := listenLocal(t)
	f.offPort = oport
	serve("off", ol, nil)
	return f
}

// handle answers every test request with what it saw, never echoing a credential.
func (f *egressFixture) handle(server string, w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{Server: server, Host: r.Host, Path: r.URL.Path, Auth: auth, Proto: r.Proto, Remote: r.RemoteAddr})
	f.mu.Unlock()
	if n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64); err == nil && r.URL.Path == "/big" {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 256<<10)
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
		return
	}
	verdict := "none"
	switch auth {
	case "":
	case "Bearer " + f.secret:
		verdict = "ok"
	default:
		verdict = "other"
	}
	fmt.Fprintf(w, "hello from %s host=%s path=%s proto=%s auth=%s\n", server, r.Host, r.URL.Path, r.Proto, verdict)
}

// gitHandler serves f.gitRepo with git http-backend, for clients that authenticate as the
// github preset does (Basic x-access-token:TOKEN).
func (f *egressFixture) gitHandler() http.Handler {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+f.secret))
	h := &cgi.Handler{
		Path: "/usr/lib/git-core/git-http-backend",
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(f.gitRepo), "GIT_HTTP_EXPORT_ALL=1"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{Server: "git", Host: r.Host, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Proto: r.Proto})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func makeBareRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	work := filepath.Join(dir, "work")
	_ = os.Mkdir(work, 0o755)
	run(work, "init", "-q", "-b", "main")
	_ = os.WriteFile(filepath.Join(work, "README"), []byte("cloned through the egress proxy\n"), 0o644)
	run(work, "add", "README")
	run(work, "commit", "-q", "-m", "first")
	run(dir, "clone", "-q", "--bare", work, "repo.git")
	return filepath.Join(dir, "repo.git")
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// seenOn returns the requests server saw so far.
func (f *egressFixture) seenOn(server string) []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seenRequest
	for _, s := range f.seen {
		if s.Server == server {
			out = append(out, s)
		}
	}
	return out
}

// options are the provider's egress options for the fixture.
func (f *egressFixture) options() EgressOptions {
	lo := netip.MustParseAddr("127.0.0.1")
	res := map[string][]netip.Addr{"badcert.test": {lo}, "other.test": {lo}}
	for _, n := range testTLSNames {
		res[n] = []netip.Addr{lo}
	}
	return EgressOptions{
		AllowAddrs: []netip.AddrPort{
			netip.AddrPortFrom(lo, uint16(f.tlsPort)),
			netip.AddrPortFrom(lo, uint16(f.httpPort)),
			netip.AddrPortFrom(lo, uint16(f.badPort)),
		},
		Resolve:       res,
		UpstreamRoots: f.roots,
		Getenv: func(name string) (string, bool) {
			if name == testTokenEnv {
				return f.secret, true
			}
			return "", false
		},
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// provider opens a provider with the fixture's egress options.
func (f *egressFixture) provider(t testing.TB, dir string) *Provider {
	return newTestProvider(t, Options{Dir: dir, Egress: f.options()})
}

// Client scripts run in the sandbox.
const pyGet = `import sys, ssl, urllib.request, urllib.error
url = sys.argv[1]
ca = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
hdrs = {"Authorization": sys.argv[3]} if len(sys.argv) > 3 and sys.argv[3] else {}
ctx = ssl.create_default_context(cafile=ca) if ca else None
try:
    r = urllib.request.urlopen(urllib.request.Request(url, headers=hdrs), context=ctx, timeout=20)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
except Exception as e:
    print("error", e); sys.exit(2)
`

// nodeGet fetches a URL with Node's http/https modules: through the proxy (Node ignores
// http_proxy: a CONNECT for https, an absolute-URI request for http) or directly.
const nodeGet = `const http = require('http'), https = require('https'), tls = require('tls'), fs = require('fs');
const [url, caFile, auth, mode] = process.argv.slice(2);
const u = new URL(url);
const ca = caFile ? fs.readFileSync(caFile) : undefined;
const headers = auth ? { authorization: auth } : {};
const t = setTimeout(() => { console.log('error timeout'); process.exit(4); }, 20000);
function out(res) { let b = ''; res.setEncoding('utf8'); res.on('data', d => b += d); res.on('end', () => { console.log(res.statusCode); console.log(b); clearTimeout(t); }); }
function fail(e) { console.log('error ' + (e.code || '') + ' ' + e.message); process.exit(2); }
if (mode === 'direct') {
  (u.protocol === 'https:' ? https : http).get(url, { ca, headers }, out).on('error', fail);
} else if (u.protocol === 'http:') {
  http.get({ host: '127.0.0.1', port: 3128, path: url, headers: { ...headers, host: u.host } }, out).on('error', fail);
} else {
  const port = u.port || 443;
  http.request({ host: '127.0.0.1', port: 3128, method: 'CONNECT', path: u.hostname + ':' + port })
    .on('connect', (res, socket) => {
      if (res.statusCode !== 200) { console.log(res.statusCode + ' ' + res.statusMessage); clearTimeout(t); socket.destroy(); return; }
      https.get({ host: u.hostname, port, path: u.pathname + u.search, headers,
        createConnection: () => tls.connect({ socket, servername: u.hostname, ca, ALPNProtocols: ['http/1.1'] }) }, out).on('error', fail);
    }).on('error', fail).end();
}
`

// egressSandbox starts a sandbox with pol and the client scripts and test CA in /workspace.
func (f *egressFixture) sandbox(t testing.TB, p *Provider, pol policies.Policy, detached bool) sandbox.Sandbox {
	t.Helper()
	sb := startSandbox(t, p, sandbox.StartOptions{Policy: pol, Label: "ws_egress_test", Detached: detached})
	f.install(t, sb)
	return sb
}

func (f *egressFixture) install(t testing.TB, sb sandbox.Sandbox) {
	t.Helper()
	err := sb.WriteFiles(context.Background(), []sandbox.File{
		{Path: "testca.pem", Content: f.caPEM},
		{Path: "get.py", Content: []byte(pyGet)},
		{Path: "get.js", Content: []byte(nodeGet)},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// client names one of the three clients; fetch runs it in the sandbox.
type client string

const (
	curlClient   client = "curl"
	pythonClient client = "python"
	nodeClient   client = "node"
)

var clients = []client{curlClient, pythonClient, nodeClient}

// fetch gets url with c through the proxy, trusting ca ("" = the sandbox's default trust) and
// sending auth as Authorization when set. It returns the output (status line first for
// python and node, "-w" status for curl) and the exit code.
func fetch(t testing.TB, sb sandbox.Sandbox, c client, url, ca, auth string) (string, int) {
	t.Helper()
	return fetchWith(t, sb, "", c, url, ca, auth)
}

// fetchForced is fetch with NO_PROXY unset, for 127.0.0.1 and ::1, which clients otherwise
// reach directly (the sandbox's own loopback).
func fetchForced(t testing.TB, sb sandbox.Sandbox, c client, url string) (string, int) {
	t.Helper()
	return fetchWith(t, sb, "env -u NO_PROXY -u no_proxy ", c, url, "", "")
}

func fetchWith(t testing.TB, sb sandbox.Sandbox, prefix string, c client, url, ca, auth string) (string, int) {
	t.Helper()
	var script string
	q := shellQuote
	switch c {
	case curlClient:
		script = "curl -sS --max-time 20 -w '\\n%{http_code}\\n'"
		if ca != "" {
			script += " --cacert " + q(ca)
		}
		if auth != "" {
			script += " -H " + q("Authorization: "+auth)
		}
		script += " " + q(url)
	case pythonClient:
		script = "python3 get.py " + q(url) + " " + q(ca) + " " + q(auth)
	case nodeClient:
		script = "node get.js " + q(url) + " " + q(ca) + " " + q(auth) + " proxy"
	}
	o := sh(t, sb, prefix+script+" 2>&1")
	return o.stdout, o.res.ExitCode
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func requireClients(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"/usr/bin/curl", "/usr/bin/python3", "/usr/bin/node"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("the egress tests need %s on the host (apt-get install -y curl python3 nodejs)", bin)
		}
	}
}

// wantRefused checks a refusal as each client shows it: curl and python print the body of a
// refused plain-HTTP request; for CONNECT, curl shows the status code and python and node the
// status line, whose reason phrase names the host.
func wantRefused(t *testing.T, c client, url, out, host string, extra ...string) {
	t.Helper()
	if !strings.Contains(out, "403") {
		t.Errorf("%s %s: want a 403 refusal, got:\n%s", c, url, out)
		return
	}
	if strings.HasPrefix(url, "http://") {
		for _, want := range append([]string{"refused", host, "ws_egress_test"}, extra...) {
			if !strings.Contains(out, want) {
				t.Errorf("%s %s: the refusal does not mention %q:\n%s", c, url, want, out)
			}
		}
	} else if c != curlClient && !strings.Contains(out, host) {
		t.Errorf("%s %s: the CONNECT refusal's status line does not name %s:\n%s", c, url, host, out)
	}
}

func TestEgressDenyAll(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	p := f.provider(t, "")
	if !p.Capabilities().Egress {
		t.Fatal("Capabilities().Egress is false")
	}
	sb := f.sandbox(t, p, policies.Deny(), false)
	if w := sb.Warnings(); len(w) != 0 {
		t.Fatalf("warnings: %q", w)
	}
	env := shOK(t, sb, "env | sort")
	for _, want := range []string{"http_proxy=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128", "NO_PROXY=localhost,127.0.0.1,::1", "SSL_CERT_FILE=" + sandboxCABundle, "NODE_EXTRA_CA_CERTS=" + sandboxCA, "GIT_SSL_CAINFO=" + sandboxCABundle, "REQUESTS_CA_BUNDLE=" + sandboxCABundle, "CURL_CA_BUNDLE=" + sandboxCABundle} {
		if !strings.Contains(env, want) {
			t.Errorf("sandbox environment lacks %s", want)
		}
	}
	https := fmt.Sprintf("https://api.github.test:%d/x", f.tlsPort)
	plain := fmt.Sprintf("http://plain.test:%d/x", f.httpPort)
	for _, c := range clients {
		t.Run("via proxy "+string(c), func(t *testing.T) {
			for _, url := range []string{https, plain} {
				out, _ := fetch(t, sb, c, url, "/workspace/testca.pem", "")
				host := strings.Split(strings.Split(url, "//")[1], ":")[0]
				wantRefused(t, c, url, out, host, "deny-all", "set_policy")
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		// Names do not resolve in the sandbox, and 127.0.0.1 is the sandbox's own loopback.
		for _, url := range []string{https, plain, fmt.Sprintf("https://127.0.0.1:%d/x", f.tlsPort), fmt.Sprintf("http://127.0.0.1:%d/x", f.httpPort)} {
			if o := sh(t, sb, "curl -sS --noproxy '*' --max-time 5 --cacert testca.pem "+url); o.res.ExitCode == 0 {
				t.Errorf("curl --noproxy %s succeeded: %s", url, o.stdout)
			}
			if o := sh(t, sb, "python3 -c 'import sys,urllib.request; urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({}))); urllib.request.urlopen(sys.argv[1], timeout=5)' "+url); o.res.ExitCode == 0 {
				t.Errorf("python direct %s succeeded", url)
			}
			if o := sh(t, sb, "node get.js "+url+" testca.pem '' direct"); o.res.ExitCode == 0 || !strings.Contains(o.stdout, "error") {
				t.Errorf("node direct %s: %s", url, o.stdout)
			}
		}
	})
	t.Run("raw TCP to the host's addresses", func(t *testing.T) {
		addrs, _ := net.InterfaceAddrs()
		targets := []string{"127.0.0.1:" + strconv.Itoa(f.tlsPort), "1.1.1.1:443"}
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok && !pn.IP.IsLoopback() && pn.IP.To4() != nil {
				targets = append(targets, net.JoinHostPort(pn.IP.String(), strconv.Itoa(f.httpPort)))
			}
		}
		for _, tg := range targets {
			host, port, _ := net.SplitHostPort(tg)
			o := sh(t, sb, fmt.Sprintf(`python3 -c 'import socket; socket.create_connection(("%s", %s), timeout=3)'`, host, port))
			if o.res.ExitCode == 0 {
				t.Errorf("raw TCP connect to %s from the sandbox succeeded", tg)
			}
		}
	})
	t.Run("host unix socket", func(t *testing.T) {
		name := fmt.Sprintf("@sandkit-egress-test-%d", os.Getpid())
		l, err := net.Listen("unix", name)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		o := sh(t, sb, `python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("\0`+name[1:]+`")'`)
		if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "PermissionError") {
			t.Fatalf("AF_UNIX connect to the host's abstract socket: exit %d %q", o.res.ExitCode, o.stderr)
		}
	})
	for _, srv := range []string{"tls", "http"} {
		if s := f.seenOn(srv); len(s) != 0 {
			t.Errorf("the %s server was reached from a deny-all sandbox: %+v", srv, s)
		}
	}
	if logs := f.logs.String(); !strings.Contains(logs, "decision=deny") || !strings.Contains(logs, "workspace=ws_egress_test") || !strings.Contains(logs, "policy=deny-all") {
		t.Errorf("no refusal log line with workspace and policy:\n%s", logs)
	}
}

func TestEgressAllowList(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	p := f.provider(t, "")
	sb := f.sandbox(t, p, policies.Policy{Mode: policies.Allow, Domains: []string{"api.github.test", "plain.test"}}, false)
	https := fmt.Sprintf("https://api.github.test:%d/tunnel", f.tlsPort)
	plain := fmt.Sprintf("http://plain.test:%d/plain", f.httpPort)
	for _, c := range clients {
		t.Run(string(c), func(t *testing.T) {
			// The client trusts only the test CA: a proxy that intercepted TLS would fail it.
			out, code := fetch(t, sb, c, https, "/workspace/testca.pem", "")
			if code != 0 || !strings.Contains(out, "hello from tls host=api.github.test") || !strings.Contains(out, "auth=none") {
				t.Fatalf("%s %s: exit %d:\n%s", c, https, code, out)
			}
			out, code = fetch(t, sb, c, plain, "", "")
			if code != 0 || !strings.Contains(out, "hello from http host=plain.test") {
				t.Fatalf("%s %s: exit %d:\n%s", c, plain, code, out)
			}
			for _, url := range []string{fmt.Sprintf("https://other.test:%d/", f.tlsPort), fmt.Sprintf("http://other.test:%d/", f.httpPort)} {
				out, _ := fetch(t, sb, c, url, "/workspace/testca.pem", "")
				wantRefused(t, c, url, out, "other.test", "allow:api.github.test,plain.test", `"other.test"`)
			}
		})
	}
	if out, _ := fetchForced(t, sb, curlClient, fmt.Sprintf("http://127.0.0.1:%d/", f.httpPort)); !strings.Contains(out, "403") || !strings.Contains(out, "IP address") {
		t.Errorf("an IP literal under an allow-list: %s", out)
	}
	// curl offers h2 and the server speaks it: seeing HTTP/2 proves the TLS session is the
	// client's own (the proxy's interception speaks HTTP/1.1 only).
	var h2 bool
	for _, s := range f.seenOn("tls") {
		h2 = h2 || s.Proto == "HTTP/2.0"
	}
	if !h2 {
		t.Errorf("no HTTP/2 request reached the TLS server through the tunnel: %+v", f.seenOn("tls"))
	}

	t.Run("allow-all still refuses local addresses", func(t *testing.T) {
		all := f.sandbox(t, p, policies.Policy{Mode: policies.AllowAll}, false)
		out, code := fetch(t, all, curlClient, https, "/workspace/testca.pem", "")
		if code != 0 || !strings.Contains(out, "hello from tls") {
			t.Fatalf("allow-all, allowed address: %d %s", code, out)
		}
		for _, tc := range []struct{ url, host, why string }{
			{fmt.Sprintf("http://127.0.0.1:%d/", f.offPort), "127.0.0.1", "loopback"},
			{fmt.Sprintf("http://evil.test:%d/", f.offPort), "evil.test", "loopback"},
			{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"},
			{"http://100.100.100.200/", "100.100.100.200", "cloud metadata"},
			{"http://[fd00:ec2::254]/", "fd00:ec2::254", "cloud metadata"},
			{"http://10.1.2.3/", "10.1.2.3", "private address"},
			{"http://192.168.1.1/", "192.168.1.1", "private address"},
			{"http://100.64.0.1/", "100.64.0.1", "CGNAT"},
			{"http://[::1]:" + strconv.Itoa(f.httpPort) + "/", "::1", "loopback"},
			{"http://0.0.0.0:" + strconv.Itoa(f.httpPort) + "/", "0.0.0.0", "unspecified"},
			{"http://224.0.0.1/", "224.0.0.1", "multicast"},
		} {
			out, _ := fetchForced(t, all, curlClient, tc.url)
			if !strings.Contains(out, "403") || !strings.Contains(out, tc.why) || !strings.Contains(out, "AllowAddrs") {
				t.Errorf("allow-all %s: want a 403 naming %q:\n%s", tc.url, tc.why, out)
			}
		}
		for _, target := range []string{"169.254.169.254:443", "127.0.0.1:" + strconv.Itoa(f.offPort), "10.0.0.1:443"} {
			out, _ := fetchForced(t, all, pythonClient, "https://"+target+"/")
			if !strings.Contains(out, "403") || !strings.Contains(out, "refused address") {
				t.Errorf("allow-all CONNECT %s: %s", target, out)
			}
		}
		if s := f.seenOn("off"); len(s) != 0 {
			t.Errorf("the server on a port not in AllowAddrs was reached: %+v", s)
		}
	})
}

func brokerPolicy() policies.Policy {
	return policies.Policy{
		Mode:    policies.Allow,
		Domains: []string{"api.github.test"},
		Services: []policies.Service{
			{ID: "github", Credential: &policies.Credential{Env: testTokenEnv}},
			{ID: "internal", Domains: []string{"broker.test", "badcert.test"}, Headers: []policies.Header{
				{Name: "authorization", Prefix: "Bearer ", Credential: policies.Credential{Env: testTokenEnv}},
			}},
		},
	}
}

func TestEgressBrokering(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	dir := t.TempDir()
	p := f.provider(t, dir)
	sb := f.sandbox(t, p, brokerPolicy(), true)
	api := fmt.Sprintf("https://api.github.com:%d/user", f.tlsPort)
	broker := fmt.Sprintf("https://broker.test:%d/internal", f.tlsPort)
	for _, c := range clients {
		t.Run(string(c), func(t *testing.T) {
			for _, url := range []string{api, broker} {
				// Default trust (the sandbox bundle with the egress CA); no credential of its own.
				out, code := fetch(t, sb, c, url, "", "")
				if code != 0 || !strings.Contains(out, "auth=ok") || !strings.Contains(out, "proto=HTTP/1.1") {
					t.Fatalf("%s %s: exit %d:\n%s", c, url, code, out)
				}
				// Its own Authorization header is replaced.
				out, code = fetch(t, sb, c, url, "", "Bearer sandbox-made-this-up")
				if code != 0 || !strings.Contains(out, "auth=ok") {
					t.Fatalf("%s %s with its own Authorization: exit %d:\n%s", c, url, code, out)
				}
			}
		})
	}
	t.Run("keep-alive both ways", func(t *testing.T) {
		before := len(f.seenOn("tls"))
		out := shOK(t, sb, fmt.Sprintf("curl -sS %s/ka1 %s/ka2 %s/ka3", broker, broker, broker))
		if strings.Count(out, "auth=ok") != 3 {
			t.Fatalf("three requests on one connection: %s", out)
		}
		seen := f.seenOn("tls")[before:]
		if len(seen) != 3 || seen[0].Remote != seen[1].Remote || seen[1].Remote != seen[2].Remote {
			t.Errorf("the proxy did not reuse one upstream connection: %+v", seen)
		}
	})
	t.Run("untrusted upstream", func(t *testing.T) {
		out, _ := fetch(t, sb, curlClient, fmt.Sprintf("https://badcert.test:%d/", f.badPort), "", "")
		if !strings.Contains(out, "502") || !strings.Contains(out, "certificate") {
			t.Fatalf("want a 502 naming the certificate problem:\n%s", out)
		}
		if s := f.seenOn("bad"); len(s) != 0 {
			t.Fatalf("a request (with the credential) reached the untrusted server: %+v", s)
		}
	})
	t.Run("git over HTTPS", func(t *testing.T) {
		if f.gitRepo == "" {
			t.Skip("git-http-backend is not installed")
		}
		o := sh(t, sb, fmt.Sprintf("cd /tmp && git clone -q https://github.com:%d/repo.git && cat repo/README", f.tlsPort))
		if o.res.ExitCode != 0 || !strings.Contains(o.stdout, "cloned through the egress proxy") {
			t.Fatalf("git clone: exit %d\n%s\n%s", o.res.ExitCode, o.stdout, o.stderr)
		}
	})
	t.Run("tunnelled hosts are not intercepted", func(t *testing.T) {
		out, code := fetch(t, sb, curlClient, fmt.Sprintf("https://api.github.test:%d/t", f.tlsPort), "/workspace/testca.pem", "")
		if code != 0 || !strings.Contains(out, "auth=none") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("no trace of the secret", func(t *testing.T) {
		secret := []byte(f.secret)
		// The needle goes in on stdin, so no command line or environment holds it.
		traces := func(needle string) (env, files, procs string) {
			run := func(script string) string {
				var o, e bytes.Buffer
				res, err := sb.Exec(context.Background(), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}, Stdin: []byte(needle + "\n"), Stdout: &o, Stderr: &e, Timeout: 5 * time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				if res.ExitCode > 1 {
					t.Fatalf("%s: exit %d: %s", script, res.ExitCode, e.String())
				}
				return strings.TrimSpace(o.String())
			}
			env = run("env | grep -F -f - ; true")
			// Everything the sandbox or the provider could have written: all of / but /proc
			// and the host's read-only /usr (5 GB here; nothing can write to it).
			files = run("grep -rlsF -D skip --exclude-dir=proc --exclude-dir=usr -f - / ; true")
			procs = run(`read -r s; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -qsF -e "$s" "$f" && case $f in /proc/$$/*) ;; *) echo $f;; esac; done; true`)
			return
		}
		// The method finds a canary planted in a file, the environment and a process.
		canary := "canary-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		shOK(t, sb, "mkdir -p ~/.cache && echo "+canary+" > ~/.cache/planted")
		bg, err := sb.StartProcess(context.Background(), sandbox.ExecRequest{Command: "sleep", Args: []string{"60"}, Env: map[string]string{"PLANTED": canary}})
		if err != nil {
			t.Fatal(err)
		}
		cEnv, cFiles, cProcs := traces(canary)
		_ = sb.Signal(context.Background(), bg, 9)
		if cFiles != "/home/sandbox/.cache/planted" || cProcs == "" || cEnv != "" {
			t.Fatalf("the trace search does not work: env %q files %q procs %q", cEnv, cFiles, cProcs)
		}
		env, files, procs := traces(f.secret)
		if env != "" || files != "" || procs != "" {
			t.Errorf("the secret is in the sandbox: env %q, files %q, processes %q", env, files, procs)
		}
		// Nor on the host: the provider directory (meta.json, layers, /etc, CA) and the logs.
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, secret) {
				t.Errorf("%s holds the secret", path)
			}
			return nil
		})
		if bytes.Contains([]byte(f.logs.String()), secret) {
			t.Error("the provider's log holds the secret")
		}
		m, err := readMeta(filepath.Join(dir, "sandboxes", sb.ID()))
		if err != nil || m.Policy == nil || len(m.Policy.Services) != 2 {
			t.Errorf("meta.json policy: %+v %v", m.Policy, err)
		}
	})
}

// pyConnectGarbage sends CONNECT argv[1] to the proxy, prints the answer's status line, then
// sends bytes that are neither TLS nor HTTP and prints "eof" when the proxy closes the tunnel.
const pyConnectGarbage = `import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[1].encode(), sys.argv[1].encode()))
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b:
        break
    head += b
print(head.split(b"\r\n")[0].decode())
s.sendall(b"\x00garbage\r\n\r\n")
print("eof" if s.recv(100) == b"" else "data")
`

// TestEgressCredentialsOnlyInTLS: a header that carries a credential is only ever added inside
// TLS. The fixture's plain-HTTP server stands in for the brokered hosts (they resolve to it):
// neither an absolute-URI http:// request nor a CONNECT tunnel that speaks plain HTTP reaches
// it, so it never sees the header; hosts without header rules still get plain HTTP.
func TestEgressCredentialsOnlyInTLS(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	p := f.provider(t, "")
	sb := f.sandbox(t, p, brokerPolicy(), false)
	brokered := []string{"broker.test", "api.github.com", "github.com"}
	for _, c := range clients {
		t.Run("absolute URI refused "+string(c), func(t *testing.T) {
			for _, host := range brokered {
				url := fmt.Sprintf("http://%s:%d/absolute-%s", host, f.httpPort, c)
				out, _ := fetch(t, sb, c, url, "", "")
				wantRefused(t, c, url, out, host, "credential", "only inside TLS", "use https:// instead of http://")
			}
		})
	}
	t.Run("the refusal's status and Proxy-Status", func(t *testing.T) {
		head := shOK(t, sb, fmt.Sprintf("curl -sS -o /dev/null -D - --max-time 20 http://broker.test:%d/head", f.httpPort))
		for _, want := range []string{"403 Forbidden (sandkit egress: plain HTTP to broker.test", "Proxy-Status: sandkit-egress; error=http_request_denied", "X-Sandkit-Egress: refused"} {
			if !strings.Contains(head, want) {
				t.Errorf("the refusal's head lacks %q:\n%s", want, head)
			}
		}
	})
	t.Run("plain HTTP in a CONNECT tunnel is closed", func(t *testing.T) {
		for _, host := range brokered {
			url := fmt.Sprintf("http://%s:%d/tunnel", host, f.httpPort)
			// curl -p: CONNECT host:port, then the request in plain HTTP inside the tunnel.
			o := sh(t, sb, "curl -sS -p --max-time 20 "+shellQuote(url))
			if o.res.ExitCode == 0 || strings.Contains(o.stdout, "hello from") {
				t.Errorf("curl -p %s: exit %d, stdout %q; want the tunnel closed", url, o.res.ExitCode, o.stdout)
			}
		}
		// Bytes that are neither TLS nor HTTP fare the same: the proxy closes the tunnel.
		o := sh(t, sb, "python3 -c "+shellQuote(pyConnectGarbage)+" broker.test:"+strconv.Itoa(f.httpPort))
		if o.res.ExitCode != 0 || !strings.Contains(o.stdout, " 200 ") || !strings.HasSuffix(strings.TrimSpace(o.stdout), "eof") {
			t.Errorf("CONNECT then garbage: exit %d stdout %q stderr %q; want 200, then the tunnel closed", o.res.ExitCode, o.stdout, o.stderr)
		}
		if logs := f.logs.String(); strings.Count(logs, "did not start with a TLS ClientHello") < len(brokered)+1 {
			t.Errorf("the proxy did not log why it closed each tunnel:\n%s", logs)
		}
	})
	t.Run("hosts without header rules keep plain HTTP", func(t *testing.T) {
		url := fmt.Sprintf("http://api.github.test:%d/plain", f.httpPort)
		out, code := fetch(t, sb, curlClient, url, "", "")
		if code != 0 || !strings.Contains(out, "hello from http host=api.github.test") || !strings.Contains(out, "auth=none") {
			t.Fatalf("%s: exit %d:\n%s", url, code, out)
		}
		if out := shOK(t, sb, "curl -sS -p --max-time 20 "+url); !strings.Contains(out, "hello from http host=api.github.test") {
			t.Fatalf("curl -p %s: %s", url, out)
		}
	})
	t.Run("HTTPS is still brokered", func(t *testing.T) {
		out, code := fetch(t, sb, curlClient, fmt.Sprintf("https://api.github.com:%d/user", f.tlsPort), "", "")
		if code != 0 || !strings.Contains(out, "auth=ok") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	seen := f.seenOn("http")
	for _, s := range seen {
		if s.Auth != "" || s.Host != "api.github.test:"+strconv.Itoa(f.httpPort) {
			t.Errorf("the plain-HTTP server got a request for a brokered host or with a credential: %s%s, Authorization set: %t", s.Host, s.Path, s.Auth != "")
		}
	}
	if len(seen) != 2 {
		t.Errorf("the plain-HTTP server saw %d requests, want the 2 for api.github.test", len(seen))
	}
}

func TestEgressSetPolicy(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	p := f.provider(t, "")
	sb := f.sandbox(t, p, policies.Deny(), false)
	ctx := context.Background()
	url := fmt.Sprintf("http://plain.test:%d/setpolicy", f.httpPort)
	get := func() string { out, _ := fetch(t, sb, curlClient, url, "", ""); return out }
	if out := get(); !strings.Contains(out, "403") {
		t.Fatalf("deny-all: %s", out)
	}
	// A long-lived client (keep-alive) opened under deny-all is not part of the test; each
	// fetch is a new connection.
	if err := sb.SetPolicy(ctx, policies.Policy{Mode: policies.Allow, Domains: []string{"plain.test"}}); err != nil {
		t.Fatal(err)
	}
	if out := get(); !strings.Contains(out, "hello from http host=plain.test") {
		t.Fatalf("after SetPolicy(allow plain.test): %s", out)
	}
	if err := sb.SetPolicy(ctx, policies.Deny()); err != nil {
		t.Fatal(err)
	}
	if out := get(); !strings.Contains(out, "403") || !strings.Contains(out, "deny-all") {
		t.Fatalf("after SetPolicy(deny-all): %s", out)
	}

	t.Run("a credential that is not there", func(t *testing.T) {
		bad := policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "github", Credential: &policies.Credential{Env: "SANDKIT_CRED_TEST_NOT_SET"}}}}
		err := sb.SetPolicy(ctx, bad)
		if !errors.Is(err, sandbox.ErrInvalid) || !errors.Is(err, policies.ErrCredential) || !strings.Contains(err.Error(), "SANDKIT_CRED_TEST_NOT_SET") {
			t.Fatalf("SetPolicy: %v", err)
		}
		if out := get(); !strings.Contains(out, "deny-all") {
			t.Fatalf("a failed SetPolicy changed the policy: %s", out)
		}
		_, err = p.Start(ctx, sandbox.StartOptions{Policy: bad})
		if !errors.Is(err, sandbox.ErrInvalid) || !errors.Is(err, policies.ErrCredential) || !strings.Contains(err.Error(), "SANDKIT_CRED_TEST_NOT_SET") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("ended", func(t *testing.T) {
		other := startSandbox(t, p, sandbox.StartOptions{})
		_ = other.Stop(ctx)
		if err := other.SetPolicy(ctx, policies.Deny()); !errors.Is(err, sandbox.ErrEnded) {
			t.Fatalf("SetPolicy on a stopped sandbox: %v", err)
		}
	})
}

// TestEgressReconnect: a detached sandbox keeps its egress across a restart of the provider:
// the new provider compiles the stored policy again with its environment and takes over the
// forwarder. A service whose credential was a literal is denied afterwards, with a warning.
func TestEgressReconnect(t *testing.T) {
	t.Parallel()
	requireClients(t)
	f := newEgressFixture(t)
	dir := t.TempDir()
	literal := "sk-literal-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pol := brokerPolicy()
	pol.Services = append(pol.Services, policies.Service{ID: "literal", Domains: []string{"evil.test"}, Headers: []policies.Header{
		{Name: "authorization", Prefix: "Bearer ", Credential: policies.Credential{Value: literal}},
	}})
	p1, err := New(Options{Dir: dir, Egress: f.options()})
	if err != nil {
		t.Fatal(err)
	}
	sb1, err := p1.Start(context.Background(), sandbox.StartOptions{Policy: pol, Label: "ws_egress_test", Detached: true})
	if err != nil {
		p1.Close()
		t.Fatal(err)
	}
	f.install(t, sb1)
	id := sb1.ID()
	broker := fmt.Sprintf("https://broker.test:%d/before", f.tlsPort)
	if out, _ := fetch(t, sb1, curlClient, broker, "", ""); !strings.Contains(out, "auth=ok") {
		t.Fatalf("before the restart: %s", out)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sandboxes", id, metaFile)); bytes.Contains(b, []byte(literal)) || !bytes.Contains(b, []byte(`"redacted": true`)) {
		t.Fatalf("meta.json must hold the policy with the literal redacted:\n%s", b)
	}

	p2 := f.provider(t, dir)
	sb, err := p2.Reconnect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	w := strings.Join(sb.Warnings(), "\n")
	if !strings.Contains(w, `"literal"`) || !strings.Contains(w, "denied") {
		t.Fatalf("warnings after the restart: %q", w)
	}
	for _, c := range clients {
		out, code := fetch(t, sb, c, strings.Replace(broker, "before", "after", 1), "", "")
		if code != 0 || !strings.Contains(out, "auth=ok") {
			t.Fatalf("%s after the restart: exit %d:\n%s", c, code, out)
		}
	}
	evil := fmt.Sprintf("https://evil.test:%d/", f.tlsPort)
	if out, _ := fetch(t, sb, pythonClient, evil, "", ""); !strings.Contains(out, "403") || !strings.Contains(out, "evil.test") {
		t.Fatalf("the literal-credential service's host after the restart: %s", out)
	}
	// Setting the policy again restores it (and clears the warning).
	if err := sb.SetPolicy(context.Background(), pol); err != nil {
		t.Fatal(err)
	}
	if w := sb.Warnings(); len(w) != 0 {
		t.Fatalf("warnings after SetPolicy: %q", w)
	}
	if out, _ := fetch(t, sb, curlClient, evil, "", ""); !strings.Contains(out, "hello from tls") || !strings.Contains(out, "auth=other") {
		t.Fatalf("after SetPolicy with the literal again: %s", out)
	}
}

// TestEgressUnit covers the address guard and the CA without sandboxes.
func TestEgressUnit(t *testing.T) {
	t.Parallel()
	g := newAddrGuard(EgressOptions{
		AllowAddrs:    []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080")},
		AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	})
	for addr, want := range map[string]string{
		"127.0.0.1:8080":          "",
		"127.0.0.1:8081":          "loopback",
		"[::ffff:127.0.0.1]:8080": "",
		"[::ffff:127.0.0.1]:9":    "loopback",
		"10.9.1.1:22":             "",
		"10.8.1.1:22":             "private",
		"172.16.0.1:443":          "private",
		"192.168.0.1:443":         "private",
		"100.64.1.1:443":          "CGNAT",
		"100.100.100.200:80":      "metadata",
		"169.254.169.254:80":      "metadata",
		"169.254.1.1:80":          "link-local",
		"[fd00:ec2::254]:80":      "metadata",
		"[fd12::1]:80":            "unique local",
		"[fe80::1]:80":            "link-local",
		"[::1]:80":                "loopback",
		"[::]:80":                 "unspecified",
		"0.0.0.0:80":              "unspecified",
		"224.0.0.251:5353":        "multicast",
		"[ff02::1]:80":            "multicast",
		"255.255.255.255:80":      "broadcast",
		"[64:ff9b::a00:1]:80":     "private",
		"93.184.215.14:443":       "",
		"[2606:4700::1111]:443":   "",
	} {
		got := g.refused(netip.MustParseAddrPort(addr))
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("refused(%s) = %q, want %q", addr, got, want)
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(pn.IP)
			if g.refused(netip.AddrPortFrom(ip.Unmap(), 443)) == "" {
				t.Errorf("the host's own address %s is not refused", ip)
			}
		}
	}

	dir := t.TempDir()
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, caDirName, caKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file: %v %v", fi, err)
	}
	again, err := loadOrCreateCA(dir)
	if err != nil || !again.cert.Equal(ca.cert) {
		t.Fatalf("the CA was not kept: %v", err)
	}
	if ca.cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA key: %v", ca.cert.PublicKeyAlgorithm)
	}
	leaf, err := ca.leaf("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "api.example.com", Roots: pool}); err != nil {
		t.Fatal(err)
	}
	if again, _ := ca.leaf("api.example.com"); again != leaf {
		t.Error("leaf certificates are not cached")
	}
	if err := os.WriteFile(filepath.Join(dir, caDirName, caCertFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateCA(dir); err == nil || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("a corrupt CA: %v", err)
	}

	// The sandbox /etc trusts the CA.
	etc := filepath.Join(t.TempDir(), "etc")
	if err := ensureEtc(etc, ca.certPEM, DefaultHomeDir); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"ssl/sandkit/ca.pem", "ssl/sandkit/ca-bundle.pem"} {
		b, err := os.ReadFile(filepath.Join(etc, rel))
		if err != nil || !bytes.Contains(b, bytes.TrimSpace(ca.certPEM)) {
			t.Errorf("%s lacks the CA: %v", rel, err)
		}
	}
	if host, err := os.ReadFile("/etc/" + systemBundle); err == nil {
		b, _ := os.ReadFile(filepath.Join(etc, "ssl/sandkit/ca-bundle.pem"))
		if !bytes.HasPrefix(b, host) {
			t.Error("ca-bundle.pem does not start with the host's system bundle")
		}
		if sys, _ := os.ReadFile(filepath.Join(etc, systemBundle)); !bytes.Equal(sys, b) {
			t.Error("the sandbox's system bundle does not hold the CA")
		}
	}
}
