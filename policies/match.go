package policies

import (
	"maps"
	"strings"
)

// Match finds the rule for host: deny-all matches nothing; allow-all matches every host (no
// headers); allow matches the most specific pattern (an exact host beats a wildcard, a longer
// wildcard suffix beats a shorter one). Headers of several services on one pattern are merged.
//
// host is a bare host name (no port); case and a trailing dot do not matter. Under allow-all the
// result is the zero HostRule. The returned Headers map is a copy. Rules of another mode (the zero
// Rules) match nothing.
func (r Rules) Match(host string) (HostRule, bool) {
	switch r.Mode {
	case AllowAll:
		return HostRule{}, true
	case Allow:
	default:
		return HostRule{}, false
	}
	h := canonical(host)
	best, bestScore := "", -1
	for _, hr := range r.Hosts {
		p := canonical(hr.Pattern)
		if !matchCanonical(p, h) {
			continue
		}
		if s := specificity(p); s > bestScore {
			best, bestScore = p, s
		}
	}
	if bestScore < 0 {
		return HostRule{}, false
	}
	out := HostRule{Pattern: best}
	var ids []string
	for _, hr := range r.Hosts {
		if canonical(hr.Pattern) != best {
			continue
		}
		if len(hr.Headers) > 0 {
			if out.Headers == nil {
				out.Headers = map[string]string{}
			}
			maps.Copy(out.Headers, hr.Headers)
		}
		if hr.Service != "" {
			ids = append(ids, hr.Service)
		}
	}
	out.Service = strings.Join(ids, ",")
	return out, true
}

// specificity ranks a matching canonical pattern: an exact host above every wildcard, and a
// wildcard by the number of labels of its suffix.
func specificity(p string) int {
	if suffix, ok := strings.CutPrefix(p, "*."); ok {
		return strings.Count(suffix, ".") + 1
	}
	return 1 << 20
}

// MatchPattern reports whether host matches pattern (exact, or "*.suffix" for subdomains only;
// case-insensitive; trailing dots ignored).
//
// A wildcard matches subdomains at any depth ("*.example.com" matches "a.b.example.com") but never
// the suffix itself. A host with an empty label or a '*' matches nothing.
func MatchPattern(pattern, host string) bool {
	return matchCanonical(canonical(pattern), canonical(host))
}

// canonical lower-cases a host or pattern and drops one trailing dot.
func canonical(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

func matchCanonical(p, h string) bool {
	if p == "" || h == "" || strings.Contains(h, "*") || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	if suffix, ok := strings.CutPrefix(p, "*."); ok {
		if suffix == "" || strings.Contains(suffix, "*") {
			return false
		}
		rest, ok := strings.CutSuffix(h, "."+suffix)
		return ok && rest != ""
	}
	return !strings.Contains(p, "*") && p == h
}
