package httptap

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestUpstreamTLS puts the tap in front of a real go-sdk server served over HTTPS with a
// certificate from a test CA, requiring the tap's client certificate (upstream mTLS).
func TestUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca := identitytest.NewCA(t, "upstream-ca")
	caFile := ca.WriteFile(t, dir, "ca")
	tapCert, tapKey := ca.Client(t, "mcpwatch-tap", "spiffe://corp.example/mcpwatch").WriteFiles(t, dir, "tap-client")
	otherCA := identitytest.NewCA(t, "other")
	otherCAFile := otherCA.WriteFile(t, dir, "other-ca")

	srv := newMCPServer()
	var mu sync.Mutex
	var hosts, clientIDs []string
	seen := func() (h, ids []string) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hosts), slices.Clone(clientIDs)
	}
	up := httptest.NewUnstartedServer(mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		mu.Lock()
		defer mu.Unlock()
		hosts = append(hosts, r.Host)
		if len(r.TLS.PeerCertificates) > 0 {
			clientIDs = append(clientIDs, r.TLS.PeerCertificates[0].URIs[0].String())
		}
		return srv
	}, nil))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t, "mcp.internal").TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	up.StartTLS()
	defer up.Close()
	defer func() {
		for ss := range srv.Sessions() {
			_ = ss.Close()
		}
	}()

	tests := []struct {
		name   string
		tls    UpstreamTLS
		wantOK bool
	}{
		{"ca and client certificate", UpstreamTLS{CAFile: caFile, CertFile: tapCert, KeyFile: tapKey}, true},
		{"server name other than the url's host", UpstreamTLS{CAFile: caFile, CertFile: tapCert, KeyFile: tapKey, ServerName: "mcp.internal"}, true},
		{"server name the certificate lacks", UpstreamTLS{CAFile: caFile, CertFile: tapCert, KeyFile: tapKey, ServerName: "wrong.example"}, false},
		{"untrusted upstream", UpstreamTLS{CAFile: otherCAFile, CertFile: tapCert, KeyFile: tapKey}, false},
		{"no client certificate", UpstreamTLS{CAFile: caFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "secure", URL: up.URL + "/mcp", TLS: tt.tls}}})
			cs, err := connectClient(t, tapURL+"/mcp/secure", "tls-upstream-client", nil, nil)
			if !tt.wantOK {
				require.Error(t, err)
				ev := rec.waitFor(t, "initialize", byMethod("initialize"))
				require.Equal(t, schemas.StatusError, ev.Status)
				require.Equal(t, http.StatusBadGateway, ev.ErrorCode)
				return
			}
			require.NoError(t, err)
			callEcho(t, cs, "over tls")
			require.NoError(t, cs.Close())
			require.Equal(t, schemas.StatusOK, echoEvent(t, rec).Status)
			hosts, ids := seen()
			require.NotEmpty(t, hosts)
			for _, h := range hosts {
				require.Equal(t, up.Listener.Addr().String(), h, "Host is the upstream's, so DNS-rebinding protection passes")
			}
			require.Contains(t, ids, "spiffe://corp.example/mcpwatch", "the upstream saw the tap's certificate")
		})
	}
}

// TestNewRejectsBadTLSFiles: unreadable or unusable files fail at New, naming the field.
func TestNewRejectsBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := identitytest.NewCA(t, "ca")
	cert, key := ca.Server(t).WriteFiles(t, dir, "srv")
	junk := dir + "/junk.pem"
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	ups := []Upstream{{Name: "a", URL: "http://127.0.0.1:1/mcp"}}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing cert", Config{Upstreams: ups, TLS: ListenerTLS{CertFile: dir + "/none.crt", KeyFile: key}}, "collector.http.tls: cannot load TLS key pair"},
		{"key of another cert", Config{Upstreams: ups, TLS: ListenerTLS{CertFile: cert, KeyFile: junk}}, "collector.http.tls: cannot load TLS key pair"},
		{"client ca without certificates", Config{Upstreams: ups, TLS: ListenerTLS{CertFile: cert, KeyFile: key, ClientCAFile: junk}}, "collector.http.tls.client_ca_file: cannot read CA bundle"},
		{"upstream ca", Config{Upstreams: []Upstream{{Name: "a", URL: "https://127.0.0.1:1/mcp", TLS: UpstreamTLS{CAFile: junk}}}}, "collector.http.upstreams[0].tls.ca_file: cannot read CA bundle"},
		{"upstream client cert", Config{Upstreams: []Upstream{{Name: "a", URL: "https://127.0.0.1:1/mcp", TLS: UpstreamTLS{CertFile: junk, KeyFile: key}}}}, "collector.http.upstreams[0].tls: cannot load TLS key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, &recorder{}, testSettings(t))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestKeyPairReload: a rotated certificate is served without a restart.
func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	ca := identitytest.NewCA(t, "ca")
	first := ca.Server(t, "first.example")
	cert, key := first.WriteFiles(t, dir, "srv")
	kp, err := loadKeyPair(cert, key, testSettings(t).Logger)
	require.NoError(t, err)
	kp.interval = 0
	require.Equal(t, first.TLS.Certificate[0], kp.get().Certificate[0])

	second := ca.Server(t, "second.example")
	second.WriteFiles(t, dir, "srv")
	later := time.Now().Add(time.Minute) // mtimes can be equal within a coarse clock tick
	require.NoError(t, os.Chtimes(cert, later, later))
	require.NoError(t, os.Chtimes(key, later, later))
	require.Equal(t, second.TLS.Certificate[0], kp.get().Certificate[0], "reloaded after the files changed")

	require.NoError(t, os.WriteFile(cert, []byte("half-written"), 0o600))
	require.NoError(t, os.Chtimes(cert, later.Add(time.Minute), later.Add(time.Minute)))
	require.Equal(t, second.TLS.Certificate[0], kp.get().Certificate[0], "a broken rotation keeps the previous certificate")
}
