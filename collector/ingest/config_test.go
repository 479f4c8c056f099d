package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	require.NoError(t, Config{Token: "t0k3n", MaxBodyBytes: 1}.Validate())
	err := Config{Token: "has space", MaxBodyBytes: -1}.Validate()
	require.ErrorContains(t, err, "collector.ingest.token: must not contain whitespace")
	require.ErrorContains(t, err, "collector.ingest.max_body_bytes: must not be negative")
	require.NotContains(t, err.Error(), "has space", "the token is not echoed")
}

// TestValidateListener: an endpoint other machines can reach needs a token, unless the
// listener requires client certificates.
func TestValidateListener(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		listen string
		certs  bool
		want   string // "" when valid
	}{
		{name: "ipv4 loopback", listen: "127.0.0.1:7400"},
		{name: "ipv6 loopback", listen: "[::1]:7400"},
		{name: "localhost", listen: "localhost:0"},
		{name: "public without token", listen: "0.0.0.0:7400",
			want: "collector.ingest.token: required when collector.http.listen (0.0.0.0:7400) is not loopback"},
		{name: "all interfaces without token", listen: ":7400", want: "collector.ingest.token: required"},
		{name: "lan address without token", listen: "10.1.2.3:7400", want: "collector.ingest.token: required"},
		{name: "host name without token", listen: "mcpwatch.internal:7400", want: "collector.ingest.token: required"},
		{name: "public with token", cfg: Config{Token: "t0k3n"}, listen: "0.0.0.0:7400"},
		{name: "public requiring client certificates", listen: "0.0.0.0:7400", certs: true},
		{name: "public, disabled", cfg: Config{Disabled: true}, listen: "0.0.0.0:7400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.ValidateListener(tc.listen, tc.certs)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestClientConfigNamesFields: every error names the flag, or the Go field where no flag sets it.
func TestClientConfigNamesFields(t *testing.T) {
	err := ClientConfig{URL: "ftp://x", MaxSpoolBytes: -1, Timeout: -time.Second, BatchBytes: -1}.Validate()
	for _, want := range []string{
		`--mcpwatch: must be an absolute http(s) URL, got "ftp://x"`,
		"--spool-dir: must not be empty",
		"--spool-max-bytes: must not be negative",
		"ClientConfig.Timeout: must not be negative",
		"ClientConfig.BatchBytes: must not be negative",
	} {
		require.ErrorContains(t, err, want)
	}
}

// TestClientConfigKeepsSecretsOutOfErrors: a token the endpoint could never match is refused at
// startup without being echoed, and a bad URL is quoted without its password.
func TestClientConfigKeepsSecretsOutOfErrors(t *testing.T) {
	require.NoError(t, ClientConfig{SpoolDir: "d", Token: "t0k3n-._~+/="}.Validate())
	for _, token := range []string{"has space", "tab\there", "trailing\n", "nul\x00x", "del\x7fx", "nbsp\u00a0x", "c1\u0085x"} {
		err := ClientConfig{SpoolDir: "d", Token: token}.Validate()
		require.ErrorContains(t, err, "--token (MCPWATCH_INGEST_TOKEN): must not contain whitespace or control characters", "%q", token)
		require.NotContains(t, err.Error(), token)
	}
	for in, want := range map[string]string{
		"ftp://user:hunter2@mcpwatch.example":    `got "ftp://user:xxxxx@mcpwatch.example"`,
		"http://user:hunter2@bad host:7400/":     `got "http://xxxxx@bad host:7400/"`,
		"user:hunter2@127.0.0.1:7400":            `got "xxxxx@127.0.0.1:7400"`,
		"http://user:hunter2%zz@127.0.0.1:7400/": `got "http://xxxxx@127.0.0.1:7400/"`,
	} {
		err := ClientConfig{URL: in, SpoolDir: "d"}.Validate()
		require.ErrorContains(t, err, "--mcpwatch: must be an absolute http(s) URL, "+want)
		require.NotContains(t, err.Error(), "hunter2")
	}
	require.Equal(t, "https://mcpwatch.example/p@x", RedactURL("https://mcpwatch.example/p@x"), "an @ in the path is not userinfo")
}
