package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		file string
		// want is the whole error output, line by line; "%s" stands for the file's path.
		want []string
	}{
		{file: "full.good.yml"},
		{file: "empty.good.yml"},
		{file: "unknown_key.bad.yml", want: []string{"%s:4: field upstream not found in type httptap.Config"}},
		{file: "wrong_type.bad.yml", want: []string{"%s:4: cannot unmarshal !!str `soon` into time.Duration"}},
		// go.yaml.in/yaml/v3 reports an unclosed flow sequence a line early: line 1, not 2.
		{file: "syntax.bad.yml", want: []string{`%s:1: did not find expected ',' or ']'`}},
		{file: "broker.bad.yml", want: []string{"%s:", `bus.brokers[0]: "kafka-1" is not host:port`}},
		{file: "webhook_url.bad.yml", want: []string{"%s:", "alerting.webhooks[0].url: must be an absolute http(s) URL"}},
		{file: "backend.bad.yml", want: []string{"%s:", `store.backend: must be "sqlite" or "clickhouse", got "postgres"`}},
		{file: "upstream_url.bad.yml", want: []string{"%s:", `collector.http.upstreams[0].url: must be an absolute http(s) URL, got "ftp://127.0.0.1/mcp"`}},
		// Every invalid value is reported in one run, not just the first.
		{file: "many.bad.yml", want: []string{
			"%s:",
			`log.level: must be debug, info, warn or error, got "loud"`,
			`bus.brokers[1]: "kafka-2" is not host:port`,
			`store.backend: must be "sqlite" or "clickhouse", got "postgres"`,
			"alerting.webhooks[1].url: must be an absolute http(s) URL",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			// The good file expands ${MCPWATCH_TEST_DATA_DIR:-…}; its default must do too.
			t.Setenv("MCPWATCH_TEST_DATA_DIR", "")
			path := filepath.Join("testdata", tc.file)
			r := runCmd(t, "config", "check", path)
			if strings.HasSuffix(tc.file, ".good.yml") {
				require.Equal(t, exitOK, r.code, r.stderr)
				require.Equal(t, path+": ok\n", r.stdout)
				require.Empty(t, r.stderr)
				return
			}
			require.Equal(t, exitFailure, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			require.Empty(t, r.stdout)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "%s", path)
			}
			require.Equal(t, want, strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"))
		})
	}
}

// TestConfigCheckLineNumbers: YAML-level problems point at a line of the file, so an operator
// can find them.
func TestConfigCheckLineNumbers(t *testing.T) {
	for _, file := range []string{"unknown_key.bad.yml", "wrong_type.bad.yml", "syntax.bad.yml"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			r := runCmd(t, "config", "check", path)
			require.Equal(t, exitFailure, r.code)
			require.Regexp(t, "^"+regexp.QuoteMeta(path)+`:\d+: `, r.stderr)
		})
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	r := runCmd(t, "config", "check", filepath.Join(t.TempDir(), "nope.yml"))
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "cannot read config")
	require.Contains(t, r.stderr, "nope.yml")
	require.Empty(t, r.stdout)
}

var schemaVersionRe = regexp.MustCompile(`^store (\w+) is at schema version (\d+)\n$`)

// migrateOK runs migrate with args and returns the backend and schema version it printed.
func migrateOK(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := runCmd(t, append([]string{"migrate"}, args...)...)
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	m := schemaVersionRe.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "stdout: %q", r.stdout)
	v, err := strconv.Atoi(m[2])
	require.NoError(t, err)
	return m[1], v
}

func TestMigrateSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	backend, v := migrateOK(t, "--data-dir", dir)
	require.Equal(t, store.BackendSQLite, backend)
	require.GreaterOrEqual(t, v, 1)

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the data dir is owner-only")
	db := filepath.Join(dir, "mcpwatch.db")
	fi, err = os.Stat(db)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the store file is owner-only")
	require.Positive(t, fi.Size())

	// Again: nothing to do, same version.
	_, again := migrateOK(t, "--data-dir", dir)
	require.Equal(t, v, again)

	// The store really is at that version (not just what migrate printed).
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, db, 30, pipeline.Settings{})
	require.NoError(t, err)
	defer st.Close()
	got, err := st.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, v, got)
}

// TestMigrateDataDirFromConfig: --data-dir overrides the file's data_dir; without the flag the
// file's applies.
func TestMigrateDataDirFromConfig(t *testing.T) {
	tmp := t.TempDir()
	fileDir, flagDir := filepath.Join(tmp, "from-file"), filepath.Join(tmp, "from-flag")
	cfg := filepath.Join(tmp, "mcpwatch.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("data_dir: "+fileDir+"\n"), 0o600))

	migrateOK(t, "--config", cfg, "--data-dir", flagDir)
	require.FileExists(t, filepath.Join(flagDir, "mcpwatch.db"))
	require.NoDirExists(t, fileDir)

	migrateOK(t, "--config", cfg)
	require.FileExists(t, filepath.Join(fileDir, "mcpwatch.db"))
}

func TestMigrateFailure(t *testing.T) {
	// The data dir's parent is a file: the directory cannot be created.
	tmp := t.TempDir()
	blocker := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	r := runCmd(t, "migrate", "--data-dir", filepath.Join(blocker, "data"))
	require.Equal(t, exitFailure, r.code)
	require.Contains(t, r.stderr, "cannot create data dir")
	require.Empty(t, r.stdout)
}

func TestMigrateClickHouse(t *testing.T) {
	addr := os.Getenv("MCPWATCH_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		if os.Getenv("MCPWATCH_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatal("MCPWATCH_REQUIRE_CLICKHOUSE=1 but MCPWATCH_TEST_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("MCPWATCH_TEST_CLICKHOUSE_ADDR is unset; start a server with scripts/clickhouse.sh")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	database := "mcpwatch_cmdtest_" + hex.EncodeToString(b)
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	cfgPath := filepath.Join(tmp, "mcpwatch.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`store:
  backend: clickhouse
  clickhouse:
    addr: [`+addr+`]
    database: `+database+`
`), 0o600))
	t.Cleanup(func() {
		ctx := context.Background()
		st, err := store.Open(ctx, store.Config{
			Backend:       store.BackendClickHouse,
			ClickHouse:    store.ClickHouseConfig{Addr: []string{addr}, Database: database, DialTimeout: store.DefaultConfig().ClickHouse.DialTimeout},
			RetentionDays: 30,
		}, pipeline.Settings{})
		require.NoError(t, err)
		defer st.Close()
		require.NoError(t, st.(*store.ClickHouse).DropDatabase(ctx))
	})

	backend, v := migrateOK(t, "--config", cfgPath, "--data-dir", dataDir)
	require.Equal(t, store.BackendClickHouse, backend)
	require.GreaterOrEqual(t, v, 1)
	_, again := migrateOK(t, "--config", cfgPath, "--data-dir", dataDir)
	require.Equal(t, v, again)
	require.NoDirExists(t, dataDir, "with ClickHouse, migrate leaves no files behind")
}

func TestMigrateClickHouseUnreachable(t *testing.T) {
	// A port nothing listens on: migrate fails (exit 1), it is not a usage error.
	port := freeTCPPort(t)
	cfgPath := filepath.Join(t.TempDir(), "mcpwatch.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`store:
  backend: clickhouse
  clickhouse:
    addr: [127.0.0.1:`+strconv.Itoa(port)+`]
    dial_timeout: 2s
`), 0o600))
	r := runCmd(t, "migrate", "--config", cfgPath)
	require.Equal(t, exitFailure, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Contains(t, r.stderr, "mcpwatch migrate:")
	require.Empty(t, r.stdout)
}
