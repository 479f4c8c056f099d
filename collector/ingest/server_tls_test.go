package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// TestServerTLS serves ingest over HTTPS, then with client certificates required, and posts to
// it with real TLS clients: only those that trust the server (and, under mTLS, present a
// certificate from the client CA) get an event in.
func TestServerTLS(t *testing.T) {
	ca := identitytest.NewCA(t, "ingest-ca")
	other := identitytest.NewCA(t, "other-ca")
	serverCert := ca.Server(t).TLS
	clientCert := ca.Client(t, "wrap", "").TLS
	strangerCert := other.Client(t, "stranger", "").TLS

	type client struct {
		name   string
		plain  bool             // plain HTTP instead of HTTPS
		roots  *x509.CertPool   // nil: the system roots
		cert   *tls.Certificate // nil: no client certificate
		wantOK bool
	}
	for _, tc := range []struct {
		name    string
		cfg     *tls.Config
		clients []client
	}{
		{
			name: "https",
			cfg:  &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}},
			clients: []client{
				{name: "trusting the CA", roots: ca.Pool(), wantOK: true},
				{name: "plain http", plain: true},
				{name: "not trusting the CA", roots: other.Pool()},
			},
		},
		{
			name: "client certificates required",
			cfg: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert},
				ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert},
			clients: []client{
				{name: "with a certificate from the client CA", roots: ca.Pool(), cert: &clientCert, wantOK: true},
				{name: "without a certificate", roots: ca.Pool()},
				{name: "with a certificate from another CA", roots: ca.Pool(), cert: &strangerCert},
				{name: "plain http", plain: true},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h, err := New(Config{}, rec, pipeline.Settings{})
			require.NoError(t, err)
			s := NewServer("127.0.0.1:0", h, pipeline.Settings{}, WithTLS(tc.cfg))
			ctx := context.Background()
			require.NoError(t, s.Start(ctx))
			defer func() { require.NoError(t, s.Shutdown(ctx)) }()

			accepted := 0
			for _, c := range tc.clients {
				t.Run(c.name, func(t *testing.T) {
					cfg := &tls.Config{RootCAs: c.roots}
					if c.cert != nil {
						cfg.Certificates = []tls.Certificate{*c.cert}
					}
					tr := &http.Transport{TLSClientConfig: cfg}
					defer tr.CloseIdleConnections()
					scheme := "https://"
					if c.plain {
						scheme = "http://"
					}
					res, err := (&http.Client{Transport: tr}).Post(scheme+s.Addr()+Path, "application/x-ndjson",
						strings.NewReader(line(t, validEvent(accepted+1))))
					if c.wantOK {
						require.NoError(t, err)
						defer res.Body.Close()
						require.Equal(t, http.StatusOK, res.StatusCode)
						accepted++
						return
					}
					if err == nil {
						// A TLS listener answers plain HTTP with 400 and never passes it on.
						body, _ := io.ReadAll(res.Body)
						res.Body.Close()
						require.True(t, c.plain, "only a plain HTTP request gets an answer, got %d %s", res.StatusCode, body)
						require.Equal(t, http.StatusBadRequest, res.StatusCode)
						require.Contains(t, string(body), "HTTPS")
					}
					require.Len(t, rec.got(), accepted, "the refused request posted nothing")
				})
			}
			require.Len(t, rec.got(), 1, "exactly the accepted client's event")
		})
	}
}
