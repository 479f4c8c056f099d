package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/httptap"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/ingest"
	"github.com/mcpwatch/mcpwatch/collector/otlp"
	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/enricher"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// DefaultDataDir holds the embedded broker's and store's files unless configured otherwise.
const DefaultDataDir = "./mcpwatch-data"

// Config is the whole configuration file: a section per role.
type Config struct {
	// DataDir holds the embedded broker's data (kafka/) and the embedded store (mcpwatch.db).
	DataDir string `yaml:"data_dir"`
	// Log configures mcpwatch's own logs (stderr).
	Log LogConfig `yaml:"log"`
	// Bus is Kafka; empty brokers start the embedded broker.
	Bus bus.Config `yaml:"bus"`
	// Store is where events, sessions and anomalies are kept.
	Store store.Config `yaml:"store"`
	// Writer tunes the role that writes the bus into the store.
	Writer store.WriterConfig `yaml:"writer"`
	// Collector configures the taps.
	Collector CollectorConfig `yaml:"collector"`
	// Enricher configures labels (and later content inspection).
	Enricher enricher.Config `yaml:"enricher"`
	// Detector configures the models.
	Detector detector.Config `yaml:"detector"`
	// Alerting configures sinks.
	Alerting alerting.Config `yaml:"alerting"`
	// API configures the HTTP API, /metrics and health endpoints.
	API api.Config `yaml:"api"`
}

// CollectorConfig groups the taps.
type CollectorConfig struct {
	// HTTP is the Streamable HTTP tap. Without upstreams its listen and tls configure the
	// listener that serves event ingest alone.
	HTTP httptap.Config `yaml:"http"`
	// Ingest is the endpoint (POST /ingest/v1/events on the collector's listener,
	// collector.http.listen) that `mcpwatch wrap` and other external collectors send events to.
	Ingest ingest.Config `yaml:"ingest"`
	// Spool is the disk spool the collectors' events are written to before they are produced.
	Spool bus.SpoolConfig `yaml:"spool"`
	// OTLP is the OTLP trace receiver, turning MCP spans into events (off unless enabled).
	OTLP otlp.Config `yaml:"otlp"`
	// Identity attributes operations to agents: mTLS, bearer JWT, header, baggage, clientInfo.
	Identity identity.Config `yaml:"identity"`
	// Sessions stitches operations that carry no protocol session id into sessions.
	Sessions identity.SessionsConfig `yaml:"sessions"`
	// Capture opts servers and tools in to storing their content, masked and truncated.
	Capture []capture.Rule `yaml:"capture"`
	// InspectionMaxBytes caps the content (arguments and result, each) carried on mcp.events
	// for inspection, which the enricher drops unless captured; 0 turns it off. Default 4096.
	InspectionMaxBytes *int `yaml:"inspection_max_bytes"`
	// DefinitionsMaxBytes caps the list results (tools/list, prompts/list, resources/list,
	// resources/templates/list) carried on mcp.events for tool-definition drift; a list cut
	// at the cap is not compared. 0 turns it off. Default 262144 (256 KiB, the most allowed).
	DefinitionsMaxBytes *int `yaml:"definitions_max_bytes"`
}

// TapConfig is the HTTP tap's configuration with the collector-wide sections it uses.
func (c CollectorConfig) TapConfig() httptap.Config {
	h := c.HTTP
	h.Identity, h.Sessions = c.Identity, c.Sessions
	h.Capture = c.captureConfig()
	return h
}

func (c CollectorConfig) captureConfig() capture.Config {
	return capture.Config{Rules: c.Capture, InspectionMaxBytes: c.InspectionMaxBytes, DefinitionsMaxBytes: c.DefinitionsMaxBytes}
}

// OTLPConfig is the OTLP receiver's configuration with the capture policy it applies and the
// session stitching (collector.sessions) the tap uses too.
func (c CollectorConfig) OTLPConfig() otlp.Config {
	o := c.OTLP
	o.Capture = c.captureConfig()
	o.Sessions = c.Sessions
	return o
}

// ingestListener checks the ingest endpoint against the listener it is served on, which
// applies collector.http.tls whether it is the tap's or, without upstreams, serves ingest alone:
// required client certificates guard it either way.
func (c CollectorConfig) ingestListener() error {
	listen := c.HTTP.Listen
	if listen == "" {
		listen = httptap.DefaultListen
	}
	t := c.HTTP.TLS
	certs := t.CertFile != "" && t.ClientCAFile != "" &&
		(t.ClientAuth == "" || t.ClientAuth == httptap.ClientAuthRequire)
	return c.Ingest.ValidateListener(listen, certs)
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text or json (default text).
	Format string `yaml:"format"`
}

// SetDefaults fills zero values; it runs after the file and the flags, so the store file
// follows a data dir given either way.
func (c *Config) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	c.Bus.SetDefaults()
	c.Collector.Ingest.SetDefaults()
	c.Collector.Spool.SetDefaults(c.DataDir)
	c.Collector.OTLP.SetDefaults()
	c.Collector.Identity = c.Collector.Identity.WithDefaults()
	c.Collector.Sessions = c.Collector.Sessions.WithDefaults()
	if c.Collector.Sessions.StateFile == "" {
		c.Collector.Sessions.StateFile = filepath.Join(c.DataDir, "collector-sessions.json")
	}
	if c.Collector.InspectionMaxBytes == nil {
		n := capture.DefaultInspectionMaxBytes
		c.Collector.InspectionMaxBytes = &n
	}
	if c.Collector.DefinitionsMaxBytes == nil {
		n := capture.DefaultDefinitionsMaxBytes
		c.Collector.DefinitionsMaxBytes = &n
	}
	c.Store.ApplyDefaults(c.DataDir)
	c.Writer.SetDefaults()
	c.Enricher.SetDefaults()
	c.Detector.SetDefaults()
	c.Alerting.SetDefaults()
	c.API.SetDefaults()
}

// Validate reports every invalid field by its path.
func (c *Config) Validate() error {
	var errs []error
	if _, err := c.Log.SlogLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: must be text or json, got %q", c.Log.Format))
	}
	errs = append(errs, c.Bus.Validate(), c.Store.Validate(), c.Writer.Validate(), c.Enricher.Validate(),
		c.Detector.Validate(), c.Alerting.Validate(), c.API.Validate(),
		c.Collector.Ingest.Validate(), c.Collector.ingestListener(), c.Collector.Spool.Validate(), c.Collector.OTLP.Validate(),
		c.Collector.Identity.Validate(), c.Collector.Sessions.Validate(),
		c.Collector.captureConfig().Validate())
	// An empty upstream list is allowed: run then starts without the tap and says so, and the
	// listener (listen and tls) serves event ingest alone.
	if len(c.Collector.HTTP.Upstreams) > 0 {
		errs = append(errs, c.Collector.HTTP.Validate())
	} else {
		errs = append(errs, c.Collector.HTTP.ValidateListener())
	}
	return errors.Join(errs...)
}

// SlogLevel parses Level.
func (l LogConfig) SlogLevel() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("log.level: must be debug, info, warn or error, got %q", l.Level)
	}
	return lv, nil
}

// LoadConfig reads a configuration file (an empty path means none: defaults only), applies
// override (command-line flags; may be nil), fills defaults and validates.
func LoadConfig(path string, override func(*Config) error) (Config, error) {
	var c Config
	if path != "" {
		// Decode through a method-less alias: defaults and validation come after the flags.
		type plain Config
		if err := config.Load(path, (*plain)(&c)); err != nil {
			return Config{}, err
		}
	}
	if override != nil {
		if err := override(&c); err != nil {
			return Config{}, err
		}
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		if path != "" {
			return Config{}, fmt.Errorf("%s:\n%w", path, err)
		}
		return Config{}, err
	}
	return c, nil
}

// AddUpstream adds a --upstream [NAME=]URL flag value to the HTTP tap's upstreams. Unnamed
// upstreams are called "default" (the /mcp route), then upstream-2, upstream-3, ….
func (c *Config) AddUpstream(spec string) error {
	name, url, named := strings.Cut(spec, "=")
	if !named || strings.Contains(name, "/") || strings.Contains(name, ":") {
		name, url = "", spec
	}
	ups := &c.Collector.HTTP.Upstreams
	if name == "" {
		name = "default"
		// Skip names already taken, including by a named upstream ("upstream-3=URL").
		for n := len(*ups) + 1; slices.ContainsFunc(*ups, func(u httptap.Upstream) bool { return u.Name == name }); n++ {
			name = fmt.Sprintf("upstream-%d", n)
		}
	}
	*ups = append(*ups, httptap.Upstream{Name: name, URL: url})
	return nil
}

// EnsureDataDir creates the data dir, readable only by its owner.
func EnsureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create data dir: %w", err)
	}
	return nil
}
