package identitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// CA is a certificate authority for tests.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool is a cert pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is an issued certificate and its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
}

// Server issues a server certificate for 127.0.0.1, ::1, localhost and the extra DNS names.
func (ca *CA) Server(t testing.TB, dnsNames ...string) Leaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "server"},
		DNSNames:    append([]string{"localhost"}, dnsNames...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate with the common name cn and, when spiffeID is not
// empty, that URI SAN.
func (ca *CA) Client(t testing.TB, cn, spiffeID string) Leaf {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if spiffeID != "" {
		u, err := url.Parse(spiffeID)
		require.NoError(t, err)
		tmpl.URIs = []*url.URL{u}
	}
	return ca.issue(t, tmpl)
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate) Leaf {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	l := Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	require.NoError(t, err)
	return l
}

// WriteFiles writes the leaf's certificate and key under dir as name.crt and name.key and
// returns their paths.
func (l Leaf) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, l.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, l.KeyPEM, 0o600))
	return certFile, keyFile
}

// WriteFile writes the CA certificate under dir as name.crt and returns its path.
func (ca *CA) WriteFile(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".crt")
	require.NoError(t, os.WriteFile(p, ca.PEM, 0o600))
	return p
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	return n
}

// Signer is a JWT signing key with its key id.
type Signer struct {
	KID    string
	Method jwt.SigningMethod
	Key    crypto.Signer
}

// NewRSA, NewES256 and NewEd25519 make signing keys for RS256, ES256 and EdDSA tokens.
func NewRSA(t testing.TB, kid string) Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return Signer{KID: kid, Method: jwt.SigningMethodRS256, Key: k}
}

func NewES256(t testing.TB, kid string) Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return Signer{KID: kid, Method: jwt.SigningMethodES256, Key: k}
}

func NewEd25519(t testing.TB, kid string) Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return Signer{KID: kid, Method: jwt.SigningMethodEdDSA, Key: k}
}

// Sign makes a token with the claims; a zero exp leaves exp out.
func (s Signer) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.Method, claims)
	if s.KID != "" {
		tok.Header["kid"] = s.KID
	}
	out, err := tok.SignedString(s.Key)
	require.NoError(t, err)
	return out
}

// SignHMAC makes an HS256 token with the claims.
func SignHMAC(t testing.TB, secret string, claims jwt.MapClaims) string {
	t.Helper()
	out, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	require.NoError(t, err)
	return out
}

// JWKS is the JSON Web Key Set of the signers' public keys.
func JWKS(t testing.TB, signers ...Signer) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var keys []map[string]string
	for _, s := range signers {
		k := map[string]string{"kid": s.KID, "use": "sig", "alg": s.Method.Alg()}
		switch pub := s.Key.Public().(type) {
		case *rsa.PublicKey:
			k["kty"], k["n"], k["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
		case *ecdsa.PublicKey:
			raw, err := pub.Bytes() // 0x04 || x || y
			require.NoError(t, err)
			size := (len(raw) - 1) / 2
			k["kty"], k["crv"], k["x"], k["y"] = "EC", "P-256", b64(raw[1:1+size]), b64(raw[1+size:])
		case ed25519.PublicKey:
			k["kty"], k["crv"], k["x"] = "OKP", "Ed25519", b64(pub)
		default:
			t.Fatalf("unsupported key %T", pub)
		}
		keys = append(keys, k)
	}
	out, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return out
}
