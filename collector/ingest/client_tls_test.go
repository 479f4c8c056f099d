package ingest

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// mtlsServer is the real ingest Server over HTTPS, requiring client certificates from ca.
func mtlsServer(t *testing.T, ca *identitytest.CA) (*Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	h, err := New(Config{}, rec, pipeline.Settings{})
	require.NoError(t, err)
	s := NewServer("127.0.0.1:0", h, pipeline.Settings{}, WithTLS(&tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.Server(t).TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}))
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return s, rec
}

// emitAndGiveUp runs a client whose posts fail: its events stay in its spool for a later one.
func emitAndGiveUp(t *testing.T, cfg ClientConfig, n int) []string {
	t.Helper()
	c, err := NewClient(cfg, pipeline.Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	var ids []string
	for i := range n {
		ev := validEvent(i)
		ids = append(ids, ev.ID)
		c.Emit(ev)
	}
	time.Sleep(300 * time.Millisecond) // posts fail meanwhile
	shutdownCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	require.NoError(t, c.Shutdown(shutdownCtx))
	require.Zero(t, c.Sent())
	require.Zero(t, c.Dropped(), "a refused handshake is not a reason to drop events")
	require.DirExists(t, c.SpoolDir(), "undelivered events stay on disk")
	return ids
}

// TestClientMTLS posts to an ingest listener that requires client certificates: without one,
// or trusting another CA, nothing gets through and the events stay spooled; a client with
// --ca-file and its certificate sends its own events and adopts the spools left behind.
func TestClientMTLS(t *testing.T) {
	ca := identitytest.NewCA(t, "ingest-ca")
	other := identitytest.NewCA(t, "other-ca")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca")
	otherCAFile := other.WriteFile(t, dir, "other-ca")
	certFile, keyFile := ca.Client(t, "wrap", "").WriteFiles(t, dir, "wrap")
	s, rec := mtlsServer(t, ca)
	url := "https://" + s.Addr()
	root := t.TempDir()
	base := ClientConfig{URL: url, SpoolDir: root, Timeout: 2 * time.Second}

	noCert := base
	noCert.CAFile = caFile
	want := emitAndGiveUp(t, noCert, 5)

	wrongCA := base
	wrongCA.CAFile, wrongCA.CertFile, wrongCA.KeyFile = otherCAFile, certFile, keyFile
	want = append(want, emitAndGiveUp(t, wrongCA, 5)...)

	systemRoots := base
	systemRoots.CertFile, systemRoots.KeyFile = certFile, keyFile
	want = append(want, emitAndGiveUp(t, systemRoots, 5)...)
	require.Empty(t, rec.got())

	good := base
	good.CAFile, good.CertFile, good.KeyFile = caFile, certFile, keyFile
	c, err := NewClient(good, pipeline.Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	for i := range 5 {
		ev := validEvent(i)
		want = append(want, ev.ID)
		c.Emit(ev)
	}
	require.Eventually(t, func() bool { return len(rec.got()) == len(want) }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return c.adoptedDirs.Load() == 3 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.ElementsMatch(t, want, rec.ids(), "every event, the adopted spools' too, exactly once")
	require.Zero(t, c.Dropped())
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "every spool is gone")
}

// TestClientRereadsItsCertificate: the certificate files are read for each new connection, so
// replacing them (rotation) takes effect without a new client.
func TestClientRereadsItsCertificate(t *testing.T) {
	ca := identitytest.NewCA(t, "ingest-ca")
	other := identitytest.NewCA(t, "other-ca")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca")
	// A certificate the server does not take, until it is replaced by one it does.
	certFile, keyFile := other.Client(t, "wrap", "").WriteFiles(t, dir, "wrap")
	s, rec := mtlsServer(t, ca)
	c, err := NewClient(ClientConfig{URL: "https://" + s.Addr(), SpoolDir: t.TempDir(), Timeout: 2 * time.Second,
		CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, pipeline.Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	ev := validEvent(1)
	c.Emit(ev)
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, rec.got(), "the other CA's certificate is refused")
	require.Equal(t, 1, c.Pending())

	ca.Client(t, "wrap", "").WriteFiles(t, dir, "wrap")
	require.Eventually(t, func() bool { return len(rec.got()) == 1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.Equal(t, []string{ev.ID}, rec.ids())
}

// TestClientTLSConfig: the TLS files are checked when the client is made, errors name the flag
// and never quote a file, and --ca-file replaces the system's CAs.
func TestClientTLSConfig(t *testing.T) {
	ca := identitytest.NewCA(t, "ingest-ca")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca")
	leaf := ca.Client(t, "wrap", "")
	certFile, keyFile := leaf.WriteFiles(t, dir, "wrap")
	_, otherKey := ca.Client(t, "other", "").WriteFiles(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")
	const https = "https://mcpwatch.example:7400"

	cfg, err := ClientConfig{URL: https, SpoolDir: "d"}.TLSConfig()
	require.NoError(t, err)
	require.Nil(t, cfg, "no TLS files: Go's defaults, the system's CAs")
	cfg, err = ClientConfig{URL: https, SpoolDir: "d", CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.TLSConfig()
	require.NoError(t, err)
	require.True(t, cfg.RootCAs.Equal(ca.Pool()), "exactly the bundle is trusted, not the system's CAs besides")
	got, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
	require.NoError(t, err)
	require.Equal(t, leaf.TLS.Certificate, got.Certificate)

	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{name: "cert without key", cfg: ClientConfig{URL: https, CertFile: certFile}, want: "--cert-file: needs --key-file"},
		{name: "key without cert", cfg: ClientConfig{URL: https, KeyFile: keyFile}, want: "--key-file: needs --cert-file"},
		{name: "ca on http", cfg: ClientConfig{URL: "http://127.0.0.1:7400", CAFile: caFile}, want: "--ca-file: needs an https:// --mcpwatch URL"},
		{name: "cert on the default URL", cfg: ClientConfig{CertFile: certFile, KeyFile: keyFile}, want: "--cert-file: needs an https:// --mcpwatch URL"},
		{name: "missing ca", cfg: ClientConfig{URL: https, CAFile: missing}, want: "--ca-file: cannot read CA bundle: open " + missing},
		{name: "ca not PEM", cfg: ClientConfig{URL: https, CAFile: garbage}, want: "--ca-file: no PEM certificate in " + garbage},
		{name: "key as ca", cfg: ClientConfig{URL: https, CAFile: keyFile}, want: "--ca-file: no PEM certificate in " + keyFile},
		{name: "missing cert", cfg: ClientConfig{URL: https, CertFile: missing, KeyFile: keyFile}, want: "--cert-file: cannot read client certificate: open " + missing},
		{name: "key as cert", cfg: ClientConfig{URL: https, CertFile: keyFile, KeyFile: keyFile}, want: "--cert-file: no PEM certificate in " + keyFile},
		{name: "missing key", cfg: ClientConfig{URL: https, CertFile: certFile, KeyFile: missing}, want: "--key-file: cannot read client key: open " + missing},
		{name: "key not PEM", cfg: ClientConfig{URL: https, CertFile: certFile, KeyFile: garbage}, want: "--key-file: not the PEM key of --cert-file's certificate (" + garbage + ")"},
		{name: "cert as key", cfg: ClientConfig{URL: https, CertFile: certFile, KeyFile: certFile}, want: "--key-file: not the PEM key"},
		{name: "another certificate's key", cfg: ClientConfig{URL: https, CertFile: certFile, KeyFile: otherKey}, want: "--key-file: not the PEM key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.SpoolDir = t.TempDir()
			_, err := NewClient(tc.cfg, pipeline.Settings{})
			require.ErrorContains(t, err, tc.want)
			for _, f := range []string{caFile, certFile, keyFile, otherKey, garbage} {
				data, rerr := os.ReadFile(f)
				require.NoError(t, rerr)
				for _, l := range strings.Split(string(data), "\n") {
					if len(l) > 16 && !strings.HasPrefix(l, "-----") {
						require.NotContains(t, err.Error(), l, "no file's content is quoted")
					}
				}
			}
			require.NotContains(t, err.Error(), "not a certificate", "no file's content is quoted")
			entries, rerr := os.ReadDir(tc.cfg.SpoolDir)
			require.NoError(t, rerr)
			require.Empty(t, entries, "no spool is made for a client that cannot be")
		})
	}
}
