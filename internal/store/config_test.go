package store_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// decode reads a store section the way the config loader does: defaults first, unknown keys are
// errors.
func decode(t *testing.T, doc string) store.Config {
	t.Helper()
	cfg := store.DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewBufferString(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	cfg.ApplyDefaults("/var/lib/mcpwatch")
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := decode(t, "retention_days: 7\n")
	require.Equal(t, store.BackendSQLite, cfg.Backend)
	require.Equal(t, filepath.Join("/var/lib/mcpwatch", "mcpwatch.db"), cfg.SQLite.Path)
	require.Equal(t, "mcpwatch", cfg.ClickHouse.Database)
	require.Equal(t, 5*time.Second, cfg.ClickHouse.DialTimeout)
	require.Equal(t, 7, cfg.RetentionDays)
	require.NoError(t, cfg.Validate())

	var empty store.Config
	empty.ApplyDefaults("data")
	require.Equal(t, store.BackendSQLite, empty.Backend)
	require.Equal(t, 30, empty.RetentionDays)
	require.NoError(t, empty.Validate())
}

func TestConfigClickHouse(t *testing.T) {
	cfg := decode(t, `
backend: clickhouse
clickhouse:
  addr: [ch1:9000, "[::1]:9440"]
  database: mcp_prod
  username: mcpwatch
  password: s3cret
  tls: true
  dial_timeout: 2s
`)
	require.NoError(t, cfg.Validate())
	require.Equal(t, []string{"ch1:9000", "[::1]:9440"}, cfg.ClickHouse.Addr)
	require.Equal(t, 2*time.Second, cfg.ClickHouse.DialTimeout)
	require.True(t, cfg.ClickHouse.TLS)
}

func TestConfigValidate(t *testing.T) {
	valid := func() store.Config {
		cfg := store.DefaultConfig()
		cfg.ApplyDefaults("data")
		return cfg
	}
	ch := func(mod func(*store.ClickHouseConfig)) store.Config {
		cfg := valid()
		cfg.Backend = store.BackendClickHouse
		cfg.ClickHouse.Addr = []string{"127.0.0.1:9000"}
		mod(&cfg.ClickHouse)
		return cfg
	}
	tests := []struct {
		name string
		cfg  store.Config
		want string
	}{
		{"unknown backend", func() store.Config { c := valid(); c.Backend = "postgres"; return c }(),
			`store.backend: must be "sqlite" or "clickhouse", got "postgres"`},
		{"no sqlite path", func() store.Config { c := valid(); c.SQLite.Path = ""; return c }(),
			"store.sqlite.path: must not be empty"},
		{"retention", func() store.Config { c := valid(); c.RetentionDays = -1; return c }(),
			"store.retention_days: must be at least 1, got -1"},
		{"no addr", ch(func(c *store.ClickHouseConfig) { c.Addr = nil }),
			"store.clickhouse.addr: must list at least one host:port"},
		{"addr without port", ch(func(c *store.ClickHouseConfig) { c.Addr = []string{"ok:9000", "ch2"} }),
			`store.clickhouse.addr[1]: must be host:port, got "ch2"`},
		{"addr bad port", ch(func(c *store.ClickHouseConfig) { c.Addr = []string{"ch:http"} }),
			`store.clickhouse.addr[0]: invalid port "http"`},
		{"database injection", ch(func(c *store.ClickHouseConfig) { c.Database = "x; DROP TABLE y" }),
			`store.clickhouse.database: must be letters, digits and underscores not starting with a digit, got "x; DROP TABLE y"`},
		{"database digit", ch(func(c *store.ClickHouseConfig) { c.Database = "1db" }),
			`store.clickhouse.database: must be letters, digits and underscores not starting with a digit, got "1db"`},
		{"dial timeout", ch(func(c *store.ClickHouseConfig) { c.DialTimeout = 0 }),
			"store.clickhouse.dial_timeout: must be positive"},
		// The SQLite path is irrelevant when ClickHouse is chosen, and vice versa.
		{"clickhouse ignores sqlite", func() store.Config {
			c := ch(func(*store.ClickHouseConfig) {})
			c.SQLite.Path = ""
			return c
		}(), ""},
		{"sqlite ignores clickhouse", func() store.Config { c := valid(); c.ClickHouse.Addr = []string{"bad"}; return c }(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.want)
			// Open refuses an invalid config before touching anything.
			_, err = store.Open(t.Context(), tc.cfg, pipeline.Settings{})
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestConfigUnknownKey(t *testing.T) {
	cfg := store.DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewBufferString("clickhouse:\n  adress: [x:1]\n"))
	dec.KnownFields(true)
	require.ErrorContains(t, dec.Decode(&cfg), "field adress not found")
}

func TestOpenSQLiteViaConfig(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.ApplyDefaults(filepath.Join(t.TempDir(), "data"))
	s, err := store.Open(t.Context(), cfg, pipeline.Settings{})
	require.NoError(t, err)
	require.IsType(t, &store.SQLite{}, s)
	require.NoError(t, s.Migrate(t.Context()))
	require.FileExists(t, cfg.SQLite.Path)
	require.NoError(t, s.Close())
}
