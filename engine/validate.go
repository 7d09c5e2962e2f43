package engine

import (
	"strings"
	"time"
	"unicode/utf8"
)

// validName checks a workspace name: 1–64 characters of letters, digits, '.', '_' and '-',
// starting with a letter or digit, and not shaped like an id.
func validName(name string) error {
	if name == "" {
		return badArg("name", nil, nil, "workspace name is empty")
	}
	if len(name) > 64 {
		return badArg("name", ptr(int64(64)), ptr(int64(len(name))), "workspace name %q is longer than 64 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return badArg("name", nil, nil, "workspace name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	if hasPrefix(name, wsPrefix) {
		return badArg("name", nil, nil, "workspace name %q starts with %q, which is reserved for ids; pick another name", name, wsPrefix)
	}
	return nil
}

func validLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return badArg("labels", ptr(int64(MaxLabels)), ptr(int64(len(labels))), "%d labels, but a workspace has at most %d", len(labels), MaxLabels)
	}
	for k, v := range labels {
		if k == "" || len(k) > 63 || strings.ContainsAny(k, "= \t\n") {
			return badArg("labels", nil, nil, "label key %q must be 1–63 characters without '=' or spaces", k)
		}
		if len(v) > 256 || !utf8.ValidString(v) {
			return badArg("labels", nil, nil, "label %q: value must be valid UTF-8 of at most 256 bytes", k)
		}
	}
	return nil
}

func validPorts(ports []int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return nil, badArg("exposed_ports", ptr(int64(65535)), ptr(int64(p)), "exposed port %d is outside 1–65535", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) > MaxExposedPorts {
		return nil, badArg("exposed_ports", ptr(int64(MaxExposedPorts)), ptr(int64(len(out))), "%d exposed ports, but at most %d are allowed", len(out), MaxExposedPorts)
	}
	return out, nil
}

// providerPorts checks exposed ports against what the provider can expose (Vercel: at most 15,
// none below 1024).
func (e *Engine) providerPorts(ports []int) error {
	caps := e.prov.Capabilities()
	if caps.MaxPorts > 0 && len(ports) > caps.MaxPorts {
		return badArg("exposed_ports", ptr(int64(caps.MaxPorts)), ptr(int64(len(ports))), "%d exposed ports, but the %s provider exposes at most %d", len(ports), e.prov.Name(), caps.MaxPorts)
	}
	for _, p := range ports {
		if p < caps.MinPort {
			return badArg("exposed_ports", ptr(int64(caps.MinPort)), ptr(int64(p)), "exposed port %d is below %d, the lowest port the %s provider can expose; serve on a port from %d to 65535", p, caps.MinPort, e.prov.Name(), caps.MinPort)
		}
	}
	return nil
}

// providerLifetime checks that a sandbox living d (what, e.g. "timeout_ms 90000000 plus a 2m0s
// margin") fits the provider's plan limit.
func (e *Engine) providerLifetime(d time.Duration, what string) error {
	if max := e.prov.Capabilities().MaxLifetime; max > 0 && d > max {
		return errorf(ErrInvalid, "%s needs a sandbox living %v, but the %s provider's sandboxes live at most %v (its plan limit); use a shorter timeout", what, d.Round(time.Second), e.prov.Name(), max)
	}
	return nil
}

func validEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return errorf(ErrInvalid, "environment variable name %q is invalid (empty, or contains '=' or NUL)", k)
		}
		if strings.ContainsRune(v, 0) {
			return errorf(ErrInvalid, "environment variable %s contains a NUL byte", k)
		}
	}
	return nil
}
