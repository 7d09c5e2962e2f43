package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Preview URLs reach a port inside a live session: this proxy relays requests to the session
// through the dialer the engine returns for a token. Without --public-url each preview has a
// loopback port of its own, served only to the daemon's uid (previewports.go). With --public-url
// the HTTP door serves every preview under one base, routed by the token in the URL:
//
//   - a host pattern with one "*" replaced by the token, routed by Host:
//     https://*.preview.example.com behind a wildcard DNS name;
//   - a plain base such as https://example.com/sandkit, routed by path: BASE/p/<token>/…; the
//     prefix is stripped before the request reaches the app, and X-Forwarded-Prefix carries it
//     (apps that emit absolute paths need a base-path setting to work there).
//
// There the token is unguessable and is the only credential: preview requests need no bearer
// token.

// previewSite is one preview base and how requests map back to tokens.
type previewSite struct {
	scheme string
	// Host mode: the URL is scheme://<hostPrefix><token><hostSuffix><port>/.
	hostPrefix, hostSuffix, port string
	// Path mode: the URL is base + "/p/<token>/", routed on pathPrefix = <base path>/p/.
	base, pathPrefix string
}

const wildcardMark = "sandkit-wildcard-mark"

// parsePreviewBase reads a preview base URL (see above).
func parsePreviewBase(base string) (previewSite, error) {
	if strings.Count(base, "*") > 1 {
		return previewSite{}, fmt.Errorf("%q has more than one '*'", base)
	}
	u, err := url.Parse(strings.Replace(base, "*", wildcardMark, 1))
	if err != nil {
		return previewSite{}, fmt.Errorf("%q is not a URL: %v", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return previewSite{}, fmt.Errorf("%q: use an http:// or https:// URL", base)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return previewSite{}, fmt.Errorf("%q: give scheme, host and optionally a path, nothing else", base)
	}
	s := previewSite{scheme: u.Scheme}
	host := strings.ToLower(u.Hostname())
	if port := u.Port(); port != "" {
		s.port = ":" + port
	}
	if i := strings.Index(host, wildcardMark); i >= 0 {
		if strings.Contains(u.Path, wildcardMark) || strings.Trim(u.Path, "/") != "" {
			return previewSite{}, fmt.Errorf("%q: with a '*' host pattern the URL has no path", base)
		}
		s.hostPrefix, s.hostSuffix = host[:i], host[i+len(wildcardMark):]
		if s.hostSuffix == "" || !strings.HasPrefix(s.hostSuffix, ".") && !strings.HasPrefix(s.hostSuffix, "-") {
			return previewSite{}, fmt.Errorf("%q: the '*' must stand for a whole label or a label's start, as in https://*.preview.example.com", base)
		}
		return s, nil
	}
	if strings.Contains(u.Path, wildcardMark) {
		return previewSite{}, fmt.Errorf("%q: the '*' belongs in the host name", base)
	}
	p := strings.TrimRight(u.Path, "/")
	s.base = u.Scheme + "://" + u.Host + p
	s.pathPrefix = p + "/p/"
	return s, nil
}

// hostMode reports whether the site routes by Host.
func (s previewSite) hostMode() bool { return s.pathPrefix == "" }

// url is the preview URL of a token.
func (s previewSite) url(token string) string {
	if s.hostMode() {
		return s.scheme + "://" + s.hostPrefix + token + s.hostSuffix + s.port + "/"
	}
	return s.base + "/p/" + token + "/"
}

// match finds the token a request is for; prefix is the path prefix to strip (path mode).
func (s previewSite) match(r *http.Request) (token, prefix string, ok bool) {
	if s.hostMode() {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if !strings.HasPrefix(host, s.hostPrefix) || !strings.HasSuffix(host, s.hostSuffix) ||
			len(host) <= len(s.hostPrefix)+len(s.hostSuffix) {
			return "", "", false
		}
		token = host[len(s.hostPrefix) : len(host)-len(s.hostSuffix)]
		return token, "", validToken(token)
	}
	rest, found := strings.CutPrefix(r.URL.Path, s.pathPrefix)
	if !found {
		return "", "", false
	}
	token, _, _ = strings.Cut(rest, "/")
	return token, s.pathPrefix + token, validToken(token)
}

func validToken(t string) bool {
	if t == "" || len(t) > 63 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// previewResolver is the engine's side of previews.
type previewResolver interface {
	Preview(token string) (engine.PreviewTarget, func(ctx context.Context) (net.Conn, error), error)
}

// previewProxy serves preview URLs of one site.
type previewProxy struct {
	site previewSite
	// public: requests arrive through the HTTP door, probably behind a TLS-terminating proxy, so
	// the scheme the browser used is the base's.
	public    bool
	eng       previewResolver
	log       *slog.Logger
	transport *http.Transport
}

type dialerKey struct{}

func newPreviewProxy(site previewSite, public bool, eng previewResolver, log *slog.Logger) *previewProxy {
	return &previewProxy{site: site, public: public, eng: eng, log: log, transport: &http.Transport{
		// The outbound URL's host names the token (see Rewrite), so pooled connections are only
		// reused for the same session and port; the dialer travels in the request context.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dial, _ := ctx.Value(dialerKey{}).(func(context.Context) (net.Conn, error))
			if dial == nil {
				return nil, errors.New("no preview dialer")
			}
			return dial(ctx)
		},
		Proxy:               nil, // never the host's HTTP_PROXY
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// matches reports whether a request is for this site's previews.
func (p *previewProxy) matches(r *http.Request) bool {
	_, _, ok := p.site.match(r)
	if !ok && !p.site.hostMode() {
		// A malformed token under the path prefix is still ours to answer (404).
		return strings.HasPrefix(r.URL.Path, p.site.pathPrefix)
	}
	return ok
}

func (p *previewProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, prefix, ok := p.site.match(r)
	if !ok {
		example := p.site.url("TOKEN")
		http.Error(w, "404 Not Found: this is sandkit-mcp's preview server; preview URLs look like "+example+
			" and come from the session_url tool.", http.StatusNotFound)
		return
	}
	p.serveToken(w, r, token, prefix)
}

// serveToken relays a request for token's preview to its session; prefix is the path prefix to
// strip (path mode), or "".
func (p *previewProxy) serveToken(w http.ResponseWriter, r *http.Request, token, prefix string) {
	if prefix != "" && r.URL.Path == prefix {
		u := *r.URL
		u.Path = prefix + "/"
		u.RawPath = ""
		http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	target, dial, err := p.eng.Preview(token)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			http.Error(w, "404 Not Found: no live preview at this address. The session it belonged to has ended, "+
				"or the URL is from before the sandkit-mcp daemon restarted; call session_url again for a fresh URL.", http.StatusNotFound)
			return
		}
		http.Error(w, "502 Bad Gateway: "+err.Error(), http.StatusBadGateway)
		return
	}
	rp := &httputil.ReverseProxy{
		Transport: p.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = fmt.Sprintf("%s.sandkit-preview:%d", token, target.Port)
			if prefix != "" {
				pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
				pr.Out.URL.RawPath = ""
				if pr.Out.URL.Path == "" {
					pr.Out.URL.Path = "/"
				}
			}
			pr.SetXForwarded()
			if p.public {
				pr.Out.Header.Set("X-Forwarded-Proto", p.site.scheme)
			}
			if prefix != "" {
				pr.Out.Header.Set("X-Forwarded-Prefix", prefix)
			}
			// The app sees the Host the browser used (X-Forwarded-Host says the same).
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.proxyError(w, r, target, err)
		},
	}
	rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), dialerKey{}, dial)))
}

func (p *previewProxy) proxyError(w http.ResponseWriter, r *http.Request, t engine.PreviewTarget, err error) {
	if r.Context().Err() != nil {
		return // the browser went away
	}
	switch {
	case errors.Is(err, sandbox.ErrRefused) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, engine.ErrInvalid):
		http.Error(w, fmt.Sprintf("502 Bad Gateway: nothing listens on port %d in session %s. Start the server inside the session "+
			"(session_exec with background=true), bound to 127.0.0.1:%d or 0.0.0.0:%d, then reload this page.", t.Port, t.SessionID, t.Port, t.Port),
			http.StatusBadGateway)
	case errors.Is(err, engine.ErrNotFound):
		http.Error(w, "404 Not Found: the session behind this preview has ended; call session_url again in a live session.", http.StatusNotFound)
	default:
		p.log.Debug("preview: proxy error", "session", t.SessionID, "port", t.Port, "err", err)
		http.Error(w, fmt.Sprintf("502 Bad Gateway: could not reach port %d in session %s: %v", t.Port, t.SessionID, err), http.StatusBadGateway)
	}
}
