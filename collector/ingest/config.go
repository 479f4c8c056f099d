package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

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
	// CAFile is a PEM bundle of the CAs trusted for an https URL's certificate, instead of the
	// system's (as curl --cacert): for an mcpwatch whose certificate a private CA issued.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate (chain) and its key, presented to a
	// listener that asks for one (collector.http.tls.client_ca_file). Set both or neither. They
	// are read again for every new connection, so a rotated certificate (a short-lived SPIFFE
	// SVID, cert-manager) is used without restarting.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
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
	scheme := "http" // of DefaultURL
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--mcpwatch: must be an absolute http(s) URL, got %q", RedactURL(c.URL)))
			scheme = ""
		} else {
			scheme = u.Scheme
		}
	}
	// TLS settings on a plain http URL would be ignored, and events sent in the clear.
	for _, f := range []struct{ flag, value string }{
		{"--ca-file", c.CAFile}, {"--cert-file", c.CertFile}, {"--key-file", c.KeyFile},
	} {
		if f.value != "" && scheme == "http" {
			errs = append(errs, fmt.Errorf("%s: needs an https:// --mcpwatch URL", f.flag))
		}
	}
	if c.CertFile != "" && c.KeyFile == "" {
		errs = append(errs, errors.New("--cert-file: needs --key-file"))
	}
	if c.KeyFile != "" && c.CertFile == "" {
		errs = append(errs, errors.New("--key-file: needs --cert-file"))
	}
	// Said without echoing the token. The endpoint compares it as a whole, and a control
	// character would make every request invalid.
	if strings.ContainsFunc(c.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		errs = append(errs, errors.New("--token (MCPWATCH_INGEST_TOKEN): must not contain whitespace or control characters"))
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

// TLSConfig loads CAFile, CertFile and KeyFile into the client's TLS configuration, or returns
// nil when none is set (the system's CAs, no client certificate). Errors name the flag and the
// file, never what is in it. NewClient calls it; `mcpwatch wrap` also calls it first, to refuse
// a bad file at startup rather than retry forever.
func (c ClientConfig) TLSConfig() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		data, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: cannot read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--ca-file: no PEM certificate in %s", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		if _, err := loadClientCert(c.CertFile, c.KeyFile); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return loadClientCert(c.CertFile, c.KeyFile)
		}
	}
	return cfg, nil
}

// loadClientCert reads a client certificate and its key. A failure (say, files caught
// mid-rotation) fails that connection's handshake; the post is retried.
func loadClientCert(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("--cert-file: cannot read client certificate: %w", err)
	}
	if !hasCertificate(certPEM) {
		return nil, fmt.Errorf("--cert-file: no PEM certificate in %s", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--key-file: cannot read client key: %w", err)
	}
	// crypto/tls says what is wrong (no PEM key, a key of another certificate) without
	// quoting either file.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--key-file: not the PEM key of --cert-file's certificate (%s): %w", keyFile, err)
	}
	return &cert, nil
}

// hasCertificate says whether data holds a PEM block that parses as a certificate.
func hasCertificate(data []byte) bool {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err == nil {
				return true
			}
		}
	}
}

// RedactURL is rawURL for messages, its password replaced by "xxxxx"; in a URL without a
// parsable host, everything before an "@" is taken for userinfo and replaced.
func RedactURL(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		return u.Redacted()
	}
	at := strings.LastIndex(rawURL, "@")
	if at < 0 {
		return rawURL
	}
	start := 0
	if i := strings.Index(rawURL, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return rawURL[:start] + "xxxxx" + rawURL[at:]
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
