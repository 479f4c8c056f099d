package ingest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Path is where the ingest endpoint is served.
const Path = "/ingest/v1/events"

// Defaults for Config and ClientConfig fields left empty.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultURL          = "http://127.0.0.1:7400"
	DefaultTimeout      = 10 * time.Second
	DefaultBatchBytes   = 1 << 20
)

// Config configures the ingest endpoint (the collector.ingest section).
type Config struct {
	// Disabled turns the endpoint off.
	Disabled bool `yaml:"disabled"`
	// Token, when set, is the bearer token clients must send (Authorization: Bearer TOKEN).
	// Without one, any process that can reach the listener may post events, so it is required
	// when the listener is not loopback and does not require client certificates
	// (ValidateListener).
	Token string `yaml:"token"`
	// MaxBodyBytes bounds one request's body; larger ones get 413. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// Validate reports every invalid field, named under collector.ingest.
func (c Config) Validate() error {
	var errs []error
	// Said without echoing the token: config errors end up in logs.
	if strings.ContainsAny(c.Token, " \t\r\n") {
		errs = append(errs, errors.New("collector.ingest.token: must not contain whitespace"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("collector.ingest.max_body_bytes: must not be negative"))
	}
	return errors.Join(errs...)
}

// ValidateListener checks the endpoint against the listener serving it, collector.http.listen
// (listen, host:port), whether the HTTP tap's or, without upstreams, a Server of its own: one
// that other machines can reach must not take events from anyone, so it needs Token unless
// clientCertsRequired (the listener's collector.http.tls refuses clients without a verified
// certificate). A disabled endpoint needs nothing; an unparsable listen is reported elsewhere.
func (c Config) ValidateListener(listen string, clientCertsRequired bool) error {
	if c.Disabled || c.Token != "" || clientCertsRequired {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil || config.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("collector.ingest.token: required when collector.http.listen (%s) is not loopback "+
		"(or require client certificates: collector.http.tls.client_ca_file with client_auth: require)", listen)
}

// ClientConfig configures a Client (the flags of `mcpwatch wrap`).
type ClientConfig struct {
	// URL is the running mcpwatch's collector listener, e.g. http://127.0.0.1:7400; Path is
	// appended when the URL has no path. Default DefaultURL.
	URL string `yaml:"url"`
	// Token is the bearer token the endpoint wants, if any.
	Token string `yaml:"token"`
	// SpoolDir is the directory under which the client keeps its spool (a subdirectory per
	// process); directories other processes left behind are sent too. Required.
	SpoolDir string `yaml:"spool_dir"`
	// MaxSpoolBytes bounds this process's spool. Default 256 MiB.
	MaxSpoolBytes int64 `yaml:"max_spool_bytes"`
	// Timeout bounds one POST. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// BatchBytes bounds the events in one POST. Default 1 MiB.
	BatchBytes int `yaml:"batch_bytes"`
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = 256 << 20
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	return c
}

// Validate reports every invalid field by its flag name, or by its Go field name where no flag
// of `mcpwatch wrap` sets it.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--mcpwatch: must be an absolute http(s) URL, got %q", c.URL))
		}
	}
	if c.SpoolDir == "" {
		errs = append(errs, errors.New("--spool-dir: must not be empty"))
	}
	if c.MaxSpoolBytes < 0 {
		errs = append(errs, errors.New("--spool-max-bytes: must not be negative"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("ClientConfig.Timeout: must not be negative"))
	}
	if c.BatchBytes < 0 {
		errs = append(errs, errors.New("ClientConfig.BatchBytes: must not be negative"))
	}
	return errors.Join(errs...)
}

// endpoint is the URL events are posted to.
func (c ClientConfig) endpoint() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return c.URL
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = Path
	}
	return u.String()
}
