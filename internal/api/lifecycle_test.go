package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestLifecycle(t *testing.T) {
	checkLeaks(t)
	ctx := context.Background()
	s, err := New(Config{Listen: "127.0.0.1:0"}, newTestStore(t), nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:0", s.Addr(), "before Start, the configured address")

	require.NoError(t, s.Start(ctx))
	require.NotEqual(t, "127.0.0.1:0", s.Addr(), "after Start, the bound address")
	require.ErrorContains(t, s.Start(ctx), "already started")

	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	code, body := get(t, c, "http://"+s.Addr()+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, _ = get(t, c, "http://"+s.Addr()+"/metrics")
	require.Equal(t, http.StatusOK, code, "settings.Registry backs /metrics when no gatherer is given")
	tr.CloseIdleConnections()

	addr := s.Addr()
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, s.Shutdown(ctx), "second Shutdown is a no-op")
	_, err = net.Dial("tcp", addr)
	require.Error(t, err, "listener closed")
	require.ErrorContains(t, s.Start(ctx), "already shut down")
}

func TestShutdownWithoutStart(t *testing.T) {
	s, err := New(Config{}, newEmptyStore(t), nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	s, err := New(Config{Listen: ln.Addr().String()}, newEmptyStore(t), nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.ErrorContains(t, s.Start(context.Background()), "cannot listen on api.listen")
	require.NoError(t, s.Shutdown(context.Background()))
}

// blockingStore holds Sessions until released, to observe draining.
type blockingStore struct {
	store.Store
	entered, release chan struct{}
}

func (b blockingStore) Sessions(ctx context.Context, q store.SessionQuery) ([]store.Session, error) {
	close(b.entered)
	<-b.release
	return b.Store.Sessions(ctx, q)
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	checkLeaks(t)
	st := blockingStore{Store: newEmptyStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	s, err := New(Config{Listen: "127.0.0.1:0"}, st, nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	type result struct {
		code int
		body string
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + s.Addr() + "/api/v1/sessions")
		if err != nil {
			answered <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- result{resp.StatusCode, string(b)}
	}()
	<-st.entered

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(st.release)
	require.NoError(t, <-shutdownDone)
	require.Equal(t, result{http.StatusOK, `{"sessions":[]}` + "\n"}, <-answered)
}

func TestShutdownDeadlineForcesClose(t *testing.T) {
	checkLeaks(t)
	st := blockingStore{Store: newEmptyStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	s, err := New(Config{Listen: "127.0.0.1:0"}, st, nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	clientErr := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + s.Addr() + "/api/v1/sessions")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-st.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorContains(t, s.Shutdown(ctx), "cannot drain api server")
	require.Error(t, <-clientErr, "the stuck connection was closed")
	close(st.release) // let the handler goroutine finish before the leak check
}

// selfSigned writes a certificate for 127.0.0.1 and returns its paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mcpwatch test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, pool := selfSigned(t)
	cfg := Config{Listen: "127.0.0.1:0", Tokens: []string{"tok"}, TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile}}
	s, err := New(cfg, newTestStore(t), nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	defer func() { require.NoError(t, s.Shutdown(context.Background())) }()

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c, err := NewClient("https://"+s.Addr(), "tok", &http.Client{Transport: tr})
	require.NoError(t, err)
	sessions, err := c.Sessions(context.Background(), store.SessionQuery{AgentID: "a2"})
	require.NoError(t, err)
	require.Equal(t, []string{"s2"}, sessionIDs(sessions))

	// Plain HTTP to a TLS listener gets nothing useful.
	code, _ := get(t, &http.Client{Transport: tr}, "http://"+s.Addr()+"/healthz")
	require.Equal(t, http.StatusBadRequest, code)
}

// checkLeaks verifies no goroutine outlives the test; registered first, it runs after every
// other cleanup (such as closing the store).
func checkLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}
