package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
)

// TestWrapMTLS runs `mcpwatch run` without upstreams, its collector listener requiring client
// certificates (collector.http.tls with client_auth: require), and wraps sessions with the built
// binary: one without a client certificate and one trusting another CA (set through the
// environment) cannot deliver and keep their events on disk; one with --ca-file, --cert-file
// and --key-file delivers its own events and those the others left behind.
func TestWrapMTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mcpwatch binary")
	}
	t.Setenv("MCPWATCH_TOKEN", "")
	ca := identitytest.NewCA(t, "mcpwatch-ca")
	other := identitytest.NewCA(t, "other-ca")
	dir := t.TempDir()
	caFile, otherCAFile := ca.WriteFile(t, dir, "ca"), other.WriteFile(t, dir, "other-ca")
	serverCert, serverKey := ca.Server(t).WriteFiles(t, dir, "server")
	clientCert, clientKey := ca.Client(t, "laptop", "").WriteFiles(t, dir, "laptop")

	rc := writeCollectorOnlyConfig(t, fmt.Sprintf(`    tls:
      cert_file: %s
      key_file: %s
      client_ca_file: %s
      client_auth: require
`, serverCert, serverKey, caFile))
	collectorURL, apiURL := rc.collectorURL, rc.apiURL
	p := startMcpwatch(t, "run", "--config", rc.path, "--data-dir", filepath.Join(t.TempDir(), "data"))
	waitReady(t, apiURL, p.exited, p.stderr)

	spoolDir := t.TempDir()
	session := func(env []string, flags []string, msgs ...string) string {
		t.Helper()
		flags = append([]string{"--agent", "mtls-agent", "--mcpwatch", collectorURL, "--spool-dir", spoolDir,
			"--flush-timeout", "500ms"}, flags...)
		cmd := wrapCommand(t, env, flags...)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		require.NoError(t, echoThroughWrap(t, cmd, msgs...), "wrap exits 0 with the server, whatever happened to the events")
		return stderr.String()
	}
	spools := func() int {
		entries, err := os.ReadDir(spoolDir)
		require.NoError(t, err)
		return len(entries)
	}

	logs := session(nil, []string{"--ca-file", caFile}, "no-cert")
	require.Contains(t, logs, "events kept on disk")
	require.Equal(t, 1, spools(), "refused without a client certificate, the events wait on disk")
	logs = session([]string{envWrapCAFile + "=" + otherCAFile, envWrapCertFile + "=" + clientCert, envWrapKeyFile + "=" + clientKey},
		nil, "wrong-ca")
	require.Contains(t, logs, "events kept on disk")
	require.Equal(t, 2, spools(), "mcpwatch's certificate is not trusted, the events wait on disk")

	session(nil, []string{"--ca-file", caFile, "--cert-file", clientCert, "--key-file", clientKey}, "mtls-0", "mtls-1")
	awaitEchoes(t, apiURL, "mtls-agent", "no-cert", "wrong-ca", "mtls-0", "mtls-1")
	require.Equal(t, 0, spools(), "the adopted spools are removed once sent")
	require.Equal(t, 0, p.terminate(t), p.stderr.String())
}

// TestWrapTLSFlags: a TLS flag or variable wrap cannot use stops it before the server starts,
// with the usage exit code, the flag named and no file's content quoted.
func TestWrapTLSFlags(t *testing.T) {
	ca := identitytest.NewCA(t, "ca")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca")
	leaf := ca.Client(t, "laptop", "")
	certFile, keyFile := leaf.WriteFiles(t, dir, "laptop")
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key at all\n"), 0o600))
	const https = "https://127.0.0.1:7400"
	for _, tc := range []struct {
		name string
		env  []string // KEY=VALUE
		args []string
		want string
	}{
		{name: "cert without key", args: []string{"--mcpwatch", https, "--cert-file", certFile},
			want: "--cert-file: needs --key-file"},
		{name: "key without cert", env: []string{envWrapKeyFile + "=" + keyFile}, args: []string{"--mcpwatch", https},
			want: "--key-file: needs --cert-file"},
		{name: "ca file on http", args: []string{"--mcpwatch", "http://127.0.0.1:7400", "--ca-file", caFile},
			want: "--ca-file: needs an https:// --mcpwatch URL"},
		{name: "missing ca file", args: []string{"--mcpwatch", https, "--ca-file", filepath.Join(dir, "nope.pem")},
			want: "--ca-file: cannot read CA bundle"},
		{name: "key as ca file", args: []string{"--mcpwatch", https, "--ca-file", keyFile},
			want: "--ca-file: no PEM certificate in " + keyFile},
		{name: "bad key from the environment", env: []string{envWrapCertFile + "=" + certFile, envWrapKeyFile + "=" + garbage},
			args: []string{"--mcpwatch", https}, want: "--key-file: not the PEM key of --cert-file's certificate"},
		{name: "cert as key", args: []string{"--mcpwatch", https, "--cert-file", certFile, "--key-file", certFile},
			want: "--key-file: not the PEM key of --cert-file's certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{envWrapCAFile, envWrapCertFile, envWrapKeyFile} {
				t.Setenv(v, "")
			}
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			spoolDir := t.TempDir()
			args := append(tc.args, "--spool-dir", spoolDir, "--", filepath.Join(dir, "server-never-started"))
			var stdout, stderr bytes.Buffer
			code := runWrap(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			require.Equal(t, exitUsage, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
			require.NotContains(t, stderr.String(), "not a key at all")
			for _, l := range strings.Split(string(leaf.KeyPEM)+string(leaf.CertPEM), "\n") {
				if len(l) > 16 && !strings.HasPrefix(l, "-----") {
					require.NotContains(t, stderr.String(), l, "no key or certificate material in the output")
				}
			}
			entries, err := os.ReadDir(spoolDir)
			require.NoError(t, err)
			require.Empty(t, entries, "wrap stopped before making a spool")
		})
	}
}
