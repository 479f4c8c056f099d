package httptap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"
)

// Defaults for Config fields left empty.
const (
	DefaultListen             = "127.0.0.1:7400"
	DefaultAgentHeader        = "X-Mcpwatch-Agent"
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
	// AgentHeader is the request header a client may use to declare its agent id.
	// Default X-Mcpwatch-Agent.
	AgentHeader string `yaml:"agent_header"`
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
}

// Upstream is one MCP server behind the tap.
type Upstream struct {
	// Name is the route (/mcp/{name}) and the ServerID of its events.
	Name string `yaml:"name"`
	// URL is the server's Streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp.
	URL string `yaml:"url"`
}

var (
	upstreamName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	headerToken  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Validate reports every invalid field, named by its path under collector.http. Empty fields
// are valid: they take their defaults.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("collector.http.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			bad("listen", "must be host:port, got %q", c.Listen)
		}
	}
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
		if pu, err := url.Parse(u.URL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(fmt.Sprintf("upstreams[%d].url", i), "must be an absolute http(s) URL, got %q", u.URL)
		}
	}
	if c.AgentHeader != "" && !headerToken.MatchString(c.AgentHeader) {
		bad("agent_header", "must be a valid HTTP header name, got %q", c.AgentHeader)
	}
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
	return errors.Join(errs...)
}

// withDefaults returns c with empty fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AgentHeader == "" {
		c.AgentHeader = DefaultAgentHeader
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
