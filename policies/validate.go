package policies

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// invalid wraps ErrInvalid around a message that names the offending part and says what to write.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// normalizeAllow is Normalize for mode "allow".
func normalizeAllow(p Policy) (Policy, error) {
	if len(p.Domains) == 0 && len(p.Services) == 0 {
		return Policy{}, invalid("mode \"allow\" needs at least one domain or service (for no network use mode \"deny-all\")")
	}
	domains, err := normalizeDomains(p.Domains, "")
	if err != nil {
		return Policy{}, err
	}
	out := Policy{Mode: Allow, Domains: domains}
	written := map[string]string{} // canonical id -> id as written, to report duplicates
	for i, s := range p.Services {
		n, err := normalizeService(i, s)
		if err != nil {
			return Policy{}, err
		}
		if first, dup := written[n.ID]; dup {
			what := fmt.Sprintf("service %q appears twice", n.ID)
			if first != strings.TrimSpace(s.ID) {
				what = fmt.Sprintf("services %q and %q are the same service (%q)", first, strings.TrimSpace(s.ID), n.ID)
			}
			return Policy{}, invalid("%s; list each service once (merge the domains and headers of a custom service into one entry)", what)
		}
		written[n.ID] = strings.TrimSpace(s.ID)
		out.Services = append(out.Services, n)
	}
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].ID < out.Services[j].ID })
	if err := checkConflicts(out.Services); err != nil {
		return Policy{}, err
	}
	return out, nil
}

// normalizeDomains normalizes, de-duplicates and sorts a list of domain patterns; nil when empty.
// where prefixes error messages ("service \"x\": ").
func normalizeDomains(in []string, where string) ([]string, error) {
	var out []string
	for _, d := range in {
		n, err := normalizeDomain(d)
		if err != nil {
			return nil, invalid("%s%v", where, err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeDomain checks one domain pattern and returns it lower-case without a trailing dot. Its
// errors do not wrap ErrInvalid (callers add it with some context).
func normalizeDomain(d string) (string, error) {
	orig := d
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", errors.New("empty domain in the list")
	}
	if strings.Contains(d, "://") {
		return "", fmt.Errorf("domain %q has a scheme; a policy names hosts only%s", orig, suggestHost(d))
	}
	if strings.ContainsAny(d, "/?#") {
		return "", fmt.Errorf("domain %q has a path; a policy names hosts only (every path of an allowed host is reachable)%s", orig, suggestHost(d))
	}
	if strings.Contains(d, "@") {
		return "", fmt.Errorf("domain %q has user info; a policy names hosts only%s", orig, suggestHost(d))
	}
	if strings.ContainsAny(d, "[]") || strings.Count(d, ":") > 1 {
		return "", fmt.Errorf("domain %q looks like an IP address; policies name hosts by domain name only", orig)
	}
	if strings.Contains(d, ":") {
		return "", fmt.Errorf("domain %q has a port; list the host name only (every port of an allowed host is reachable)%s", orig, suggestHost(d))
	}
	if len(d) > 253 {
		return "", fmt.Errorf("domain %q is longer than 253 characters", orig)
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if strings.Contains(l, "*") {
			return "", fmt.Errorf("domain %q: a wildcard is allowed only as the whole first label (\"*.example.com\", which matches the subdomains of example.com)", orig)
		}
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("domain %q has an empty or over-long label (labels have 1 to 63 characters)", orig)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				hint := ""
				if r > 127 {
					hint = " (write an internationalized name in its xn-- form)"
				}
				return "", fmt.Errorf("domain %q contains %q; use letters, digits, '-' and '.'%s", orig, r, hint)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("domain %q has a label starting or ending with '-'", orig)
		}
	}
	if len(labels) == 1 {
		return "", fmt.Errorf("domain %q is a single label; write the full host name (e.g. \"registry.example.com\")", orig)
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("domain %q looks like an IP address; policies name hosts by domain name only", orig)
	}
	return d, nil
}

// suggestHost returns `; write "host"` for a URL-ish domain whose host part is a valid pattern.
func suggestHost(d string) string {
	if _, rest, ok := strings.Cut(d, "://"); ok {
		d = rest
	}
	if i := strings.IndexAny(d, "/?#"); i >= 0 {
		d = d[:i]
	}
	if i := strings.LastIndex(d, "@"); i >= 0 {
		d = d[i+1:]
	}
	if host, port, ok := strings.Cut(d, ":"); ok && port != "" && strings.Trim(port, "0123456789") == "" {
		d = host
	}
	if strings.ContainsAny(d, ":/?#@[]") {
		return "" // no clean host to suggest (and normalizeDomain would come back here)
	}
	if n, err := normalizeDomain(d); err == nil {
		return fmt.Sprintf("; write %q", n)
	}
	return ""
}

// validID reports whether id (lower-case) is a service id: a letter or digit, then letters,
// digits, '-' and '_', at most 64 characters. Ids have no '.', so they never look like domains.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// normalizeService checks the i-th service (0-based) and returns it in canonical form.
func normalizeService(i int, s Service) (Service, error) {
	id := strings.ToLower(strings.TrimSpace(s.ID))
	if id == "" {
		return Service{}, invalid("service #%d has no id; name a preset (%s) or give a custom service an id and its domains", i+1, presetNames())
	}
	if !validID(id) {
		return Service{}, invalid("service id %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit, at most 64 characters (e.g. \"internal-api\")", s.ID)
	}
	if pr := lookupPreset(id); pr != nil {
		if len(s.Domains) > 0 {
			return Service{}, invalid("service %q is a preset and brings its own domains (%s); remove \"domains\" (list other hosts in the policy's \"domains\", or in a custom service with another id)", id, strings.Join(pr.domains, ", "))
		}
		if len(s.Headers) > 0 {
			return Service{}, invalid("service %q is a preset and brings its own headers; remove \"headers\" (to take its credential from elsewhere, set \"credential\")", id)
		}
		out := Service{ID: pr.id}
		if s.Credential != nil {
			if len(pr.env) == 0 {
				return Service{}, invalid("preset %q sends no credential, so it takes none; remove \"credential\" (for a registry that needs one, write a custom service with \"headers\")", id)
			}
			c, err := normalizeCredential(*s.Credential, pr.env)
			if err != nil {
				return Service{}, invalid("service %q credential: %v", id, err)
			}
			out.Credential = &c
		}
		return out, nil
	}
	if len(s.Domains) == 0 && len(s.Headers) == 0 {
		return Service{}, invalid("unknown preset %q (known presets: %s); for a custom service, give its \"domains\"", id, presetNames())
	}
	if s.Credential != nil {
		return Service{}, invalid("custom service %q: \"credential\" is for presets only; give each of its headers its own \"credential\"", id)
	}
	if len(s.Domains) == 0 {
		return Service{}, invalid("custom service %q needs \"domains\": the hosts it reaches, which its headers apply to", id)
	}
	where := fmt.Sprintf("service %q: ", id)
	domains, err := normalizeDomains(s.Domains, where)
	if err != nil {
		return Service{}, err
	}
	out := Service{ID: id, Domains: domains}
	for j, h := range s.Headers {
		n, err := normalizeHeader(id, j, h, domains)
		if err != nil {
			return Service{}, err
		}
		out.Headers = append(out.Headers, n)
	}
	sort.SliceStable(out.Headers, func(a, b int) bool {
		ha, hb := out.Headers[a], out.Headers[b]
		if ha.Name != hb.Name {
			return ha.Name < hb.Name
		}
		return strings.Join(ha.Domains, ",") < strings.Join(hb.Domains, ",")
	})
	return out, nil
}

// forbiddenHeader reports whether a (lower-case) header name belongs to the connection or the
// proxy rather than to the request: hop-by-hop headers, framing, Host and proxy-*.
func forbiddenHeader(name string) bool {
	switch name {
	case "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade":
		return true
	}
	return strings.HasPrefix(name, "proxy-")
}

// IsToken reports whether s is an RFC 7230 token (the characters of a header name or method).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be part of a header value: no control characters but
// horizontal tab (in particular no line breaks, which would inject headers).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// normalizeHeader checks the j-th header transform (0-based) of custom service id, whose
// normalized domains are domains.
func normalizeHeader(id string, j int, h Header, domains []string) (Header, error) {
	name := strings.ToLower(strings.TrimSpace(h.Name))
	if name == "" {
		return Header{}, invalid("service %q: header #%d has no name (e.g. \"authorization\")", id, j+1)
	}
	if !IsToken(name) {
		return Header{}, invalid("service %q: header name %q has characters a header name cannot have; use letters, digits and !#$%%&'*+-.^_`|~ (e.g. \"x-api-key\")", id, h.Name)
	}
	if forbiddenHeader(name) {
		return Header{}, invalid("service %q: header %q belongs to the connection, not the request, and cannot be set (nor can host, content-length, transfer-encoding, connection, keep-alive, te, trailer, upgrade, proxy-*); send the credential in another header, e.g. \"authorization\"", id, name)
	}
	if !validFieldValue(h.Prefix) {
		return Header{}, invalid("service %q: header %q: the prefix has a control character (a line break?); write e.g. \"Bearer \"", id, name)
	}
	if h.Encoding != "" && h.Encoding != encodingBasic {
		return Header{}, invalid("service %q: header %q: unknown encoding %q; use \"\" (the credential as it is) or %q (base64 of \"x-access-token:\" + credential)", id, name, h.Encoding, encodingBasic)
	}
	hd, err := normalizeDomains(h.Domains, fmt.Sprintf("service %q: header %q: ", id, name))
	if err != nil {
		return Header{}, err
	}
	for _, d := range hd {
		if !slices.Contains(domains, d) {
			return Header{}, invalid("service %q: header %q: domain %q is not one of the service's domains (%s); add it to the service's \"domains\" or remove it from the header's", id, name, d, strings.Join(domains, ", "))
		}
	}
	c, err := normalizeCredential(h.Credential, nil)
	if err != nil {
		return Header{}, invalid("service %q: header %q credential: %v", id, name, err)
	}
	return Header{Domains: hd, Name: name, Prefix: h.Prefix, Encoding: h.Encoding, Credential: c}, nil
}

// CredentialEnvPrefix starts the name of every server environment variable a policy may name
// explicitly. Without this rule an agent could write a custom service that sends any secret of
// the server (VERCEL_ACCESS_TOKEN, AWS_SECRET_ACCESS_KEY, …) to a host it controls; operators
// opt a secret in by exporting it under this prefix. Presets' own defaults (GITHUB_TOKEN, …) are
// exempt: they only ever go to the preset's fixed hosts.
const CredentialEnvPrefix = "SANDKIT_CRED_"

// normalizeCredential checks that c has exactly one valid source (own lists a preset's default
// variables, which its credential may name besides CredentialEnvPrefix ones). Its errors never show a literal
// value and do not wrap ErrInvalid (callers add it).
func normalizeCredential(c Credential, own []string) (Credential, error) {
	var set []string
	if c.Env != "" {
		set = append(set, "\"env\"")
	}
	if c.Value != "" {
		set = append(set, "\"value\"")
	}
	if c.Redacted {
		set = append(set, "\"redacted\"")
	}
	switch len(set) {
	case 0:
		return Credential{}, errors.New(`no source; give {"env": "NAME"} (an environment variable of the server) or {"value": "…"} (a literal secret, per-run policies only); an empty value is not a credential`)
	case 1:
	default:
		return Credential{}, fmt.Errorf("give exactly one of \"env\", \"value\" or \"redacted\", not %s", strings.Join(set, " and "))
	}
	switch {
	case c.Env != "":
		if !validEnvName(c.Env) {
			return Credential{}, fmt.Errorf("environment variable name %q is not valid; use letters, digits and '_', not starting with a digit (e.g. \"SANDKIT_CRED_GITHUB\")", c.Env)
		}
		if !strings.HasPrefix(c.Env, CredentialEnvPrefix) && !slices.Contains(own, c.Env) {
			return Credential{}, fmt.Errorf("environment variable %q cannot be named in a policy: a policy may only send the server's variables whose names start with %q "+
				"(the operator exports a secret for agents by naming it so), apart from each preset's own default variable, which only ever goes to that preset's hosts", c.Env, CredentialEnvPrefix)
		}
	case c.Value != "":
		if strings.TrimSpace(c.Value) == "" {
			return Credential{}, errors.New(`the literal value is blank; give the secret, or use {"env": "NAME"}`)
		}
		if !validFieldValue(c.Value) {
			return Credential{}, errors.New("the literal value has a control character (a line break?), which a header cannot carry")
		}
	}
	return c, nil
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// expand returns the domains and header transforms of a normalized service: a preset's own, with
// the credential of the service (its override, or the preset's default environment variable), or
// a custom service's. pr is the preset (nil for a custom service).
func expand(s Service) (domains []string, headers []Header, pr *preset) {
	pr = lookupPreset(strings.ToLower(strings.TrimSpace(s.ID)))
	if pr == nil || len(s.Domains) > 0 || len(s.Headers) > 0 {
		// A custom service (or an invalid preset entry, described as written).
		return s.Domains, s.Headers, nil
	}
	cred := Credential{}
	if s.Credential != nil {
		cred = *s.Credential
	} else if len(pr.env) > 0 {
		cred = Credential{Env: pr.env[0]}
	}
	headers = make([]Header, len(pr.headers))
	for i, h := range pr.headers {
		h.Credential = cred
		headers[i] = h
	}
	return pr.domains, headers, pr
}

// checkConflicts fails when two transforms set the same header on the same domain pattern, within
// a service or across services: the proxy could not know which value to send.
func checkConflicts(services []Service) error {
	set := map[[2]string]string{} // {pattern, header} -> service id
	for _, s := range services {
		domains, headers, _ := expand(s)
		for _, h := range headers {
			targets := h.Domains
			if len(targets) == 0 {
				targets = domains
			}
			for _, d := range targets {
				key := [2]string{d, h.Name}
				if other, dup := set[key]; dup {
					if other == s.ID {
						return invalid("service %q sets header %q twice for %q; keep one transform per header and domain", s.ID, h.Name, d)
					}
					return invalid("services %q and %q both set header %q on %q; keep one of them (or narrow a custom service's header \"domains\")", other, s.ID, h.Name, d)
				}
				set[key] = s.ID
			}
		}
	}
	return nil
}
