package alerting_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, as PEM
// files.
type testPKI struct {
	pool                          *x509.CertPool
	caFile                        string
	serverCert                    tls.Certificate
	clientCertFile, clientKeyFile string
	otherCertFile, otherKeyFile   string // a client certificate from another CA
}

func newPKI(t *testing.T) testPKI {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, der
	}
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, usage x509.ExtKeyUsage, ip net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "mcpwatch-alerting"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return der
	}

	ca, caKey, caDER := newCA("test CA")
	var p testPKI
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := leaf(ca, caKey, 2, x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	var err error
	p.serverCert, err = tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER(srvKey)}))
	require.NoError(t, err)
	cliDER, cliKey := leaf(ca, caKey, 3, x509.ExtKeyUsageClientAuth, nil)
	p.clientCertFile = write("client.pem", "CERTIFICATE", cliDER)
	p.clientKeyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER(cliKey))

	other, otherKey, _ := newCA("other CA")
	oDER, oKey := leaf(other, otherKey, 4, x509.ExtKeyUsageClientAuth, nil)
	p.otherCertFile = write("other.pem", "CERTIFICATE", oDER)
	p.otherKeyFile = write("other-key.pem", "EC PRIVATE KEY", keyDER(oKey))
	return p
}

// TestWebhookMutualTLS: a real TLS server that requires client certificates from its CA gets
// the alert from a webhook configured with the CA and a client certificate; a webhook with a
// certificate from another CA, or none, is refused by the TLS handshake.
func TestWebhookMutualTLS(t *testing.T) {
	pki := newPKI(t)
	rec := &receiver{}
	srv := httptest.NewUnstartedServer(rec)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	rec.srv = srv

	brokers := startBroker(t)
	pending := lag(t, brokers)
	good := hook("mtls", srv.URL)
	good.TLS = alerting.ClientTLS{CAFile: pki.caFile, CertFile: pki.clientCertFile, KeyFile: pki.clientKeyFile}
	stranger := hook("stranger", srv.URL)
	stranger.TLS = alerting.ClientTLS{CAFile: pki.caFile, CertFile: pki.otherCertFile, KeyFile: pki.otherKeyFile}
	anonymous := hook("anonymous", srv.URL)
	anonymous.TLS = alerting.ClientTLS{CAFile: pki.caFile}
	untrusting := hook("untrusting", srv.URL) // system roots: the test CA is unknown
	untrusting.TLS = alerting.ClientTLS{CertFile: pki.clientCertFile, KeyFile: pki.clientKeyFile}
	// A refused handshake is a configuration problem, not an outage: dead-lettered after the
	// budget rather than waited out.
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{good, stranger, anonymous, untrusting}, Retry: fastRetry}), brokers, nil)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	got := rec.requests()
	require.Len(t, got, 1, "only the webhook with a client certificate from the server's CA gets through")
	require.Equal(t, http.MethodPost, got[0].method)
	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 3)
	errs := map[string]string{}
	for _, d := range dead {
		errs[header(d, alerting.DLQHeaderSink)] = header(d, alerting.DLQHeaderError)
	}
	require.Contains(t, errs["stranger"], "remote error: tls: unknown certificate authority")
	require.Contains(t, errs["anonymous"], "remote error: tls: certificate required")
	require.Contains(t, errs["untrusting"], "x509: certificate signed by unknown authority")
}

func TestClientTLSConfigErrors(t *testing.T) {
	pki := newPKI(t)
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	for _, tc := range []struct {
		name string
		tls  alerting.ClientTLS
		want string
	}{
		{"missing CA", alerting.ClientTLS{CAFile: "/nonexistent/ca.pem"}, "cannot read tls.ca_file"},
		{"CA not PEM", alerting.ClientTLS{CAFile: notPEM}, "holds no PEM certificate"},
		{"key does not match", alerting.ClientTLS{CertFile: pki.clientCertFile, KeyFile: pki.otherKeyFile}, "cannot load tls.cert_file and tls.key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.tls.Config()
			require.ErrorContains(t, err, tc.want)
			h := hook("soc", "https://127.0.0.1:1/")
			h.TLS = tc.tls
			cfg := alerting.Config{Webhooks: []alerting.WebhookConfig{h}}
			cfg.SetDefaults()
			_, err = alerting.New(cfg, openStore(t), nil, testBusConfig(), pipelineSettings())
			require.ErrorContains(t, err, "cannot set up webhook sink soc")
		})
	}
	c, err := alerting.ClientTLS{CAFile: pki.caFile, CertFile: pki.clientCertFile, KeyFile: pki.clientKeyFile, ServerName: "siem.internal"}.Config()
	require.NoError(t, err)
	require.Equal(t, "siem.internal", c.ServerName)
	require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
	require.NotNil(t, c.GetClientCertificate)
}
