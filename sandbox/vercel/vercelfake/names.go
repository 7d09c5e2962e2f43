package vercelfake

import (
	"crypto/rand"
	"math/big"
	"regexp"
)

const (
	alnum      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString returns n characters drawn from alphabet.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// IDs in the service's formats (§12): "sbx_" / "snap_" / "cmd_" + 28 alphanumerics.
func newSessionID() string  { return "sbx_" + randomString(alnum, 28) }
func newSnapshotID() string { return "snap_" + randomString(alnum, 28) }
func newCommandID() string  { return "cmd_" + randomString(alnum, 28) }
func newSubdomain() string  { return "sb-" + randomString(lowerAlnum, 12) }

var (
	adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively",
		"merry", "nimble", "proud", "quiet", "rapid", "silly", "tidy", "vivid", "witty", "zesty", "bold"}
	animals = []string{"otter", "falcon", "panda", "lynx", "heron", "koala", "badger", "gecko", "walrus",
		"marten", "ibis", "tapir", "yak", "zebra", "moose", "newt", "orca", "quokka", "raven", "stoat"}
)

// newSandboxName is a random "<adj>-<adj>-<animal>-<6>" name, as the service makes when none is
// given.
func newSandboxName() string {
	pick := func(list []string) string { return list[randomIndex(len(list))] }
	return pick(adjectives) + "-" + pick(adjectives) + "-" + pick(animals) + "-" + randomString(lowerAlnum, 6)
}

func randomIndex(n int) int {
	k, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err)
	}
	return int(k.Int64())
}

// nameRe is the sandbox name syntax (≤128 characters of [a-zA-Z0-9_-]).
var nameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
