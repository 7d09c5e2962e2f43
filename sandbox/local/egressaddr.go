package local

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// EgressOptions configures the egress proxy of the local provider (see doc.go, "Egress").
type EgressOptions struct {
	// AllowAddrs are exact destinations (IP and port) the proxy may dial although their
	// address is refused by default (loopback, private, link-local, ...): e.g. a registry
	// mirror on 10.0.0.5:443, or test servers on 127.0.0.1. The policy still decides which host
	// names may be asked for.
	AllowAddrs []netip.AddrPort
	// AllowPrefixes are address ranges the proxy may dial on any port although refused by
	// default (e.g. a corporate network).
	AllowPrefixes []netip.Prefix
	// Resolve maps host names (lower case, no trailing dot) to addresses, before DNS: for tests
	// and split-horizon setups. Names not listed are resolved with the system resolver.
	Resolve map[string][]netip.Addr
	// UpstreamRoots verifies upstream servers where the proxy terminates TLS (hosts whose
	// policy rule injects headers); nil means the system roots.
	UpstreamRoots *x509.CertPool
	// Getenv resolves the credentials of policies (Compile); nil means os.LookupEnv.
	Getenv policies.Getenv
	// Logger receives one line per refused request and, at debug level, per allowed
	// connection; nil means Options.Logger.
	Logger *slog.Logger
}

// Why an address is refused by default. Order matters: the specific entries (metadata
// services) come before the ranges that contain them.
var refusedRanges = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata service"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata service"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata service"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address (0.0.0.0/8)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address (127.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (10.0.0.0/8, RFC 1918)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (172.16.0.0/12, RFC 1918)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (192.168.0.0/16, RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (CGNAT) address (100.64.0.0/10)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (169.254.0.0/16)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/128"), "an unspecified address (::)"},
	{netip.MustParsePrefix("::1/128"), "a loopback address (::1)"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address (fe80::/10)"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local address (fc00::/7)"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address (ff00::/8)"},
}

// nat64 is the well-known NAT64 prefix: its addresses are checked as the IPv4 address they
// embed.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// addrGuard decides which destination addresses the proxy may dial.
type addrGuard struct {
	allowAddrs    map[netip.AddrPort]bool
	allowPrefixes []netip.Prefix
	resolve       map[string][]netip.Addr

	mu      sync.Mutex
	own     map[netip.Addr]bool
	ownTime time.Time
}

func newAddrGuard(o EgressOptions) *addrGuard {
	g := &addrGuard{allowAddrs: map[netip.AddrPort]bool{}, resolve: map[string][]netip.Addr{}}
	for _, ap := range o.AllowAddrs {
		g.allowAddrs[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
	}
	for _, p := range o.AllowPrefixes {
		g.allowPrefixes = append(g.allowPrefixes, p.Masked())
	}
	for name, addrs := range o.Resolve {
		g.resolve[normalizeHost(name)] = slices.Clone(addrs)
	}
	return g
}

// normalizeHost lower-cases a host name and drops a trailing dot and IPv6 brackets.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// ownAddrs returns the host's interface addresses, refreshed every few seconds.
func (g *addrGuard) ownAddrs() map[netip.Addr]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.own != nil && time.Since(g.ownTime) < 5*time.Second {
		return g.own
	}
	own := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok {
					own[ip.Unmap()] = true
				}
			}
		}
	}
	g.own, g.ownTime = own, time.Now()
	return own
}

// refused says why the proxy may not dial ap ("" when it may).
func (g *addrGuard) refused(ap netip.AddrPort) string {
	ip := ap.Addr().Unmap().WithZone("")
	ap = netip.AddrPortFrom(ip, ap.Port())
	if g.allowAddrs[ap] {
		return ""
	}
	for _, p := range g.allowPrefixes {
		if p.Contains(ip) {
			return ""
		}
	}
	check := ip
	if nat64.Contains(ip) {
		b := ip.As16()
		check = netip.AddrFrom4([4]byte(b[12:16]))
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(check) {
			return r.why
		}
	}
	if g.ownAddrs()[check] {
		return "an address of the host itself"
	}
	return ""
}

// errNoHost: the name does not resolve.
var errNoHost = errors.New("no such host")

// lookup resolves host to addresses: an IP literal is itself, then the static map, then DNS.
func (g *addrGuard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	if addrs, ok := g.resolve[host]; ok {
		return addrs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, fmt.Errorf("%w: %s", errNoHost, host)
		}
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s", errNoHost, host)
	}
	return addrs, nil
}

// addrRefusal is the error for a host that resolves only to addresses the proxy may not dial.
type addrRefusal struct {
	host    string
	port    int
	reasons []string // "10.0.0.5 is a private address (10.0.0.0/8, RFC 1918)"
}

func (e *addrRefusal) Error() string {
	return fmt.Sprintf("%s:%d resolves only to addresses sandboxes may not reach: %s", e.host, e.port, strings.Join(e.reasons, "; "))
}

// resolveChecked resolves host and keeps the destinations the proxy may dial; none left is an
// *addrRefusal.
func (g *addrGuard) resolveChecked(ctx context.Context, host string, port int) ([]netip.AddrPort, error) {
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var ok []netip.AddrPort
	ref := &addrRefusal{host: host, port: port}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if why := g.refused(ap); why != "" {
			ref.reasons = append(ref.reasons, ap.Addr().String()+" is "+why)
			continue
		}
		ok = append(ok, ap)
	}
	if len(ok) == 0 {
		return nil, ref
	}
	return ok, nil
}

// dialChecked resolves host, keeps the destinations the proxy may dial and connects to the
// first that answers: the address dialled is the address checked (no DNS rebinding).
func (g *addrGuard) dialChecked(ctx context.Context, host string, port int) (net.Conn, error) {
	aps, err := g.resolveChecked(ctx, host, port)
	if err != nil {
		return nil, err
	}
	return dialFirst(ctx, aps)
}

func dialFirst(ctx context.Context, aps []netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	var errs []error
	for _, ap := range aps {
		c, err := d.DialContext(ctx, "tcp", ap.String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// splitHostPort splits an authority ("host:port", "[v6]:port", "host") with a default port.
func splitHostPort(authority string, defPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(authority)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return normalizeHost(authority), defPort, nil
		}
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return normalizeHost(host), port, nil
}
