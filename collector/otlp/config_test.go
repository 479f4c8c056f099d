package otlp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	require.NoError(t, os.WriteFile(cert, []byte("x"), 0o600))
	for _, tc := range []struct {
		name string
		cfg  Config
		errs []string // every line expected, in order
	}{
		{name: "zero value", cfg: Config{}},
		{name: "enabled with defaults", cfg: Config{Enabled: true}},
		{name: "one transport", cfg: Config{Enabled: true, GRPC: TransportConfig{Disabled: true}}},
		{name: "everything set", cfg: Config{Enabled: true, GRPC: TransportConfig{Listen: "0.0.0.0:4317"},
			HTTP: TransportConfig{Listen: "[::1]:0"}, TLS: TLSConfig{CertFile: cert, KeyFile: cert, ClientCAFile: cert},
			BearerTokens: []string{"a", "b"}, MaxMessageBytes: 1 << 20, CollectorID: "otlp-1"}},
		{name: "bad listens", cfg: Config{GRPC: TransportConfig{Listen: "4317"}, HTTP: TransportConfig{Listen: "localhost:"}}, errs: []string{
			`collector.otlp.grpc.listen: must be host:port, got "4317"`,
			`collector.otlp.http.listen: must be host:port, got "localhost:"`,
		}},
		{name: "nothing left to run", cfg: Config{Enabled: true, GRPC: TransportConfig{Disabled: true}, HTTP: TransportConfig{Disabled: true}}, errs: []string{
			"collector.otlp.enabled: both transports are disabled: disable the receiver instead, or enable grpc or http",
		}},
		{name: "half a key pair", cfg: Config{TLS: TLSConfig{CertFile: cert}}, errs: []string{
			"collector.otlp.tls: cert_file and key_file must be set together",
		}},
		{name: "client CA without TLS", cfg: Config{TLS: TLSConfig{ClientCAFile: cert}}, errs: []string{
			"collector.otlp.tls.client_ca_file: needs cert_file and key_file: mTLS runs over TLS",
		}},
		{name: "missing files", cfg: Config{TLS: TLSConfig{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: cert}}, errs: []string{
			`collector.otlp.tls.cert_file: cannot read "` + filepath.Join(dir, "nope.pem") + `"`,
		}},
		{name: "bad tokens", cfg: Config{BearerTokens: []string{"ok", "", "has space"}}, errs: []string{
			"collector.otlp.bearer_tokens[1]: must not be empty",
			"collector.otlp.bearer_tokens[2]: must not contain whitespace",
		}},
		{name: "negative size", cfg: Config{MaxMessageBytes: -1}, errs: []string{
			"collector.otlp.max_message_bytes: must not be negative",
		}},
		// A listener other machines reach needs bearer tokens or client certificates.
		{name: "loopback needs nothing", cfg: Config{Enabled: true, GRPC: TransportConfig{Listen: "[::1]:4317"}, HTTP: TransportConfig{Listen: "localhost:0"}}},
		{name: "public without tokens", cfg: Config{Enabled: true, GRPC: TransportConfig{Listen: "0.0.0.0:4317"}, HTTP: TransportConfig{Listen: ":4318"}}, errs: []string{
			"collector.otlp.bearer_tokens: required when collector.otlp.grpc.listen (0.0.0.0:4317) is not loopback (or require client certificates: collector.otlp.tls.client_ca_file)",
			"collector.otlp.bearer_tokens: required when collector.otlp.http.listen (:4318) is not loopback",
		}},
		{name: "public without tokens, receiver off", cfg: Config{GRPC: TransportConfig{Listen: "10.0.0.5:4317"}}, errs: []string{
			"collector.otlp.bearer_tokens: required when collector.otlp.grpc.listen (10.0.0.5:4317) is not loopback",
		}},
		{name: "public transport disabled", cfg: Config{Enabled: true, HTTP: TransportConfig{Listen: "0.0.0.0:4318", Disabled: true}}},
		{name: "public with tokens", cfg: Config{Enabled: true, HTTP: TransportConfig{Listen: "0.0.0.0:4318"}, BearerTokens: []string{"t0k3n"}}},
		{name: "public with client certificates", cfg: Config{Enabled: true, HTTP: TransportConfig{Listen: "0.0.0.0:4318"},
			TLS: TLSConfig{CertFile: cert, KeyFile: cert, ClientCAFile: cert}}},
		{name: "public with TLS only", cfg: Config{Enabled: true, HTTP: TransportConfig{Listen: "0.0.0.0:4318"},
			TLS: TLSConfig{CertFile: cert, KeyFile: cert}}, errs: []string{
			"collector.otlp.bearer_tokens: required when collector.otlp.http.listen (0.0.0.0:4318) is not loopback",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.errs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tc.errs), err.Error())
			for i, want := range tc.errs {
				require.True(t, strings.HasPrefix(lines[i], want), "line %d: %q does not start with %q", i, lines[i], want)
			}
			require.NotContains(t, err.Error(), "has space", "tokens are not echoed")
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	require.Equal(t, "127.0.0.1:4317", c.GRPC.Listen)
	require.Equal(t, "127.0.0.1:4318", c.HTTP.Listen)
	require.Equal(t, 4<<20, c.MaxMessageBytes)
	require.True(t, strings.HasPrefix(c.CollectorID, "otlp@"), c.CollectorID)
	require.False(t, c.Enabled, "the receiver is opt-in")

	var d Config
	d.SetDefaults()
	require.Equal(t, Config{GRPC: TransportConfig{Listen: DefaultGRPCListen}, HTTP: TransportConfig{Listen: DefaultHTTPListen},
		MaxMessageBytes: DefaultMaxMessageBytes}, d, "SetDefaults leaves the collector id to New")

	set := Config{GRPC: TransportConfig{Listen: ":9"}, MaxMessageBytes: 5, CollectorID: "x"}.withDefaults()
	require.Equal(t, ":9", set.GRPC.Listen)
	require.Equal(t, 5, set.MaxMessageBytes)
	require.Equal(t, "x", set.CollectorID)
}

func TestConfigYAML(t *testing.T) {
	const doc = `
enabled: true
grpc:
  listen: 127.0.0.1:14317
http:
  disabled: true
tls:
  cert_file: /etc/mcpwatch/otlp.pem
  key_file: /etc/mcpwatch/otlp-key.pem
  client_ca_file: /etc/mcpwatch/ca.pem
bearer_tokens: [t1, t2]
max_message_bytes: 1048576
collector_id: otlp-edge-1
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	require.Equal(t, Config{
		Enabled: true, GRPC: TransportConfig{Listen: "127.0.0.1:14317"}, HTTP: TransportConfig{Disabled: true},
		TLS:          TLSConfig{CertFile: "/etc/mcpwatch/otlp.pem", KeyFile: "/etc/mcpwatch/otlp-key.pem", ClientCAFile: "/etc/mcpwatch/ca.pem"},
		BearerTokens: []string{"t1", "t2"}, MaxMessageBytes: 1 << 20, CollectorID: "otlp-edge-1",
	}, c)
}
