package sandboxtest

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The EgressPolicies scenario's host names (RFC 6761 .test names: no resolver answers them, so
// only a harness that maps them, see EgressHarness, makes them reachable).
const (
	allowedHost = "allowed.sandboxtest.test"
	otherHost   = "other.sandboxtest.test"
)

// unroutable is an "outside" address: TEST-NET-1 (RFC 5737), which no network routes, so a
// sandbox that could reach outside still never leaves the machine and fails within probeTimeout.
const unroutable = "192.0.2.1"

// probeTimeout bounds each connection attempt of the probe, in seconds.
const probeTimeout = 3

// egressProbe tries each of its arguments, "tcp=HOST:PORT" (a raw TCP connect) or "http=URL" (a
// GET through urllib, which uses the proxy the sandbox's environment names, as any program
// would), and prints one line per argument: "OPEN <arg>", "BODY <arg> <body>" or
// "FAIL <arg> <error>". It always exits 0.
const egressProbe = `import socket, sys, urllib.request
t = float(sys.argv[1])
for arg in sys.argv[2:]:
    kind, target = arg.split("=", 1)
    try:
        if kind == "tcp":
            host, port = target.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=t).close()
            print("OPEN", arg, flush=True)
        else:
            body = urllib.request.urlopen(target, timeout=t).read(200).decode("utf-8", "replace")
            print("BODY", arg, body.replace("\n", " "), flush=True)
    except Exception as e:
        print("FAIL", arg, type(e).__name__, str(e).replace("\n", " ")[:200], flush=True)
`

// upstream is an HTTP server on the host's 127.0.0.1 that counts the requests it gets.
type upstream struct {
	name  string // the host name the scenario uses for it
	addr  netip.AddrPort
	token string // in every answer, so a body proves the request reached this server

	mu   sync.Mutex
	seen []string // Host headers of the requests received
}

func startUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	u := &upstream{name: name, addr: l.Addr().(*net.TCPAddr).AddrPort(), token: "sandboxtest-upstream-" + name}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Host)
		u.mu.Unlock()
		fmt.Fprintf(w, "%s path=%s\n", u.token, r.URL.Path)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

// url is the server's URL under its host name.
func (u *upstream) url() string {
	return "http://" + net.JoinHostPort(u.name, strconv.Itoa(int(u.addr.Port()))) + "/probe"
}

// loopbackURL is the server's URL by its address (the host's 127.0.0.1).
func (u *upstream) loopbackURL() string {
	return "http://" + u.addr.String() + "/probe"
}

// requests returns the Host headers of the requests the server got, and forgets them.
func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// probe runs egressProbe in sb with targets and returns its line for each target.
func probe(t *testing.T, sb sandbox.Sandbox, targets ...string) map[string]string {
	t.Helper()
	args := append([]string{"-c", egressProbe, strconv.Itoa(probeTimeout)}, targets...)
	r := execute(t, sb, sandbox.ExecRequest{Command: "python3", Args: args})
	if r.ExitCode != 0 || r.TimedOut {
		t.Fatalf("the egress probe (python3) failed: %v; the suite needs python3 in the sandbox", r)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if f := strings.SplitN(line, " ", 3); len(f) >= 2 {
			out[f[1]] = line
		}
	}
	for _, tg := range targets {
		if out[tg] == "" {
			t.Fatalf("the egress probe printed nothing for %s: %v", tg, r)
		}
	}
	return out
}

// wantUnreachable checks that none of targets was reached.
func wantUnreachable(t *testing.T, what string, got map[string]string, targets ...string) {
	t.Helper()
	for _, tg := range targets {
		if !strings.HasPrefix(got[tg], "FAIL ") {
			t.Errorf("%s: %s was reached from the sandbox: %s", what, tg, got[tg])
		}
	}
}

// wantNoRequests checks that no upstream received a request.
func wantNoRequests(t *testing.T, what string, ups ...*upstream) {
	t.Helper()
	for _, u := range ups {
		if seen := u.requests(); len(seen) != 0 {
			t.Errorf("%s: the host's test server %s (%s) received requests from the sandbox: %q", what, u.name, u.addr, seen)
		}
	}
}

// testEgressPolicies: a sandbox's network is what its policy says and nothing more. Under
// policies.Deny() it reaches neither an HTTP server on the host's 127.0.0.1 (by address, raw or
// over HTTP, nor by a name mapped to it) nor an outside address. Under an allow-list naming one
// host, that host works (when the harness can point the provider at test servers, see
// EgressHarness) while another host, the host's loopback and the outside stay unreachable; and
// SetPolicy back to deny-all refuses the allowed host again. A provider without
// Capabilities.Egress shows no network at all under any policy, and its Warnings say so for a
// policy it does not enforce. Nothing leaves the machine: the outside address is TEST-NET-1 and
// host names are .test names. The sandbox must offer python3.
func (s *suite) testEgressPolicies(t *testing.T) {
	allowed := startUpstream(t, allowedHost)
	other := startUpstream(t, otherHost)
	var p sandbox.Provider
	eh, mapped := s.h.(EgressHarness)
	if mapped {
		p = eh.MakeEgressProvider(opCtx(t), t, map[string]netip.AddrPort{allowedHost: allowed.addr, otherHost: other.addr})
		if p == nil {
			t.Fatal("EgressHarness.MakeEgressProvider returned nil")
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("Provider.Close: %v", err)
			}
		})
	} else {
		p = s.provider(t)
	}
	egress := p.Capabilities().Egress

	// Reachable by nobody, whatever the policy.
	outside := []string{
		"tcp=" + allowed.addr.String(), "http=" + allowed.loopbackURL(),
		"tcp=" + unroutable + ":80", "http=http://" + unroutable + "/probe",
	}

	t.Run("deny-all", func(t *testing.T) {
		sb := startWith(t, p, sandbox.StartOptions{Policy: policies.Deny()})
		if w := sb.Warnings(); len(w) != 0 {
			t.Errorf("Warnings under deny-all: %q; every provider can give no network", w)
		}
		targets := append([]string{"http=" + other.url()}, outside...)
		if mapped {
			targets = append(targets, "http="+allowed.url())
		}
		wantUnreachable(t, "deny-all", probe(t, sb, targets...), targets...)
		wantNoRequests(t, "deny-all", allowed, other)
	})

	allowList := policies.Policy{Mode: policies.Allow, Domains: []string{allowedHost}}
	t.Run("allow-list", func(t *testing.T) {
		sb := startWith(t, p, sandbox.StartOptions{Policy: allowList})
		w := sb.Warnings()
		switch {
		case egress && len(w) != 0:
			t.Errorf("Warnings under %s with Capabilities.Egress: %q; the policy is enforced, so nothing to warn about", allowList, w)
		case !egress && len(w) == 0:
			t.Errorf("no Warnings under %s without Capabilities.Egress: the sandbox has no network and must say so", allowList)
		}
		refused := append([]string{"http=" + other.url()}, outside...)
		targets := refused
		if mapped {
			targets = append([]string{"http=" + allowed.url()}, refused...)
		}
		got := probe(t, sb, targets...)
		wantUnreachable(t, allowList.String(), got, refused...)
		if s := other.requests(); len(s) != 0 {
			t.Errorf("%s: %s, which the policy does not name, received requests: %q", allowList, otherHost, s)
		}
		if !mapped {
			t.Logf("the harness implements no EgressHarness, so whether %s reaches the allowed host is not checked (only what it must refuse)", allowList)
			wantNoRequests(t, allowList.String(), allowed)
			return
		}
		line, seen := got["http="+allowed.url()], allowed.requests()
		switch {
		case !egress:
			wantUnreachable(t, allowList.String()+" without Capabilities.Egress", got, "http="+allowed.url())
			if len(seen) != 0 {
				t.Errorf("without Capabilities.Egress, %s received requests: %q", allowedHost, seen)
			}
		case !strings.HasPrefix(line, "BODY ") || !strings.Contains(line, allowed.token):
			t.Errorf("%s: GET %s did not reach the allowed host's server: %s", allowList, allowed.url(), line)
		case len(seen) != 1 || !strings.HasPrefix(seen[0], allowedHost):
			t.Errorf("%s: the allowed host's server saw requests for %q, want one for %s", allowList, seen, allowedHost)
		}

		t.Run("SetPolicy to deny-all", func(t *testing.T) {
			if err := sb.SetPolicy(opCtx(t), policies.Deny()); err != nil {
				t.Fatalf("SetPolicy(deny-all): %v", err)
			}
			target := "http=" + allowed.url()
			wantUnreachable(t, "after SetPolicy(deny-all)", probe(t, sb, target), target)
			wantNoRequests(t, "after SetPolicy(deny-all)", allowed)
		})
	})
}
