package stdiotap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/collector/capture"
)

// Defaults for Config fields left empty.
const (
	DefaultMaxLineBytes   = 4 << 20
	DefaultRequestTimeout = 5 * time.Minute
	DefaultMaxPending     = 1024
	// MaxAgentBytes bounds AgentID, as the HTTP tap bounds the agent ids it accepts.
	MaxAgentBytes = 256
)

// Config configures the stdio tap.
type Config struct {
	// AgentID attributes every event to this agent (wrap --agent): at most MaxAgentBytes of
	// printable UTF-8, without surrounding spaces. Empty: the clientInfo name the client sends
	// in initialize.
	AgentID string `yaml:"agent_id"`
	// ServerID names the MCP server in events (wrap --server). Empty: derived from the command
	// with ServerName.
	ServerID string `yaml:"server_id"`
	// CollectorID names this tap in events. Default "stdiotap@" + the host name.
	CollectorID string `yaml:"collector_id"`
	// MaxLineBytes bounds the line (one message or batch) the tap parses; longer lines are
	// relayed untouched and recorded as unparsed. Default 4 MiB.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// RequestTimeout is how long a request may wait for its response before it is recorded as
	// a timeout (the traffic is left alone; a late response is then not paired). Default 5m.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxPending bounds the requests awaiting an answer, per direction; beyond it requests are
	// not tracked. Default 1024.
	MaxPending int `yaml:"max_pending"`
	// Capture decides what content events carry, as collector.capture,
	// collector.inspection_max_bytes and collector.definitions_max_bytes do for the HTTP tap:
	// by default none is captured, and arguments and results travel masked and size-capped for
	// the enricher's inspection (and list results whole, for drift), which drops them before
	// storage.
	Capture capture.Config `yaml:"-"`
}

// Validate reports every invalid field by its flag or key name.
func (c Config) Validate() error {
	var errs []error
	// Held to what the HTTP tap accepts from a client, so a wrap cannot put in its events an
	// agent id no other collector would (a newline to forge log lines, a megabyte of name).
	// The server's name likewise.
	for _, f := range []struct{ flag, v string }{{"--agent", c.AgentID}, {"--server", c.ServerID}} {
		switch {
		case len(f.v) > MaxAgentBytes:
			errs = append(errs, fmt.Errorf("%s: must be at most %d bytes, got %d", f.flag, MaxAgentBytes, len(f.v)))
		case !utf8.ValidString(f.v) || strings.IndexFunc(f.v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			errs = append(errs, fmt.Errorf("%s: must be printable UTF-8 (no control characters)", f.flag))
		case strings.TrimSpace(f.v) != f.v:
			errs = append(errs, fmt.Errorf("%s: must not begin or end with spaces", f.flag))
		}
	}
	if c.MaxLineBytes < 0 {
		errs = append(errs, errors.New("Config.MaxLineBytes: must not be negative"))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("Config.RequestTimeout: must not be negative"))
	}
	if err := c.Capture.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxPending < 0 {
		errs = append(errs, errors.New("Config.MaxPending: must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.CollectorID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.CollectorID = "stdiotap@" + host
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	return c
}

// launchers run a package or script named by their first argument; the server is named after
// that argument rather than after the launcher.
var launchers = map[string]bool{
	"npx": true, "bunx": true, "pnpx": true, "uvx": true, "pipx": true, "deno": true,
	"node": true, "bun": true, "python": true, "python3": true, "uv": true,
}

// ServerName derives a server name from a command line: the command's base name, or for
// launchers (npx, uvx, node, python, …) the first argument that is not a flag, without
// its package scope, version or file extension. `npx -y @modelcontextprotocol/server-filesystem
// /tmp` is server-filesystem; `uvx mcp-server-git` is mcp-server-git; `./srv` is srv.
func ServerName(args []string) string {
	if len(args) == 0 {
		return "unknown"
	}
	name := filepath.Base(args[0])
	if !launchers[strings.TrimSuffix(name, ".exe")] {
		return name
	}
	skip := map[string]bool{"run": true, "exec": true, "dlx": true, "x": true, "tool": true, "--": true}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") || skip[a] {
			continue
		}
		base := filepath.Base(a)
		if i := strings.LastIndex(base, "@"); i > 0 { // name@version
			base = base[:i]
		}
		base = strings.TrimSuffix(base, filepath.Ext(base))
		if base == "index" || base == "main" || base == "server" {
			// node dist/index.js: the directory above the build output says more.
			dir := filepath.Base(filepath.Dir(filepath.Dir(a)))
			if dir != "." && dir != "/" && dir != "" {
				return dir
			}
		}
		if base != "" && base != "." {
			return base
		}
	}
	return name
}
