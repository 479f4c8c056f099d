package alerting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"slices"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Sink delivers alerts to one destination (a webhook URL, a syslog receiver, Splunk HEC, a
// file). Alerting never calls Send concurrently on one sink; different sinks are sent to
// concurrently. Retries, backoff, dead-lettering, routing, noise control and metrics are
// alerting's job, not the sink's: Send makes one attempt.
//
// A sink kind plugs in the same way the webhook does (webhook.go):
//   - its config type (e.g. SyslogConfig) has `Name string yaml:"name"` and embeds Route inline
//     (`Route `yaml:",inline"“), has `setDefaults(i int)` (naming it kind-N when Name is empty,
//     then calling Route.setDefaults) and `validate(path string, errs *config.Errors)` (calling
//     Route.validate(path, errs) for the routing fields);
//   - its constructor is `newXSink(cfg XConfig, set pipeline.Settings) (Sink, error)`;
//   - Config gets a list of it (e.g. `Syslog []SyslogConfig yaml:"syslog"`), which Config's
//     SetDefaults/Validate and New walk.
type Sink interface {
	// Name is the sink's configured name: metrics label, delivery-id input, dead-letter header.
	Name() string
	// Send delivers one alert, once. An error wrapped with Permanent means retrying cannot
	// help (the receiver rejected the alert): it is dead-lettered without further attempts.
	// An error wrapped with Unavailable, or a network error (net.Error, io.EOF), means the
	// receiver is down or overloaded: alerting waits for it (see RetryConfig). Any other
	// error is retried within the retry budget. Errors must not contain secrets (tokens, URLs
	// with credentials) or payloads: they reach logs, the store and dead letters.
	Send(ctx context.Context, a Alert) error
	// Close releases the sink's connections. Alerting calls it once, after the last Send.
	Close() error
}

// Alert is one anomaly version on its way to one sink.
type Alert struct {
	// Anomaly is the decoded anomaly. For a digest it is a synthetic anomaly of kind
	// KindDigest that summarises the digest in its Title and Explanation, so a sink that knows
	// nothing of digests still delivers them in its own format.
	Anomaly schemas.Anomaly
	// JSON is Anomaly v1 JSON exactly as read from mcp.anomalies (for a digest: Anomaly
	// marshalled).
	JSON []byte
	// DeliveryID is stable per (anomaly id, count, sink): a redelivery or a replay from the
	// dead-letter queue carries the same id, so receivers can drop duplicates. Every sink
	// sends it (webhook header, syslog structured data or CEF/LEEF extension, HEC field).
	DeliveryID string
	// Time is when this attempt is sent.
	Time time.Time
	// Digest is set (and Anomaly is synthetic) when this alert is a digest of suppressed
	// repeats; sinks that render digests natively use it.
	Digest *Digest
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the same alert cannot succeed (e.g. the receiver
// answered 400): alerting dead-letters it at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// unavailableError marks a receiver that is down or overloaded.
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }

// Unavailable wraps err to say the receiver is down or overloaded (e.g. HTTP 503 or 429)
// rather than rejecting this alert. Unavailable(nil) is nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

// IsUnavailable reports whether err says the receiver is unavailable: marked with
// Unavailable, a network error (connection refused or reset, timeout, DNS), or a connection
// closed mid-exchange (io.EOF, io.ErrUnexpectedEOF). A TLS alert from the receiver (e.g. it
// refused our client certificate) is a configuration problem, not an outage.
func IsUnavailable(err error) bool {
	var u unavailableError
	if errors.As(err, &u) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return false
	}
	var n net.Error
	return errors.As(err, &n) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Route is the routing and noise-control block every sink's config embeds inline: which
// anomalies reach the sink, and how often repeats of one are re-alerted. An anomaly reaches
// the sink when its severity is at least MinSeverity and it passes every filter.
type Route struct {
	// MinSeverity is the lowest severity sent (default info: everything).
	MinSeverity schemas.Severity `yaml:"min_severity"`
	// Kinds filters on the anomaly's kind (e.g. new_tool).
	Kinds Filter `yaml:"kinds"`
	// Agents filters on the anomaly's agent id.
	Agents Filter `yaml:"agents"`
	// Servers filters on the anomaly's server id ("" when it concerns no server).
	Servers Filter `yaml:"servers"`
	// Tags filters on the anomaly's tags: an anomaly is included when any of its tags matches
	// an include pattern, and excluded when any matches an exclude pattern.
	Tags Filter `yaml:"tags"`
	// ReAlertWindow overrides alerting.noise.realert_window for this sink: repeats of one
	// anomaly (same agent, kind and subject, growing count) are alerted at most once per
	// window; the others go into the digest. 0 alerts every repeat. Unset: the global value.
	ReAlertWindow *time.Duration `yaml:"realert_window"`
	// DigestInterval overrides alerting.noise.digest_interval for this sink: how often a digest
	// of the suppressed repeats is sent (only when something was suppressed). 0: never.
	// Unset: the global value.
	DigestInterval *time.Duration `yaml:"digest_interval"`
}

// Filter matches one attribute against glob patterns (path.Match syntax: *, ?, [a-z]).
// Empty Include matches everything; Exclude wins over Include.
type Filter struct {
	// Include, when not empty, lets through only values matching one of these patterns.
	Include []string `yaml:"include"`
	// Exclude drops values matching any of these patterns.
	Exclude []string `yaml:"exclude"`
}

// setDefaults fills the routing defaults.
func (r *Route) setDefaults() {
	if r.MinSeverity == "" {
		r.MinSeverity = schemas.SeverityInfo
	}
}

// validate records problems with the routing fields of the sink config at path
// (e.g. "alerting.syslog[1]").
func (r Route) validate(p string, errs *config.Errors) {
	if r.MinSeverity.Rank() < 0 {
		errs.Addf(p+".min_severity", "unknown severity %q (want info, low, medium, high or critical)", r.MinSeverity)
	}
	for name, f := range map[string]Filter{"kinds": r.Kinds, "agents": r.Agents, "servers": r.Servers, "tags": r.Tags} {
		f.validate(p+"."+name, errs)
	}
	if r.ReAlertWindow != nil && *r.ReAlertWindow < 0 {
		errs.Add(p+".realert_window", "must not be negative")
	}
	if r.DigestInterval != nil && *r.DigestInterval < 0 {
		errs.Add(p+".digest_interval", "must not be negative")
	}
}

func (f Filter) validate(p string, errs *config.Errors) {
	for list, pats := range map[string][]string{"include": f.Include, "exclude": f.Exclude} {
		for i, pat := range pats {
			if pat == "" {
				errs.Addf(fmt.Sprintf("%s.%s[%d]", p, list, i), "must not be empty")
			} else if _, err := path.Match(pat, ""); err != nil {
				errs.Addf(fmt.Sprintf("%s.%s[%d]", p, list, i), "bad glob %q: %v", pat, err)
			}
		}
	}
}

// match reports whether v passes the filter.
func (f Filter) match(v string) bool {
	if matchAny(f.Exclude, v) {
		return false
	}
	return len(f.Include) == 0 || matchAny(f.Include, v)
}

// matchSet reports whether a set of values (tags) passes the filter: one excluded value
// excludes the set; one included value includes it.
func (f Filter) matchSet(vs []string) bool {
	if slices.ContainsFunc(vs, func(v string) bool { return matchAny(f.Exclude, v) }) {
		return false
	}
	return len(f.Include) == 0 || slices.ContainsFunc(vs, func(v string) bool { return matchAny(f.Include, v) })
}

func matchAny(pats []string, v string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// Accepts reports whether the route lets an anomaly through: severity and every filter.
// Noise control (re-alert window) is applied separately, by alerting.
func (r Route) Accepts(an schemas.Anomaly) bool {
	return an.Severity.Rank() >= r.MinSeverity.Rank() &&
		r.Kinds.match(an.Kind) &&
		r.Agents.match(an.AgentID) &&
		r.Servers.match(an.ServerID) &&
		r.Tags.matchSet(an.Tags)
}

// KindDigest is the kind of the synthetic anomaly that carries a digest.
const KindDigest = "alert_digest"

// Digest lists the repeats one sink did not receive during a period because of its re-alert
// window.
type Digest struct {
	Sink string `json:"sink"`
	// Start and End bound the period the digest covers (clock time).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ReAlertWindow is the sink's window, e.g. "10m0s".
	ReAlertWindow string `json:"realert_window"`
	// Suppressed is the total of Entries' Suppressed.
	Suppressed int `json:"suppressed"`
	// Entries are the suppressed anomalies, most suppressed first.
	Entries []DigestEntry `json:"entries"`
}

// DigestEntry is one anomaly (agent, kind, subject) whose repeats were suppressed.
type DigestEntry struct {
	AnomalyID string           `json:"anomaly_id"`
	AgentID   string           `json:"agent_id"`
	Kind      string           `json:"kind"`
	Subject   string           `json:"subject,omitempty"`
	Severity  schemas.Severity `json:"severity"` // the highest among the suppressed versions
	// Suppressed is how many versions were not alerted.
	Suppressed int `json:"suppressed"`
	// Count is the anomaly's count at its last suppressed version.
	Count    int       `json:"count"`
	LastSeen time.Time `json:"last_seen"`
}
