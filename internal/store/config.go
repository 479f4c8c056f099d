package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Backend names.
const (
	BackendSQLite     = "sqlite"
	BackendClickHouse = "clickhouse"
)

// Config selects and configures the store backend.
type Config struct {
	// Backend is "sqlite" (the default: one embedded file under the data dir) or "clickhouse".
	Backend string `yaml:"backend"`
	// SQLite configures the embedded backend.
	SQLite SQLiteConfig `yaml:"sqlite"`
	// ClickHouse configures the ClickHouse backend.
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	// RetentionDays is how long events and anomalies are kept (default 30). DropExpired enforces
	// it on both backends; modern ClickHouse servers also get a table TTL.
	RetentionDays int `yaml:"retention_days"`
}

// SQLiteConfig configures the embedded SQLite backend.
type SQLiteConfig struct {
	// Path is the database file; ApplyDefaults sets it to <data dir>/mcpwatch.db.
	Path string `yaml:"path"`
}

// ClickHouseConfig configures the ClickHouse backend (native protocol).
type ClickHouseConfig struct {
	// Addr lists host:port native-protocol endpoints (port 9000, or 9440 with TLS).
	Addr []string `yaml:"addr"`
	// Database holds mcpwatch's tables (default "mcpwatch"); Migrate creates it when missing.
	Database string `yaml:"database"`
	// Username and Password authenticate; an empty Username means "default".
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS enables TLS with the system roots.
	TLS bool `yaml:"tls"`
	// DialTimeout bounds connecting to a server (default 5s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// DefaultConfig returns the defaults; SQLite.Path is left for ApplyDefaults, which knows the
// data dir.
func DefaultConfig() Config {
	return Config{
		Backend:       BackendSQLite,
		ClickHouse:    ClickHouseConfig{Database: "mcpwatch", DialTimeout: 5 * time.Second},
		RetentionDays: 30,
	}
}

// ApplyDefaults fills unset fields with their defaults, placing the SQLite file under dataDir.
func (c *Config) ApplyDefaults(dataDir string) {
	d := DefaultConfig()
	if c.Backend == "" {
		c.Backend = d.Backend
	}
	if c.SQLite.Path == "" {
		c.SQLite.Path = filepath.Join(dataDir, "mcpwatch.db")
	}
	if c.ClickHouse.Database == "" {
		c.ClickHouse.Database = d.ClickHouse.Database
	}
	if c.ClickHouse.DialTimeout == 0 {
		c.ClickHouse.DialTimeout = d.ClickHouse.DialTimeout
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = d.RetentionDays
	}
}

// identRe is what we accept as a ClickHouse database name: it is spliced into SQL unquoted.
var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate reports the first invalid field, named by its path under "store.".
func (c Config) Validate() error {
	switch c.Backend {
	case BackendSQLite:
		if c.SQLite.Path == "" {
			return errors.New("store.sqlite.path: must not be empty")
		}
	case BackendClickHouse:
		ch := c.ClickHouse
		if len(ch.Addr) == 0 {
			return errors.New("store.clickhouse.addr: must list at least one host:port")
		}
		for i, a := range ch.Addr {
			host, port, err := net.SplitHostPort(a)
			if err != nil || host == "" {
				return fmt.Errorf("store.clickhouse.addr[%d]: must be host:port, got %q", i, a)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("store.clickhouse.addr[%d]: invalid port %q", i, port)
			}
		}
		if !identRe.MatchString(ch.Database) {
			return fmt.Errorf("store.clickhouse.database: must be letters, digits and underscores not starting with a digit, got %q", ch.Database)
		}
		if ch.DialTimeout <= 0 {
			return errors.New("store.clickhouse.dial_timeout: must be positive")
		}
	default:
		return fmt.Errorf("store.backend: must be %q or %q, got %q", BackendSQLite, BackendClickHouse, c.Backend)
	}
	if c.RetentionDays < 1 {
		return fmt.Errorf("store.retention_days: must be at least 1, got %d", c.RetentionDays)
	}
	return nil
}

// Open validates cfg and connects to the configured backend. It does not migrate: callers run
// Migrate (mcpwatch migrate, or the writer at start-up).
func Open(ctx context.Context, cfg Config, settings pipeline.Settings) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Return an untyped nil on failure: a nil *ClickHouse in a Store is not == nil.
	switch cfg.Backend {
	case BackendClickHouse:
		if s, err := OpenClickHouse(ctx, cfg.ClickHouse, cfg.RetentionDays, settings); err == nil {
			return s, nil
		} else {
			return nil, err
		}
	default:
		if s, err := OpenSQLite(ctx, cfg.SQLite.Path, cfg.RetentionDays, settings); err == nil {
			return s, nil
		} else {
			return nil, err
		}
	}
}
