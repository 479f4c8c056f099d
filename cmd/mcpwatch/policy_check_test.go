package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `config check` checks the policy and inventory files a configuration names, and names the
// offending line.
func TestConfigCheckPolicyAndInventory(t *testing.T) {
	dir := t.TempDir()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		require.NoError(t, err)
		return a
	}
	examplePolicy, exampleInventory := abs("../../deploy/policy.example.yml"), abs("../../deploy/inventory.example.yml")
	badPolicy := filepath.Join(dir, "policy.yml")
	require.NoError(t, os.WriteFile(badPolicy, []byte(strings.Join([]string{
		"# a policy with a typo",
		"rules:",
		"  - name: a",
		"    tools: [read_*]",
		"",
		"  - name: b",
		"    tools: [read_*]",
		"",
		"  - name: c",
		"    severity: high",
		"    match:",
		"      teams: [payments]",
		"    tools:",
		"      - \"[\"",
		"      - read_*",
	}, "\n")+"\n"), 0o600))
	badInventory := filepath.Join(dir, "inventory.yml")
	require.NoError(t, os.WriteFile(badInventory, []byte("agents:\n  - id: a\n    tema: payments\n"), 0o600))

	config := func(name, policy, inventory string) string {
		p := filepath.Join(dir, name)
		body := "enricher:\n  policy_file: " + policy + "\n  inventory_file: " + inventory + "\n"
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	for _, tc := range []struct {
		name           string
		config         string
		code           int
		stdout, stderr string
	}{
		{
			name:   "the deploy/ examples pass",
			config: config("good.yml", examplePolicy, exampleInventory),
			code:   exitOK,
			stdout: filepath.Join(dir, "good.yml") + ": ok\n" + examplePolicy + ": ok\n" + exampleInventory + ": ok\n",
		},
		{
			name:   "an invalid policy and inventory, at their lines",
			config: config("bad.yml", badPolicy, badInventory),
			code:   exitFailure,
			stderr: badPolicy + `:14: rules[2].tools[0]: invalid glob "[": missing closing ]` + "\n" +
				badInventory + ":3: field tema not found in type inventory.Entry\n",
		},
		{
			name:   "a missing file",
			config: config("missing.yml", filepath.Join(dir, "nope.yml"), ""),
			code:   exitFailure,
			stderr: "cannot read " + filepath.Join(dir, "nope.yml"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(context.Background(), []string{"config", "check", tc.config}, &stdout, &stderr)
			require.Equal(t, tc.code, code, "stderr: %s", stderr.String())
			require.Equal(t, tc.stdout, stdout.String())
			if tc.code == exitOK {
				require.Empty(t, stderr.String())
			} else {
				require.Contains(t, stderr.String(), tc.stderr)
			}
		})
	}
}
