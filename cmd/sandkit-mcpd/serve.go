package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// serveFlags are the flags of `sandkit-mcp serve`.
type serveFlags struct {
	http        string
	token       string
	origins     door.StringList
	idleTTL     time.Duration
	idleExit    time.Duration
	previewAddr string
	publicURL   string
	hostRoots   door.StringList

	// Derived.
	httpAddr    string
	site        *previewSite // --public-url, parsed
	previewHost netip.Addr   // --preview-addr's loopback address; invalid: no previews of our own
}

// Defaults of serve's flags.
const (
	defaultIdleTTL     = 10 * time.Minute
	defaultPreviewAddr = "127.0.0.1"
)

// serve runs the daemon in the foreground: the engine owning the data dir, the Unix-socket door,
// previews and, with --http, the HTTP door.
func serve(ctx context.Context, args []string) error {
	var f serveFlags
	cfg, _, err := parseConfig("serve", args, func(fs *flag.FlagSet) {
		fs.StringVar(&f.http, "http", "", "serve MCP over HTTP on this address")
		fs.StringVar(&f.token, "token", "", "bearer token HTTP clients must send")
		fs.Var(&f.origins, "allowed-origin", "extra origin allowed to call the HTTP door")
		fs.DurationVar(&f.idleTTL, "idle-ttl", defaultIdleTTL, "unregister HTTP sessions idle this long")
		fs.DurationVar(&f.idleExit, "idle-exit", 0, "exit after this long with nothing to do (0: never)")
		fs.StringVar(&f.previewAddr, "preview-addr", defaultPreviewAddr, "loopback address previews get their ports on")
		fs.StringVar(&f.publicURL, "public-url", "", "base URL the HTTP door serves previews under")
		door.HostRootFlag(fs, &f.hostRoots)
	})
	if err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	roots, err := door.ResolveHostRoots(f.hostRoots, "--host-root")
	if err != nil {
		return err
	}
	f.hostRoots = roots
	logger, err := door.NewLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	return runDaemon(ctx, cfg, f, logger)
}

// validate checks serve's flags and derives the listen address and the preview site.
func (f *serveFlags) validate() error {
	if f.token == "" {
		f.token = os.Getenv("SANDKIT_TOKEN")
	}
	f.token = strings.TrimSpace(f.token)
	addr, err := httpListenAddr(f.http)
	if err != nil {
		return err
	}
	f.httpAddr = addr
	if addr != "" && !isLoopbackAddr(addr) && f.token == "" {
		return usageError{fmt.Errorf("--http %s listens beyond this machine, and anyone who reaches it could run commands in your workspaces; "+
			"refusing to start without a bearer token: set SANDKIT_TOKEN (or --token) to a long random secret, or bind a loopback address such as 127.0.0.1:%s",
			addr, portOf(addr))}
	}
	if len(f.origins) > 0 && addr == "" {
		return usageError{fmt.Errorf("--allowed-origin applies to the HTTP door: add --http")}
	}
	for _, o := range f.origins {
		if _, ok := normalizeOrigin(o); !ok {
			return usageError{fmt.Errorf("--allowed-origin %q: give an origin such as https://app.example.com (scheme, host, optional port)", o)}
		}
	}
	if f.idleTTL < time.Second {
		return usageError{fmt.Errorf("--idle-ttl %v: give at least 1s (HTTP sessions idle this long are ended; default %v)", f.idleTTL, defaultIdleTTL)}
	}
	if f.idleExit < 0 {
		return usageError{fmt.Errorf("--idle-exit must be 0 (never) or a positive duration such as 15m")}
	}
	if f.publicURL != "" {
		if addr == "" {
			return usageError{fmt.Errorf("--public-url needs --http: the HTTP door is what serves previews under it")}
		}
		site, err := parsePreviewBase(f.publicURL)
		if err != nil {
			return usageError{fmt.Errorf("--public-url %v (examples: https://*.preview.example.com routes by host; https://example.com/sandkit serves BASE/p/<token>/)", err)}
		}
		f.site = &site
	} else if f.previewAddr != "" {
		host, err := previewHost(f.previewAddr)
		if err != nil {
			return err
		}
		f.previewHost = host
	}
	return nil
}

// previewHost reads --preview-addr: a loopback IP, optionally with port 0 (each preview gets a
// free port of its own). Only loopback: a preview serves only the daemon's uid, which Linux can
// tell only of connections from this machine.
func previewHost(v string) (netip.Addr, error) {
	host := v
	if h, port, err := net.SplitHostPort(v); err == nil {
		if port != "0" {
			return netip.Addr{}, usageError{fmt.Errorf("--preview-addr %q: each preview gets a free port of its own; give only the address (e.g. 127.0.0.1 or 127.0.0.1:0)", v)}
		}
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return netip.Addr{}, usageError{fmt.Errorf("--preview-addr %q: give a loopback IP address such as 127.0.0.1 or ::1 (previews are served only to this machine's daemon user; "+
			"to serve them beyond this machine use --public-url behind a proxy)", v)}
	}
	return ip, nil
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
