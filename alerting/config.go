package alerting

import (
	"fmt"
	"net/url"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Config configures alerting.
type Config struct {
	// Webhooks receive each anomaly as an HTTP POST (Anomaly v1 JSON or OCSF).
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Syslog sinks send each anomaly as an RFC 5424 message (JSON, CEF or LEEF) over UDP,
	// TCP or TLS.
	Syslog []SyslogConfig `yaml:"syslog"`
	// HEC sinks send each anomaly to a Splunk HTTP Event Collector.
	HEC []HECConfig `yaml:"hec"`
	// Files append each anomaly as a JSON line to a file or stdout, for debugging.
	Files []FileConfig `yaml:"files"`
	// Retry is the budget per delivery before the alert is dead-lettered.
	Retry RetryConfig `yaml:"retry"`
	// Noise is the re-alert window and digest every sink uses unless its own config overrides
	// them.
	Noise NoiseConfig `yaml:"noise"`
}

// Formats a JSON sink (webhook, HEC, file) can send.
const (
	FormatJSON = "json" // Anomaly v1 JSON, as on mcp.anomalies
	FormatOCSF = "ocsf" // OCSF Detection Finding (class 2004)
)

// WebhookConfig is one webhook sink.
type WebhookConfig struct {
	// Name identifies the sink in metrics, logs, delivery ids and dead letters (default
	// webhook-N). Renaming a sink changes its delivery ids.
	Name string `yaml:"name"`
	// Route selects the anomalies this sink receives (min_severity, kinds, agents, servers,
	// tags) and its noise control (realert_window, digest_interval).
	Route `yaml:",inline"`
	// URL receives the POSTs. Redirects are not followed (a redirected POST could become a
	// GET and lose the alert): a 3xx answer dead-letters it.
	URL string `yaml:"url"`
	// Format of the body: json (Anomaly v1, the default) or ocsf (Detection Finding).
	Format string `yaml:"format"`
	// Headers are added to every request (e.g. an Authorization header for the receiver).
	Headers map[string]string `yaml:"headers"`
	// Secret, when set, signs each request: X-Mcpwatch-Signature is
	// "sha256=" + hex(HMAC-SHA256(secret, X-Mcpwatch-Timestamp + "." + body)).
	Secret string `yaml:"secret"`
	// Timeout bounds one request (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures the CAs trusted for an https URL and an optional client certificate.
	TLS ClientTLS `yaml:"tls"`
}

// HECConfig is one Splunk HTTP Event Collector sink.
type HECConfig struct {
	// Name identifies the sink (default hec-N).
	Name  string `yaml:"name"`
	Route `yaml:",inline"`
	// URL of the collector, e.g. https://splunk.example.com:8088. Events are POSTed to
	// /services/collector/event below it, unless the URL has a path of its own.
	URL string `yaml:"url"`
	// Token is the HEC token, sent as "Authorization: Splunk <token>".
	Token string `yaml:"token"`
	// Index, Source, SourceType and Host fill the event envelope. Index empty: the token's
	// default index. Source default "mcpwatch"; SourceType default "mcpwatch:anomaly" (json)
	// or "mcpwatch:ocsf" (ocsf); Host default this machine's host name.
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	SourceType string `yaml:"sourcetype"`
	Host       string `yaml:"host"`
	// Format of the envelope's event: json (Anomaly v1, the default) or ocsf.
	Format string `yaml:"format"`
	// Timeout bounds one request (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	TLS     ClientTLS     `yaml:"tls"`
}

// FileConfig is one file (or stdout) sink: one JSON object per line.
type FileConfig struct {
	// Name identifies the sink (default file-N).
	Name  string `yaml:"name"`
	Route `yaml:",inline"`
	// Path of the file, appended to and created (mode 0600) if missing; "-" is stdout.
	Path string `yaml:"path"`
	// Format of each line's payload: json (Anomaly v1, the default) or ocsf.
	Format string `yaml:"format"`
}

// RetryConfig is the retry budget of one delivery. Failures are of three kinds:
//   - the receiver rejected the alert (an HTTP 4xx but 408/429, a 3xx): dead-lettered at once;
//   - the receiver is unavailable (connection refused or reset, timeout, HTTP 502/503/504,
//     408, 429): alerting waits for it with backoff, without spending the budget, so an
//     outage backs the stream up instead of filling the dead-letter queue (unless
//     dead_letter_when_unavailable is set);
//   - any other failure (e.g. HTTP 500): retried MaxAttempts times in all, then dead-lettered.
type RetryConfig struct {
	// MaxAttempts per delivery, the first included (default 5).
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the delay after the first failure (default 200ms); it doubles up to
	// MaxBackoff (default 10s), with jitter.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// DeadLetterWhenUnavailable spends the budget on an unavailable receiver too, so an outage
	// dead-letters alerts (to be re-sent with `mcpwatch alerts replay-dlq`) instead of holding
	// the stream back. Default false.
	DeadLetterWhenUnavailable bool `yaml:"dead_letter_when_unavailable"`
}

// NoiseConfig is alerting-wide noise control; each sink may override it (Route).
type NoiseConfig struct {
	// ReAlertWindow: repeats of one anomaly (same agent, kind and subject, its count growing)
	// reach a sink at most once per window of anomaly time; the others go into the digest.
	// A higher severity than last alerted is alerted at once. 0 alerts every repeat.
	// Default 10m.
	ReAlertWindow *time.Duration `yaml:"realert_window"`
	// DigestInterval is how often each sink gets a digest of the repeats it did not receive,
	// when there were any. 0: no digest. Default 1h.
	DigestInterval *time.Duration `yaml:"digest_interval"`
}

// Default noise control.
const (
	DefaultReAlertWindow  = 10 * time.Minute
	DefaultDigestInterval = time.Hour
)

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	for i := range c.Webhooks {
		c.Webhooks[i].setDefaults(i)
	}
	for i := range c.Syslog {
		c.Syslog[i].setDefaults(i)
	}
	for i := range c.HEC {
		c.HEC[i].setDefaults(i)
	}
	for i := range c.Files {
		c.Files[i].setDefaults(i)
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 5
	}
	if c.Retry.InitialBackoff == 0 {
		c.Retry.InitialBackoff = 200 * time.Millisecond
	}
	if c.Retry.MaxBackoff == 0 {
		c.Retry.MaxBackoff = 10 * time.Second
	}
	if c.Noise.ReAlertWindow == nil {
		d := DefaultReAlertWindow
		c.Noise.ReAlertWindow = &d
	}
	if c.Noise.DigestInterval == nil {
		d := DefaultDigestInterval
		c.Noise.DigestInterval = &d
	}
}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	names := map[string]bool{}
	// sink is the path of the i-th sink under key, whose name must be unique across sinks.
	sink := func(key string, i int, name string) string {
		p := fmt.Sprintf("alerting.%s[%d]", key, i)
		if names[name] {
			errs.Addf(p+".name", "%q is used by another sink", name)
		}
		names[name] = true
		return p
	}
	for i, w := range c.Webhooks {
		w.validate(sink("webhooks", i, w.Name), &errs)
	}
	for i, sl := range c.Syslog {
		sl.validate(sink("syslog", i, sl.Name), &errs)
	}
	for i, h := range c.HEC {
		h.validate(sink("hec", i, h.Name), &errs)
	}
	for i, f := range c.Files {
		f.validate(sink("files", i, f.Name), &errs)
	}
	if c.Retry.MaxAttempts < 1 {
		errs.Add("alerting.retry.max_attempts", "must be at least 1")
	}
	if c.Retry.InitialBackoff <= 0 || c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs.Add("alerting.retry", "initial_backoff must be positive and not above max_backoff")
	}
	if c.Noise.ReAlertWindow != nil && *c.Noise.ReAlertWindow < 0 {
		errs.Add("alerting.noise.realert_window", "must not be negative")
	}
	if c.Noise.DigestInterval != nil && *c.Noise.DigestInterval < 0 {
		errs.Add("alerting.noise.digest_interval", "must not be negative")
	}
	return errs.Err()
}

func (w *WebhookConfig) setDefaults(i int) {
	if w.Name == "" {
		w.Name = fmt.Sprintf("webhook-%d", i+1)
	}
	if w.Format == "" {
		w.Format = FormatJSON
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	w.Route.setDefaults()
}

func (w WebhookConfig) validate(p string, errs *config.Errors) {
	validateHTTPURL(p+".url", w.URL, errs)
	validateFormat(p+".format", w.Format, errs)
	if w.Timeout <= 0 {
		errs.Add(p+".timeout", "must be positive")
	}
	w.TLS.validate(p+".tls", errs)
	w.Route.validate(p, errs)
}

func (h *HECConfig) setDefaults(i int) {
	if h.Name == "" {
		h.Name = fmt.Sprintf("hec-%d", i+1)
	}
	if h.Format == "" {
		h.Format = FormatJSON
	}
	if h.Source == "" {
		h.Source = "mcpwatch"
	}
	if h.SourceType == "" {
		h.SourceType = "mcpwatch:anomaly"
		if h.Format == FormatOCSF {
			h.SourceType = "mcpwatch:ocsf"
		}
	}
	if h.Timeout == 0 {
		h.Timeout = 5 * time.Second
	}
	h.Route.setDefaults()
}

func (h HECConfig) validate(p string, errs *config.Errors) {
	validateHTTPURL(p+".url", h.URL, errs)
	if h.Token == "" {
		errs.Add(p+".token", "must be set (the HEC token)")
	}
	validateFormat(p+".format", h.Format, errs)
	if h.Timeout <= 0 {
		errs.Add(p+".timeout", "must be positive")
	}
	h.TLS.validate(p+".tls", errs)
	h.Route.validate(p, errs)
}

func (f *FileConfig) setDefaults(i int) {
	if f.Name == "" {
		f.Name = fmt.Sprintf("file-%d", i+1)
	}
	if f.Format == "" {
		f.Format = FormatJSON
	}
	f.Route.setDefaults()
}

func (f FileConfig) validate(p string, errs *config.Errors) {
	if f.Path == "" {
		errs.Add(p+".path", `must be a file path, or "-" for stdout`)
	}
	validateFormat(p+".format", f.Format, errs)
	f.Route.validate(p, errs)
}

func validateHTTPURL(p, s string, errs *config.Errors) {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.Add(p, "must be an absolute http(s) URL")
	}
}

func validateFormat(p, f string, errs *config.Errors) {
	if f != FormatJSON && f != FormatOCSF {
		errs.Addf(p, "unknown format %q (want json or ocsf)", f)
	}
}

// realertWindow is the sink's effective re-alert window.
func (c Config) realertWindow(r Route) time.Duration {
	if r.ReAlertWindow != nil {
		return *r.ReAlertWindow
	}
	if c.Noise.ReAlertWindow != nil {
		return *c.Noise.ReAlertWindow
	}
	return DefaultReAlertWindow
}

// digestInterval is the sink's effective digest interval.
func (c Config) digestInterval(r Route) time.Duration {
	if r.DigestInterval != nil {
		return *r.DigestInterval
	}
	if c.Noise.DigestInterval != nil {
		return *c.Noise.DigestInterval
	}
	return DefaultDigestInterval
}
