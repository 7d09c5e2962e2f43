//go:build linux

package local

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// The sandbox's /etc is one read-only directory the provider assembles when it opens (New):
// copies of the host /etc entries listed in hostEtc, plus generated identity files. Binding one
// directory instead of each entry saves some thirty mounts (about 5 ms) on every sandbox start.
// Only what any host user may read is copied (no /etc/ssl/private), and changes to the host's
// /etc reach sandboxes when the provider is next opened.
//
// The egress CA (egressca.go) is added to the TLS trust: /etc/ssl/sandkit/ca.pem holds it alone,
// /etc/ssl/sandkit/ca-bundle.pem holds the host's system roots followed by it (the proxy
// environment points SSL_CERT_FILE and friends there), and it is appended to the sandbox's copy
// of the system bundle /etc/ssl/certs/ca-certificates.crt, so programs that read only the
// system default (Go, wget, ...) trust it too. A new CA or a changed host bundle rebuilds the
// directory (the fingerprint covers both).

// hostEtc lists the /etc entries a sandbox sees read-only (when they exist on the host): what
// dynamic linking, TLS, time zones, locales and common runtimes need, and nothing with host
// secrets or host identity. passwd, group, hosts, hostname and nsswitch.conf are generated.
var hostEtc = []string{
	"alternatives", "bash.bashrc", "ca-certificates", "ca-certificates.conf", "debian_version",
	"fonts", "gai.conf", "host.conf", "inputrc", "java-*", "ld.so.cache", "ld.so.conf",
	"ld.so.conf.d", "localtime", "lsb-release", "magic", "magic.mime", "mime.types", "networks",
	"os-release", "perl", "profile", "profile.d", "protocols", "python3", "python3.*", "services",
	"shells", "ssl", "terminfo", "timezone",
}

// etcEntries expands hostEtc against the host's /etc.
func etcEntries() []string {
	var out []string
	for _, pat := range hostEtc {
		m, _ := filepath.Glob(filepath.Join("/etc", pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// generatedEtc are the files the helper writes into the stage; bwrap binds them at /etc/<name>.
func generatedEtc(home string) map[string]string {
	shell := "/bin/sh"
	if _, err := os.Stat("/bin/bash"); err == nil {
		shell = "/bin/bash"
	}
	return map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			fmt.Sprintf("%s:x:%d:%d:sandbox:%s:%s\n", sandboxUser, sandboxUID, sandboxGID, home, shell) +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":         "root:x:0:\n" + fmt.Sprintf("%s:x:%d:\n", sandboxUser, sandboxGID) + "nogroup:x:65534:\n",
		"hosts":         "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"hostname":      "sandbox\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
	}
}

// etcFormat changes when buildEtc's output changes for the same host /etc.
const etcFormat = "sandkit-etc-2"

// systemBundle is the host's (and the sandbox's) system CA bundle, relative to /etc.
const systemBundle = "ssl/certs/ca-certificates.crt"

// etcFingerprint summarizes what buildEtc would copy (names, types, sizes, modes, times, link
// targets) and generate, so an unchanged /etc is not copied again: creating the few hundred
// entries costs a noticeable fraction of a second on slow disks.
func etcFingerprint(caPEM []byte, home string) string {
	h := sha256.New()
	fmt.Fprintln(h, etcFormat)
	fmt.Fprintf(h, "ca %x\n", sha256.Sum256(caPEM))
	for _, src := range etcEntries() {
		_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			target, _ := os.Readlink(p)
			fmt.Fprintf(h, "%s %v %d %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), target)
			return nil
		})
	}
	gen := generatedEtc(home)
	names := make([]string, 0, len(gen))
	for n := range gen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %q\n", n, gen[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ensureEtc makes sure dir holds the sandbox /etc for the current host /etc.
func ensureEtc(dir string, caPEM []byte, home string) error {
	sumFile := dir + ".sum"
	sum := etcFingerprint(caPEM, home)
	if old, err := os.ReadFile(sumFile); err == nil && string(old) == sum {
		if _, err := os.Stat(dir); err == nil {
			return nil
		}
	}
	if err := buildEtc(dir, caPEM, home); err != nil {
		return err
	}
	return os.WriteFile(sumFile, []byte(sum), 0o600)
}

// buildEtc writes the sandbox /etc into dir (replacing what was there).
func buildEtc(dir string, caPEM []byte, home string) error {
	tmp := dir + ".tmp"
	if err := removeTree(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	for _, src := range etcEntries() {
		if err := copyWorldReadable(src, filepath.Join(tmp, filepath.Base(src))); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	for name, content := range generatedEtc(home) {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if len(caPEM) > 0 {
		if err := addCA(tmp, caPEM); err != nil {
			return fmt.Errorf("add the egress CA: %w", err)
		}
	}
	if err := removeTree(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// copyWorldReadable copies a file, symlink or directory tree, skipping whatever "others" may
// not read (or, for directories, enter) on the host.
func copyWorldReadable(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return nil // vanished
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if fi.Mode().Perm()&0o005 != 0o005 {
			return nil
		}
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyWorldReadable(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		if fi.Mode().Perm()&0o004 == 0 {
			return nil
		}
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	default:
		return nil // sockets, FIFOs, devices have no business in /etc
	}
}

// addCA writes the egress CA into the sandbox /etc being built in dir (see the top of the file).
func addCA(dir string, caPEM []byte) error {
	caPEM = append(bytes.TrimRight(caPEM, "\n"), '\n')
	host, err := os.ReadFile(filepath.Join("/etc", systemBundle))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(host) > 0 && host[len(host)-1] != '\n' {
		host = append(host, '\n')
	}
	bundle := append(append([]byte(nil), host...), caPEM...)
	sk := filepath.Join(dir, "ssl", "sandkit")
	if err := os.MkdirAll(sk, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sk, "ca.pem"), caPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sk, "ca-bundle.pem"), bundle, 0o644); err != nil {
		return err
	}
	// The sandbox's copy of the system bundle, when it is a plain file there.
	sys := filepath.Join(dir, systemBundle)
	if fi, err := os.Lstat(sys); err == nil && fi.Mode().IsRegular() {
		if err := os.WriteFile(sys, bundle, 0o644); err != nil {
			return err
		}
	}
	return nil
}
