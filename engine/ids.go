package engine

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix + 16 random base32 characters (80 bits), e.g. "ws_k3j…".
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + idEncoding.EncodeToString(b[:])
}

// Id prefixes.
const (
	wsPrefix      = "ws_"
	commitPrefix  = "c_"
	runPrefix     = "run_"
	sessionPrefix = "ses_"
)

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
