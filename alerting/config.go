package alerting

import (
	"fmt"
	"net/url"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Config configures alerting.
type Config struct {
	// Webhooks receive each anomaly as an HTTP POST.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Retry is the budget per delivery before the alert is dead-lettered.
	Retry RetryConfig `yaml:"retry"`
}

// WebhookConfig is one webhook sink.
type WebhookConfig struct {
	// Name identifies the sink in metrics, logs, delivery ids and dead letters (default
	// webhook-N). Renaming a sink changes its delivery ids.
	Name string `yaml:"name"`
	// Route selects the anomalies this sink receives (min_severity, kinds, agents, servers,
	// tags) and its noise control (realert_window, digest_interval).
	Route `yaml:",inline"`
	// URL receives POSTs of Anomaly v1 JSON. Redirects are not followed (a redirected POST
	// could become a GET and lose the alert): a 3xx answer dead-letters it.
	URL string `yaml:"url"`
	// Headers are added to every request (e.g. an Authorization header for the receiver).
	Headers map[string]string `yaml:"headers"`
	// Secret, when set, signs each request: X-Mcpwatch-Signature is
	// "sha256=" + hex(HMAC-SHA256(secret, X-Mcpwatch-Timestamp + "." + body)).
	Secret string `yaml:"secret"`
	// Timeout bounds one request (default 5s).
	Timeout time.Duration `yaml:"timeout"`
}

// RetryConfig is a retry budget with exponential backoff and jitter.
type RetryConfig struct {
	// MaxAttempts per delivery, the first included (default 5).
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the delay after the first failure (default 200ms); it doubles up to
	// MaxBackoff (default 10s).
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	for i := range c.Webhooks {
		c.Webhooks[i].setDefaults(i)
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
}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	names := map[string]bool{}
	name := func(p, n string) {
		if names[n] {
			errs.Addf(p+".name", "%q is used by another sink", n)
		}
		names[n] = true
	}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("alerting.webhooks[%d]", i)
		name(p, w.Name)
		w.validate(p, &errs)
	}
	if c.Retry.MaxAttempts < 1 {
		errs.Add("alerting.retry.max_attempts", "must be at least 1")
	}
	if c.Retry.InitialBackoff <= 0 || c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs.Add("alerting.retry", "initial_backoff must be positive and not above max_backoff")
	}
	return errs.Err()
}

func (w *WebhookConfig) setDefaults(i int) {
	if w.Name == "" {
		w.Name = fmt.Sprintf("webhook-%d", i+1)
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	w.Route.setDefaults()
}

func (w WebhookConfig) validate(p string, errs *config.Errors) {
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.Add(p+".url", "must be an absolute http(s) URL")
	}
	if w.Timeout <= 0 {
		errs.Add(p+".timeout", "must be positive")
	}
	w.Route.validate(p, errs)
}
