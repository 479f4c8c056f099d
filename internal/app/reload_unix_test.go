//go:build unix

package app_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/app"
)

// SIGHUP reloads the enricher's policy: a real signal to this process, sent only while the
// app's handler is registered (so it cannot end the test binary).
func TestSIGHUPReloadsPolicy(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yml")
	require.NoError(t, os.WriteFile(policyFile, []byte("rules:\n  - name: r\n    deny_tools: [x]\n"), 0o600))
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = dir
		c.Bus.Embedded.Port = 0
		c.Enricher.PolicyFile = policyFile
		c.Enricher.ReloadInterval = time.Hour // only the signal reloads within this test
		return nil
	})
	require.NoError(t, err)
	a := startApp(t, cfg, app.TargetEnricher)
	defer stopApp(t, a)

	hup := func() { require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP)) }
	errors := func() float64 {
		return counterValue(t, a, "mcpwatch_enricher_policy_reload_errors_total", "file", "policy")
	}
	reloads := func() float64 {
		return counterValue(t, a, "mcpwatch_enricher_policy_reloads_total", "file", "policy")
	}

	require.NoError(t, os.WriteFile(policyFile, []byte("rules:\n  - name: r\n    deny_tools: ['[']\n"), 0o600))
	hup()
	require.Eventually(t, func() bool { return errors() == 1 }, 10*time.Second, 10*time.Millisecond, "an invalid policy is refused")
	require.Equal(t, 0.0, reloads())

	require.NoError(t, os.WriteFile(policyFile, []byte("rules:\n  - name: r\n    deny_tools: [y]\n"), 0o600))
	hup()
	require.Eventually(t, func() bool { return reloads() == 1 }, 10*time.Second, 10*time.Millisecond, "a valid one is loaded")
	require.Equal(t, 1.0, errors())
}
