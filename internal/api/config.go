package api

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// DefaultListen is the API's address when none is configured: loopback only.
const DefaultListen = "127.0.0.1:7410"

// Config configures the HTTP API server.
type Config struct {
	// Listen is the host:port the API binds. Empty means DefaultListen (127.0.0.1:7410).
	Listen string `yaml:"listen"`
	// Tokens are the accepted bearer tokens. When any is set, every /api/ route requires
	// `Authorization: Bearer <token>`; /healthz, /readyz and /metrics stay open.
	Tokens []string `yaml:"tokens"`
	// AllowUnauthenticated permits a non-loopback Listen address without Tokens. Without it,
	// such a configuration is rejected so history is never exposed to the network by accident.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// TLS, when both files are set, serves HTTPS instead of HTTP.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig names a PEM certificate (chain) and its private key.
type TLSConfig struct {
	// CertFile is the path of the PEM certificate chain.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the path of the PEM private key.
	KeyFile string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// DefaultConfig returns the configuration used when the api section is absent.
func DefaultConfig() Config { return Config{Listen: DefaultListen} }

// SetDefaults fills zero values with defaults (see internal/config.Defaulter).
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
}

// listen returns Listen or its default.
func (c Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

// Validate checks the configuration; errors name the field, e.g. api.listen.
func (c Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.listen())
	if err != nil {
		errs = append(errs, fmt.Errorf("api.listen: must be host:port: %w", err))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("api.listen: port %q must be a number from 0 to 65535", port))
	}
	for i, t := range c.Tokens {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			errs = append(errs, fmt.Errorf("api.tokens[%d]: must be non-empty and contain no whitespace", i))
		}
	}
	if err == nil && !config.IsLoopbackHost(host) && len(c.Tokens) == 0 && !c.AllowUnauthenticated {
		errs = append(errs, fmt.Errorf("api.tokens: required when api.listen (%s) is not a loopback address; "+
			"set api.allow_unauthenticated: true to serve session history without authentication", c.listen()))
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile == "" {
		errs = append(errs, errors.New("api.tls.key_file: required when api.tls.cert_file is set"))
	}
	if c.TLS.KeyFile != "" && c.TLS.CertFile == "" {
		errs = append(errs, errors.New("api.tls.cert_file: required when api.tls.key_file is set"))
	}
	return errors.Join(errs...)
}
