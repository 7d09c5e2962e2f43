package sandbox

import (
	"fmt"
	"path"
	"strings"
)

// SplitPath cleans a contract path (see Paths in the package doc) and splits it into its root —
// WorkspaceDir or home, the provider's Capabilities.HomeDir — and the clean path relative to that
// root ("." for the root itself). It is lexical: symbolic links are the provider's to follow. A
// path outside both roots fails with ErrPathEscape, an empty one or one with a NUL byte with
// ErrInvalid.
func SplitPath(p, home string) (root, rel string, err error) {
	if p == "" {
		return "", "", fmt.Errorf("%w: empty path", ErrInvalid)
	}
	if strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("%w: path %q contains a NUL byte", ErrInvalid, p)
	}
	if !path.IsAbs(p) {
		rel = path.Clean(p)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", "", fmt.Errorf("%w: path %q leaves /workspace through \"..\"", ErrPathEscape, p)
		}
		return WorkspaceDir, rel, nil
	}
	c := path.Clean(p)
	for _, r := range []string{WorkspaceDir, home} {
		if r == "" || r == "/" {
			continue
		}
		if c == r {
			return r, ".", nil
		}
		if rest, ok := strings.CutPrefix(c, r+"/"); ok {
			return r, rest, nil
		}
	}
	if home == "" {
		return "", "", fmt.Errorf("%w: path %q is outside /workspace", ErrPathEscape, p)
	}
	return "", "", fmt.Errorf("%w: path %q is outside /workspace and %s (the home directory)", ErrPathEscape, p, home)
}

// Within reports whether the clean relative path rel equals dir or lies inside it (both relative
// to the same root, as SplitPath returns them).
func Within(rel, dir string) bool {
	return dir == "." || rel == dir || strings.HasPrefix(rel, dir+"/")
}
