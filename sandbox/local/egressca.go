//go:build linux

package local

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The per-installation certificate authority of the egress proxy. Sandboxes trust it (the
// curated /etc holds it; see etc.go and proxyEnv), and the proxy signs a certificate with it
// for each host whose policy rule injects headers, so it can terminate TLS there and add them.
//
// It is made once per provider directory: <Dir>/egress-ca/ca.pem (certificate) and ca-key.pem
// (ECDSA P-256 key, mode 0600, in a 0700 directory). Nothing of it is visible inside sandboxes
// but the certificate. Leaf certificates are made in memory with one key per provider process
// and cached per host.

const (
	caDirName  = "egress-ca"
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	// caValidity is how long a new CA is valid; a CA with less than caRenewBefore left is
	// replaced when a provider opens.
	caValidity    = 10 * 365 * 24 * time.Hour
	caRenewBefore = 30 * 24 * time.Hour
	// leafValidity is the lifetime of a host certificate; one expiring within leafRenewBefore
	// is made again.
	leafValidity    = 14 * 24 * time.Hour
	leafRenewBefore = 24 * time.Hour
	// maxLeaves bounds the cache of host certificates.
	maxLeaves = 4096
)

type egressCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	leafKey *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// loadOrCreateCA reads the CA under dir/egress-ca, creating it when it is missing or about to
// expire. A CA that exists but cannot be read is an error that names the file.
func loadOrCreateCA(dir string) (*egressCA, error) {
	cdir := filepath.Join(dir, caDirName)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, err
	}
	_ = os.Chmod(cdir, 0o700)
	certPath, keyPath := filepath.Join(cdir, caCertFile), filepath.Join(cdir, caKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("egress CA in %s: %w (remove %s and %s to make a new one; sandboxes started before then keep trusting the old one)", cdir, err, certPath, keyPath)
		}
		if time.Until(ca.cert.NotAfter) > caRenewBefore {
			return ca, nil
		}
	} else if !errors.Is(cerr, os.ErrNotExist) && cerr != nil || !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, fmt.Errorf("egress CA in %s: %w", cdir, errors.Join(cerr, kerr))
	}
	ca, keyPEM, err := newCA()
	if err != nil {
		return nil, err
	}
	// The key first: a crash in between leaves a key without a certificate, which is made again.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, ca.certPEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func newCA() (*egressCA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"sandkit-mcp"}, CommonName: fmt.Sprintf("sandkit-mcp egress CA (%s, %s)", host, now.UTC().Format("2006-01-02"))},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	ca, err := parseCA(certPEM, keyPEM)
	return ca, keyPEM, err
}

func parseCA(certPEM, keyPEM []byte) (*egressCA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New(caCertFile + " holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caCertFile, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return nil, errors.New(caKeyFile + " holds no PEM EC private key")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caKeyFile, err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate, or the certificate is no CA")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &egressCA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		leafKey: leafKey,
		leaves:  map[string]*tls.Certificate{},
	}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// leaf returns a certificate for host (a name or an IP literal), signed by the CA.
func (ca *egressCA) leaf(host string) (*tls.Certificate, error) {
	now := time.Now()
	ca.mu.Lock()
	if c, ok := ca.leaves[host]; ok && c.Leaf.NotAfter.Sub(now) > leafRenewBefore {
		ca.mu.Unlock()
		return c, nil
	}
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"sandkit-mcp egress proxy"}, CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: ca.leafKey, Leaf: leaf}
	ca.mu.Lock()
	if len(ca.leaves) >= maxLeaves {
		clear(ca.leaves)
	}
	ca.leaves[host] = c
	ca.mu.Unlock()
	return c, nil
}
