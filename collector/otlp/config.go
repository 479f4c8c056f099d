package otlp

import (
	"cmp"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Defaults for Config fields left empty.
const (
	DefaultGRPCListen      = "127.0.0.1:4317"
	DefaultHTTPListen      = "127.0.0.1:4318"
	DefaultMaxMessageBytes = 4 << 20
)

// Config configures the OTLP receiver (the collector.otlp section).
//
// The receiver is opt-in: it runs only when Enabled is true, because the OTLP ports are the ones
// a local OpenTelemetry Collector or agent usually holds already. Once enabled, both transports
// run unless one is disabled on its own.
type Config struct {
	// Enabled starts the receiver with the collector target. Default false.
	Enabled bool `yaml:"enabled"`
	// GRPC is OTLP/gRPC (opentelemetry.proto.collector.trace.v1.TraceService/Export).
	GRPC TransportConfig `yaml:"grpc"`
	// HTTP is OTLP/HTTP (POST /v1/traces, protobuf or JSON).
	HTTP TransportConfig `yaml:"http"`
	// TLS, when CertFile and KeyFile are set, serves both transports over TLS; with ClientCAFile
	// set, senders must also present a client certificate signed by that CA (mTLS).
	TLS TLSConfig `yaml:"tls"`
	// BearerTokens, when not empty, are the tokens a sender must present: the HTTP header or the
	// gRPC metadata "authorization: Bearer <token>". Requests without one of them get 401
	// (Unauthenticated over gRPC). Tokens are compared in constant time and never logged.
	// Required when a transport listens on an address other than loopback, unless
	// TLS.ClientCAFile makes senders present a certificate.
	BearerTokens []string `yaml:"bearer_tokens"`
	// MaxMessageBytes bounds one export request, after decompression. Larger requests are
	// refused (413 over HTTP, ResourceExhausted over gRPC). Default 4 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// CollectorID names this receiver in events. Default "otlp@" + the host name.
	CollectorID string `yaml:"collector_id"`
	// Capture decides what of the spans' opt-in payload attributes (gen_ai.tool.call.arguments
	// and .result, traceloop's entity input and output) events carry: collector.capture and
	// collector.inspection_max_bytes, as for the taps. The app fills it in.
	Capture capture.Config `yaml:"-"`
	// Sessions stitches events whose spans carry no session id into sessions, by the rule the
	// HTTP tap uses: collector.sessions, which the app fills in. Its StateFile names the tap's
	// file; the receiver keeps its own beside it, with "-otlp" before the extension
	// (collector-sessions-otlp.json), so neither overwrites the other. Empty: a 15m idle gap,
	// sessions not kept across restarts.
	Sessions identity.SessionsConfig `yaml:"-"`
}

// TransportConfig configures one of the two OTLP transports.
type TransportConfig struct {
	// Listen is the host:port to serve on; port 0 picks a free port. Defaults: 127.0.0.1:4317
	// for gRPC, 127.0.0.1:4318 for HTTP.
	Listen string `yaml:"listen"`
	// Disabled turns this transport off while the other one runs.
	Disabled bool `yaml:"disabled"`
}

// TLSConfig holds the receiver's certificate and, for mTLS, the CA its senders' certificates
// must chain to.
type TLSConfig struct {
	// CertFile and KeyFile are PEM files with the server certificate (chain) and its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle; when set, every sender must present a certificate it signed.
	ClientCAFile string `yaml:"client_ca_file"`
}

func (t TLSConfig) enabled() bool { return t.CertFile != "" }

// Validate reports every invalid field, named by its path under collector.otlp. Empty fields
// are valid: they take their defaults. Files named by TLS must exist and be readable; their
// contents are checked by New.
func (c *Config) Validate() error {
	var errs config.Errors
	const p = "collector.otlp."
	for _, tr := range []struct {
		name string
		cfg  TransportConfig
	}{{"grpc", c.GRPC}, {"http", c.HTTP}} {
		if tr.cfg.Listen != "" {
			if _, port, err := net.SplitHostPort(tr.cfg.Listen); err != nil || port == "" {
				errs.Addf(p+tr.name+".listen", "must be host:port, got %q", tr.cfg.Listen)
			}
		}
	}
	// A receiver other machines can reach must not take spans from anyone. Checked whether or
	// not the receiver is enabled: New runs whatever it is given.
	if len(c.BearerTokens) == 0 && c.TLS.ClientCAFile == "" {
		for _, tr := range []struct {
			name, def string
			cfg       TransportConfig
		}{{"grpc", DefaultGRPCListen, c.GRPC}, {"http", DefaultHTTPListen, c.HTTP}} {
			listen := cmp.Or(tr.cfg.Listen, tr.def)
			if host, _, err := net.SplitHostPort(listen); err == nil && !tr.cfg.Disabled && !config.IsLoopbackHost(host) {
				errs.Addf(p+"bearer_tokens", "required when %s%s.listen (%s) is not loopback (or require client certificates: %stls.client_ca_file)",
					p, tr.name, listen, p)
			}
		}
	}
	if c.Enabled && c.GRPC.Disabled && c.HTTP.Disabled {
		errs.Add(p+"enabled", "both transports are disabled: disable the receiver instead, or enable grpc or http")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs.Add(p+"tls", "cert_file and key_file must be set together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		errs.Add(p+"tls.client_ca_file", "needs cert_file and key_file: mTLS runs over TLS")
	}
	for _, f := range []struct{ name, path string }{
		{"cert_file", c.TLS.CertFile}, {"key_file", c.TLS.KeyFile}, {"client_ca_file", c.TLS.ClientCAFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs.Addf(p+"tls."+f.name, "cannot read %q: %v", f.path, err)
		}
	}
	for i, tok := range c.BearerTokens {
		switch {
		case tok == "":
			errs.Addf(p+"bearer_tokens["+strconv.Itoa(i)+"]", "must not be empty")
		case strings.ContainsAny(tok, " \t\r\n"):
			// Said without echoing the token: config errors end up in logs.
			errs.Addf(p+"bearer_tokens["+strconv.Itoa(i)+"]", "must not contain whitespace")
		}
	}
	if c.MaxMessageBytes < 0 {
		errs.Add(p+"max_message_bytes", "must not be negative")
	}
	return errs.Err()
}

// SetDefaults fills empty listen addresses and the size limit. The collector id is left empty
// here (New names it after the host), so a configuration file can show it empty.
func (c *Config) SetDefaults() {
	if c.GRPC.Listen == "" {
		c.GRPC.Listen = DefaultGRPCListen
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
}

// withDefaults returns c with every empty field set to its default.
func (c Config) withDefaults() Config {
	c.SetDefaults()
	if c.CollectorID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.CollectorID = "otlp@" + host
	}
	return c
}
