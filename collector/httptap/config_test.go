package httptap

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
)

func TestConfigValidate(t *testing.T) {
	ok := []Upstream{{Name: "default", URL: "http://127.0.0.1:3001/mcp"}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "minimal", cfg: Config{Upstreams: ok}},
		{name: "everything set", cfg: Config{
			Listen: "0.0.0.0:7400",
			Upstreams: []Upstream{
				{Name: "a.b_c-1", URL: "https://mcp.example.com/x", TLS: UpstreamTLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "mcp.internal"}},
				{Name: "b", URL: "http://[::1]:9/mcp"},
			},
			TLS:            ListenerTLS{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem", ClientAuth: ClientAuthVerifyIfGiven},
			RequestTimeout: time.Second, MaxMessageBytes: 10, CollectorID: "tap-1",
			SessionIdleTimeout: time.Minute, MaxSessions: 1, MaxPending: 1,
			Identity: identity.Config{Header: "X-Agent"},
		}},
		{name: "no upstreams", cfg: Config{}, wantErr: []string{"collector.http.upstreams: at least one upstream is required"}},
		{name: "bad listen", cfg: Config{Listen: "7400", Upstreams: ok}, wantErr: []string{`collector.http.listen: must be host:port, got "7400"`}},
		{
			name: "bad upstreams",
			cfg: Config{Upstreams: []Upstream{
				{Name: "ok", URL: "http://127.0.0.1/mcp"},
				{Name: "", URL: "ftp://x"},
				{Name: "a/b", URL: "127.0.0.1:3001"},
				{Name: "ok", URL: "http:///nohost"},
			}},
			wantErr: []string{
				"collector.http.upstreams[1].name: must not be empty",
				`collector.http.upstreams[1].url: must be an absolute http(s) URL, got "ftp://x"`,
				`collector.http.upstreams[2].name: must be letters, digits, '.', '_' or '-', got "a/b"`,
				`collector.http.upstreams[2].url: must be an absolute http(s) URL, got "127.0.0.1:3001"`,
				`collector.http.upstreams[3].name: duplicate name "ok"`,
				`collector.http.upstreams[3].url: must be an absolute http(s) URL, got "http:///nohost"`,
			},
		},
		{
			name: "negative numbers and bad collector-wide sections",
			cfg: Config{
				Upstreams: ok, RequestTimeout: -1, MaxMessageBytes: -1,
				SessionIdleTimeout: -1, MaxSessions: -1, MaxPending: -1,
				Identity: identity.Config{Header: "X Agent"}, Sessions: identity.SessionsConfig{IdleGap: -1},
				Capture: capture.Config{Rules: []capture.Rule{{}}},
			},
			wantErr: []string{
				"collector.http.request_timeout: must not be negative",
				"collector.http.max_message_bytes: must not be negative",
				"collector.http.session_idle_timeout: must not be negative",
				"collector.http.max_sessions: must not be negative",
				"collector.http.max_pending: must not be negative",
				`collector.identity.header: must be a valid HTTP header name, got "X Agent"`,
				"collector.sessions.idle_gap: must not be negative",
				"collector.capture[0].server: must not be empty",
			},
		},
		{
			name: "bad tls",
			cfg: Config{
				Upstreams: []Upstream{
					{Name: "a", URL: "http://127.0.0.1/mcp", TLS: UpstreamTLS{CAFile: "ca.pem"}},
					{Name: "b", URL: "https://127.0.0.1/mcp", TLS: UpstreamTLS{CertFile: "c.pem"}},
				},
				TLS: ListenerTLS{KeyFile: "k.pem", ClientCAFile: "ca.pem", ClientAuth: "optional"},
			},
			wantErr: []string{
				"collector.http.upstreams[0].tls: is set but the url is not https",
				"collector.http.upstreams[1].tls: set both cert_file and key_file, or neither",
				"collector.http.tls: set both cert_file and key_file, or neither",
				"collector.http.tls.client_ca_file: needs cert_file and key_file: mTLS needs HTTPS",
				`collector.http.tls.client_auth: must be require or verify_if_given, got "optional"`,
			},
		},
		{
			name:    "client auth without a CA",
			cfg:     Config{Upstreams: ok, TLS: ListenerTLS{CertFile: "c.pem", KeyFile: "k.pem", ClientAuth: ClientAuthRequire}},
			wantErr: []string{"collector.http.tls.client_auth: needs client_ca_file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.wantErr, strings.Split(err.Error(), "\n"))
		})
	}
}

func TestConfigDefaultsAndYAML(t *testing.T) {
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(`
upstreams:
  - name: everything
    url: http://127.0.0.1:3001/mcp
request_timeout: 90s
max_message_bytes: 1048576
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	require.NoError(t, cfg.Validate())
	cfg = cfg.withDefaults()
	require.Equal(t, "127.0.0.1:7400", cfg.Listen, "loopback unless configured")
	require.Equal(t, 90*time.Second, cfg.RequestTimeout)
	require.Equal(t, 1<<20, cfg.MaxMessageBytes)
	require.True(t, strings.HasPrefix(cfg.CollectorID, "httptap@"))
	require.Equal(t, DefaultSessionIdleTimeout, cfg.SessionIdleTimeout)
	require.Equal(t, DefaultMaxSessions, cfg.MaxSessions)
	require.Equal(t, DefaultMaxPending, cfg.MaxPending)
	require.Equal(t, []Upstream{{Name: "everything", URL: "http://127.0.0.1:3001/mcp"}}, cfg.Upstreams)

	require.Equal(t, Config{}.withDefaults().RequestTimeout, 5*time.Minute)
	require.Equal(t, Config{}.withDefaults().MaxMessageBytes, 4<<20)

	dec = yaml.NewDecoder(strings.NewReader("upstream: []\n"))
	dec.KnownFields(true)
	require.Error(t, dec.Decode(&cfg), "unknown keys are errors")
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{}, &recorder{}, testSettings(t))
	require.ErrorContains(t, err, "collector.http.upstreams")
	_, err = New(Config{Upstreams: []Upstream{{Name: "a", URL: "http://127.0.0.1:1"}}}, nil, testSettings(t))
	require.Error(t, err)
}
