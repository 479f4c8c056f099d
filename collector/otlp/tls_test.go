package otlp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, in files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		return der, k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return b
	}
	srvDER, srvKey := issue(2, "otlp receiver", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliDER, cliKey := issue(3, "exporter", x509.ExtKeyUsageClientAuth, nil)
	pki := testPKI{
		caFile:   write("ca.pem", "CERTIFICATE", caDER),
		certFile: write("server.pem", "CERTIFICATE", srvDER),
		keyFile:  write("server-key.pem", "EC PRIVATE KEY", keyDER(srvKey)),
		pool:     x509.NewCertPool(),
		client:   tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey},
	}
	pki.pool.AddCert(ca)
	return pki
}

func TestTLSAndMTLS(t *testing.T) {
	pki := newTestPKI(t)
	ctx := context.Background()
	td := loadFixture(t, "stdio_pipe")
	body := fixtureBytes(t, "stdio_pipe")

	httpClient := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	grpcCreds := func(cert *tls.Certificate) grpc.DialOption {
		cfg := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}

	t.Run("tls", func(t *testing.T) {
		r, rec, _ := startReceiver(t, Config{TLS: TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile}})
		resp, answer := postHTTP(t, httpClient(nil), "https://"+r.HTTPAddr()+TracesPath, httpBody{contentType: "application/json", data: body})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", answer)
		_, _, err := exportGRPC(ctx, dialGRPC(t, r.GRPCAddr(), grpcCreds(nil)), td)
		require.NoError(t, err)
		require.Len(t, rec.take(), 4)

		// Plain HTTP to a TLS listener gets nowhere.
		resp, err = http.Post("http://"+r.HTTPAddr()+TracesPath, "application/json", nil)
		if err == nil {
			_ = resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		}
		require.Empty(t, rec.take())
	})

	t.Run("mtls", func(t *testing.T) {
		r, rec, _ := startReceiver(t, Config{TLS: TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}})
		url := "https://" + r.HTTPAddr() + TracesPath
		resp, answer := postHTTP(t, httpClient(&pki.client), url, httpBody{contentType: "application/json", data: body})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", answer)
		_, _, err := exportGRPC(ctx, dialGRPC(t, r.GRPCAddr(), grpcCreds(&pki.client)), td)
		require.NoError(t, err)
		require.Len(t, rec.take(), 4)

		req, err := http.NewRequest(http.MethodPost, url, nil)
		require.NoError(t, err)
		_, err = httpClient(nil).Do(req)
		require.Error(t, err, "no client certificate")
		_, _, err = exportGRPC(ctx, dialGRPC(t, r.GRPCAddr(), grpcCreds(nil)), td)
		require.Equal(t, codes.Unavailable, grpcstatus.Code(err), "%v", err)
		require.Empty(t, rec.take())
	})

	t.Run("bad files", func(t *testing.T) {
		set, _ := testSettings(t)
		_, err := New(Config{TLS: TLSConfig{CertFile: pki.caFile, KeyFile: pki.keyFile}}, &recorder{}, set)
		require.ErrorContains(t, err, "cannot load collector.otlp.tls certificate")
		_, err = New(Config{TLS: TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.keyFile}}, &recorder{}, set)
		require.ErrorContains(t, err, "no PEM certificate")
	})
}
