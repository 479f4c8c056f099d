package httptap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
)

// Defaults for Config fields left empty.
const (
	DefaultListen = "127.0.0.1:7400"
	// DefaultAgentHeader is the agent-id header unless collector.identity.header says otherwise.
	DefaultAgentHeader        = identity.DefaultHeader
	DefaultRequestTimeout     = 5 * time.Minute
	DefaultMaxMessageBytes    = 4 << 20
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultMaxSessions        = 10000
	DefaultMaxPending         = 1024
)

// Config configures the Streamable HTTP tap (the collector.http section).
type Config struct {
	// Listen is the host:port MCP clients connect to; port 0 picks a free port.
	// Default 127.0.0.1:7400.
	Listen string `yaml:"listen"`
	// Upstreams are the MCP servers behind the tap. /mcp goes to the one named "default", or to
	// the first; /mcp/{name} goes to the one named name.
	Upstreams []Upstream `yaml:"upstreams"`
	// TLS serves the tap over HTTPS, optionally verifying client certificates (mTLS), which
	// then attribute requests to agents (collector.identity).
	TLS ListenerTLS `yaml:"tls"`
	// RequestTimeout is how long a request may wait for its response before it is recorded as
	// a timeout (the traffic itself is left alone). Default 5m.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxMessageBytes bounds the bytes of one body or SSE event the tap parses; larger ones
	// pass through unparsed and are recorded as unparsed events. Default 4 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// CollectorID names this tap in events. Default "httptap@" + the host name.
	CollectorID string `yaml:"collector_id"`
	// SessionIdleTimeout is how long a session without requests is remembered. Default 30m.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	// MaxSessions bounds the sessions remembered at once; the least recently used is forgotten
	// first. Default 10000.
	MaxSessions int `yaml:"max_sessions"`
	// MaxPending bounds the requests awaiting an answer per HTTP exchange, and the server
	// requests awaiting the client's answer per session; beyond it they are not tracked.
	// Default 1024.
	MaxPending int `yaml:"max_pending"`

	// Identity, Sessions and Capture come from the collector-wide sections (collector.identity,
	// collector.sessions, collector.capture and collector.inspection_max_bytes), which the app
	// copies in; zero values take their defaults: attribution by the default precedence,
	// sessions stitched after a 15m gap and not kept across restarts, inspection content up to
	// 4 KiB and no capture.
	Identity identity.Config         `yaml:"-"`
	Sessions identity.SessionsConfig `yaml:"-"`
	Capture  capture.Config          `yaml:"-"`
}

// ListenerTLS configures HTTPS on the tap's listener.
type ListenerTLS struct {
	// CertFile and KeyFile are the tap's PEM certificate (chain) and key; set both to serve
	// HTTPS. They are re-read when they change on disk (checked at most every 5s).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of the CAs client certificates must chain to; setting it
	// turns on mTLS.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is require (every client must present a valid certificate; the default with a
	// client CA) or verify_if_given (clients without one are let through, attributed by the
	// other methods).
	ClientAuth string `yaml:"client_auth"`
}

// Client authentication modes of ListenerTLS.ClientAuth.
const (
	ClientAuthRequire       = "require"
	ClientAuthVerifyIfGiven = "verify_if_given"
)

// UpstreamTLS configures the TLS connection to an https upstream.
type UpstreamTLS struct {
	// CAFile is a PEM bundle trusted for the upstream's certificate instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and key for upstreams that require mTLS;
	// re-read when they change on disk.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the upstream's certificate is checked against (and sent as SNI),
	// when it differs from the URL's host. The Host header stays the URL's host.
	ServerName string `yaml:"server_name"`
}

func (u UpstreamTLS) isZero() bool { return u == UpstreamTLS{} }

// Upstream is one MCP server behind the tap.
type Upstream struct {
	// Name is the route (/mcp/{name}) and the ServerID of its events.
	Name string `yaml:"name"`
	// URL is the server's Streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp.
	URL string `yaml:"url"`
	// TLS configures the connection to an https URL.
	TLS UpstreamTLS `yaml:"tls"`
}

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate reports every invalid field, named by its path under collector.http. Empty fields
// are valid: they take their defaults.
func (c *Config) Validate() error {
	var errs []error
	bad := badField(&errs)
	if len(c.Upstreams) == 0 {
		bad("upstreams", "at least one upstream is required")
	}
	seen := map[string]bool{}
	for i, u := range c.Upstreams {
		switch {
		case u.Name == "":
			bad(fmt.Sprintf("upstreams[%d].name", i), "must not be empty")
		case !upstreamName.MatchString(u.Name):
			bad(fmt.Sprintf("upstreams[%d].name", i), "must be letters, digits, '.', '_' or '-', got %q", u.Name)
		case seen[u.Name]:
			bad(fmt.Sprintf("upstreams[%d].name", i), "duplicate name %q", u.Name)
		}
		seen[u.Name] = true
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(fmt.Sprintf("upstreams[%d].url", i), "must be an absolute http(s) URL, got %q", u.URL)
		} else if pu.Scheme == "http" && !u.TLS.isZero() {
			bad(fmt.Sprintf("upstreams[%d].tls", i), "is set but the url is not https")
		}
		if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
			bad(fmt.Sprintf("upstreams[%d].tls", i), "set both cert_file and key_file, or neither")
		}
	}
	errs = append(errs, c.ValidateListener())
	if c.RequestTimeout < 0 {
		bad("request_timeout", "must not be negative")
	}
	if c.MaxMessageBytes < 0 {
		bad("max_message_bytes", "must not be negative")
	}
	if c.SessionIdleTimeout < 0 {
		bad("session_idle_timeout", "must not be negative")
	}
	if c.MaxSessions < 0 {
		bad("max_sessions", "must not be negative")
	}
	if c.MaxPending < 0 {
		bad("max_pending", "must not be negative")
	}
	errs = append(errs, c.Identity.Validate(), c.Sessions.Validate(), c.Capture.Validate())
	return errors.Join(errs...)
}

// ValidateListener reports the invalid fields of the collector's listener, listen and tls, named
// under collector.http. Validate includes it; without upstreams, the listener serving event
// ingest alone takes these fields too, and the rest of the section is unused.
func (c *Config) ValidateListener() error {
	var errs []error
	bad := badField(&errs)
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			bad("listen", "must be host:port, got %q", c.Listen)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		bad("tls.client_ca_file", "needs cert_file and key_file: mTLS needs HTTPS")
	}
	switch c.TLS.ClientAuth {
	case "":
	case ClientAuthRequire, ClientAuthVerifyIfGiven:
		if c.TLS.ClientCAFile == "" {
			bad("tls.client_auth", "needs client_ca_file")
		}
	default:
		bad("tls.client_auth", "must be require or verify_if_given, got %q", c.TLS.ClientAuth)
	}
	return errors.Join(errs...)
}

// badField returns a function that appends a problem with a collector.http field to errs.
func badField(errs *[]error) func(field, format string, args ...any) {
	return func(field, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("collector.http.%s: %s", field, fmt.Sprintf(format, args...)))
	}
}

// withDefaults returns c with empty fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.CollectorID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.CollectorID = "httptap@" + host
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	return c
}
