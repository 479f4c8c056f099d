package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// binDir holds the mcpwatch binary built for the process-level tests (see mcpwatchBinary).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcpwatch-cmdtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// mcpwatchBinary builds this package into a binary once per test run and returns its path.
// Under `go test -race` the binary gets the race detector too, so a race in a real process
// fails the test (the process exits 66).
func mcpwatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		path := filepath.Join(binDir, "mcpwatch")
		args := []string{"build", "-o", path}
		if raceEnabled() {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = path
	})
	require.NoError(t, buildErr)
	return binPath
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// cmdResult is what one runMain call printed and returned.
type cmdResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs runMain in-process. The deadline keeps a command that wrongly starts serving
// from hanging the test.
func runCmd(t *testing.T, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runMain(ctx, args, &stdout, &stderr)
	return cmdResult{code, stdout.String(), stderr.String()}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRunMain(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings of stdout
		stderr     []string // substrings of stderr
		quietOut   bool     // nothing on stdout
		quietErr   bool     // nothing on stderr
		notCreated string   // a path the command must not create
	}{
		{name: "no args", args: nil, code: exitUsage, stderr: []string{"Usage:\n  mcpwatch <command>", "config check"}, quietOut: true},
		{name: "help", args: []string{"help"}, code: exitOK, stdout: []string{"Usage:\n  mcpwatch <command>", "migrate"}, quietErr: true},
		{name: "--help", args: []string{"--help"}, code: exitOK, stdout: []string{"Usage:\n  mcpwatch <command>"}, quietErr: true},
		{name: "-h", args: []string{"-h"}, code: exitOK, stdout: []string{"Usage:\n  mcpwatch <command>"}, quietErr: true},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, stderr: []string{`unknown command "frobnicate"`, "Usage:"}, quietOut: true},
		{name: "version", args: []string{"version"}, code: exitOK, stdout: []string{"mcpwatch dev (go1."}, quietErr: true},
		{name: "--version", args: []string{"--version"}, code: exitOK, stdout: []string{"mcpwatch dev (go1."}, quietErr: true},

		{name: "run --help", args: []string{"run", "--help"}, code: exitOK,
			stdout: []string{"mcpwatch run [--config FILE]", "-upstream", "-target", "-data-dir", "-shutdown-timeout"}, quietErr: true},
		{name: "run -h", args: []string{"run", "-h"}, code: exitOK, stdout: []string{"-upstream"}, quietErr: true},
		{name: "run unknown flag", args: []string{"run", "--bogus"}, code: exitUsage,
			stderr: []string{"flag provided but not defined: -bogus", "Usage:"}, quietOut: true},
		{name: "run stray argument", args: []string{"run", "--data-dir", filepath.Join(tmp, "stray"), "now"}, code: exitUsage,
			stderr: []string{`unexpected argument "now"`}, quietOut: true, notCreated: filepath.Join(tmp, "stray")},
		{name: "run unknown target", args: []string{"run", "--data-dir", filepath.Join(tmp, "target"), "-target=nope"}, code: exitUsage,
			stderr: []string{`unknown target "nope"`}, quietOut: true, notCreated: filepath.Join(tmp, "target")},
		{name: "run target in a list", args: []string{"run", "--data-dir", filepath.Join(tmp, "list"), "-target", "writer,nope"}, code: exitUsage,
			stderr: []string{`unknown target "nope"`}, quietOut: true, notCreated: filepath.Join(tmp, "list")},
		{name: "run bad upstream", args: []string{"run", "--data-dir", filepath.Join(tmp, "up"), "--upstream", "ftp://x"}, code: exitUsage,
			stderr:   []string{"invalid configuration", `collector.http.upstreams[0].url: must be an absolute http(s) URL, got "ftp://x"`},
			quietOut: true, notCreated: filepath.Join(tmp, "up")},
		{name: "run second bad upstream", args: []string{"run", "--data-dir", filepath.Join(tmp, "up2"), "--upstream", "http://127.0.0.1:1/mcp", "--upstream", "git=/relative"}, code: exitUsage,
			stderr: []string{"collector.http.upstreams[1].url"}, quietOut: true, notCreated: filepath.Join(tmp, "up2")},
		{name: "run bad log level", args: []string{"run", "--data-dir", filepath.Join(tmp, "log"), "--log-level", "loud"}, code: exitUsage,
			stderr: []string{"log.level"}, quietOut: true, notCreated: filepath.Join(tmp, "log")},
		{name: "run bad config file", args: []string{"run", "--data-dir", filepath.Join(tmp, "cfg"), "--config", "testdata/backend.bad.yml"}, code: exitUsage,
			stderr: []string{"store.backend"}, quietOut: true, notCreated: filepath.Join(tmp, "cfg")},
		{name: "run missing config file", args: []string{"run", "--data-dir", filepath.Join(tmp, "nocfg"), "--config", "testdata/missing.yml"}, code: exitUsage,
			stderr: []string{"cannot read config", "missing.yml"}, quietOut: true, notCreated: filepath.Join(tmp, "nocfg")},

		{name: "migrate --help", args: []string{"migrate", "--help"}, code: exitOK, stdout: []string{"mcpwatch migrate [--config FILE]", "-data-dir"}, quietErr: true},
		{name: "migrate unknown flag", args: []string{"migrate", "--bogus"}, code: exitUsage, stderr: []string{"-bogus"}, quietOut: true},
		{name: "migrate bad config", args: []string{"migrate", "--config", "testdata/many.bad.yml"}, code: exitUsage,
			stderr: []string{"bus.brokers[1]"}, quietOut: true},

		{name: "config check good", args: []string{"config", "check", "testdata/full.good.yml"}, code: exitOK,
			stdout: []string{"testdata/full.good.yml: ok\n"}, quietErr: true},
		{name: "config check empty file", args: []string{"config", "check", "testdata/empty.good.yml"}, code: exitOK,
			stdout: []string{"testdata/empty.good.yml: ok\n"}, quietErr: true},
		{name: "config without check", args: []string{"config"}, code: exitUsage, stderr: []string{"mcpwatch config check FILE"}, quietOut: true},
		{name: "config check without file", args: []string{"config", "check"}, code: exitUsage, stderr: []string{"mcpwatch config check FILE"}, quietOut: true},
		{name: "config check two files", args: []string{"config", "check", "a.yml", "b.yml"}, code: exitUsage, stderr: []string{"Usage:"}, quietOut: true},
		{name: "config unknown subcommand", args: []string{"config", "lint", "a.yml"}, code: exitUsage, stderr: []string{"Usage:"}, quietOut: true},
		{name: "config --help", args: []string{"config", "--help"}, code: exitOK, stdout: []string{"mcpwatch config check FILE"}, quietErr: true},
		{name: "config check --help", args: []string{"config", "check", "--help"}, code: exitOK, stdout: []string{"mcpwatch config check FILE"}, quietErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.args...)
			require.Equal(t, tc.code, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			for _, s := range tc.stdout {
				require.Contains(t, r.stdout, s)
			}
			for _, s := range tc.stderr {
				require.Contains(t, r.stderr, s)
			}
			if tc.quietOut {
				require.Empty(t, r.stdout)
			}
			if tc.quietErr {
				require.Empty(t, r.stderr)
			}
			if tc.notCreated != "" {
				require.NoDirExists(t, tc.notCreated, "a usage error starts nothing")
			}
		})
	}
}

// TestRunMainVersionFormat pins the whole version line, not just its start.
func TestRunMainVersionFormat(t *testing.T) {
	r := runCmd(t, "version")
	require.Equal(t, exitOK, r.code)
	require.Regexp(t, regexp.MustCompile(`^mcpwatch dev \(go1\.\d+[^)]*\)\n$`), r.stdout)
}
