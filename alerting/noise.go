package alerting

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// noise is one sink's re-alert window: it decides which repeats of an anomaly the sink gets,
// and remembers the others for the digest. Time is anomaly time (Anomaly.Time), not the
// clock, so a backlog drained after an outage is thinned as it happened, and tests need no
// clock. State lives in memory: one agent's anomalies stay on one partition, hence one
// alerting instance; after a restart the first repeat of each anomaly alerts again.
type noise struct {
	window time.Duration
	digest bool // remember suppressed repeats for a digest

	mu     sync.Mutex
	keys   map[noiseKey]*noiseState
	latest time.Time // the latest anomaly time seen
	pruned int       // len(keys) after the last prune
	since  time.Time // start of the digest period (clock time)
}

type noiseKey struct{ agent, kind, subject string }

type noiseState struct {
	anomalyID    string
	alertedAt    time.Time // anomaly time of the last version alerted
	alertedCount int
	alertedRank  int
	// Repeats suppressed since the last digest.
	suppressed          int
	lastSuppressedCount int // dedups a batch handled twice
	maxRank             int
	count               int
	lastSeen            time.Time
}

func newNoise(window time.Duration, digest bool, now time.Time) *noise {
	return &noise{window: window, digest: digest, keys: map[noiseKey]*noiseState{}, since: now}
}

// admit reports whether the sink gets this version of an anomaly. A version at or below the
// count last alerted is a redelivery and is admitted (its delivery id lets the receiver drop
// it). newlySuppressed is true the first time a version is suppressed, for the metric.
func (n *noise) admit(an schemas.Anomaly) (ok, newlySuppressed bool) {
	if n.window <= 0 {
		return true, false
	}
	t := an.Time
	if t.IsZero() {
		t = an.LastSeen
	}
	rank := an.Severity.Rank()
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.After(n.latest) {
		n.latest = t
	}
	k := noiseKey{an.AgentID, an.Kind, an.Subject}
	st := n.keys[k]
	switch {
	case st == nil:
		n.keys[k] = &noiseState{anomalyID: an.ID, alertedAt: t, alertedCount: an.Count, alertedRank: rank}
		if len(n.keys) > 2*n.pruned+1024 {
			n.pruneLocked()
		}
		return true, false
	case an.Count <= st.alertedCount:
		return true, false
	case rank > st.alertedRank || t.Sub(st.alertedAt) >= n.window:
		st.anomalyID, st.alertedAt, st.alertedCount, st.alertedRank = an.ID, t, an.Count, rank
		return true, false
	}
	if an.Count <= st.lastSuppressedCount {
		return false, false
	}
	st.lastSuppressedCount = an.Count
	if n.digest {
		st.suppressed++
		st.maxRank = max(st.maxRank, rank)
		st.count = an.Count
		st.lastSeen = an.LastSeen
	}
	return false, true
}

// pruneLocked forgets anomalies whose window has passed and that have nothing left for the
// digest: their next repeat would be alerted anyway.
func (n *noise) pruneLocked() {
	for k, st := range n.keys {
		if st.suppressed == 0 && n.latest.Sub(st.alertedAt) >= n.window {
			delete(n.keys, k)
		}
	}
	n.pruned = len(n.keys)
}

// takeDigest returns what was suppressed since the last digest (nil when nothing was) and
// starts a new period at now.
func (n *noise) takeDigest(sink string, now time.Time) *Digest {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := &Digest{Sink: sink, Start: n.since, End: now, ReAlertWindow: n.window.String()}
	for k, st := range n.keys {
		if st.suppressed == 0 {
			continue
		}
		d.Entries = append(d.Entries, DigestEntry{
			AnomalyID: st.anomalyID, AgentID: k.agent, Kind: k.kind, Subject: k.subject,
			Severity: severityOfRank(st.maxRank), Suppressed: st.suppressed, Count: st.count, LastSeen: st.lastSeen,
		})
		d.Suppressed += st.suppressed
		st.suppressed, st.maxRank = 0, 0
	}
	n.pruneLocked()
	n.since = now
	if len(d.Entries) == 0 {
		return nil
	}
	slices.SortFunc(d.Entries, func(a, b DigestEntry) int {
		return cmp.Or(b.Suppressed-a.Suppressed, cmp.Compare(a.AgentID, b.AgentID), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Subject, b.Subject))
	})
	return d
}

// putBack returns a digest that could not be delivered, so the next one includes it.
func (n *noise) putBack(d *Digest) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.since = d.Start
	for _, e := range d.Entries {
		k := noiseKey{e.AgentID, e.Kind, e.Subject}
		st := n.keys[k]
		if st == nil {
			st = &noiseState{anomalyID: e.AnomalyID, alertedCount: e.Count, lastSuppressedCount: e.Count}
			n.keys[k] = st
		}
		st.suppressed += e.Suppressed
		st.maxRank = max(st.maxRank, e.Severity.Rank())
		if e.Count > st.count {
			st.count, st.lastSeen = e.Count, e.LastSeen
		}
	}
}

func severityOfRank(r int) schemas.Severity {
	for _, s := range []schemas.Severity{schemas.SeverityCritical, schemas.SeverityHigh, schemas.SeverityMedium, schemas.SeverityLow} {
		if s.Rank() == r {
			return s
		}
	}
	return schemas.SeverityInfo
}

// digestNamespace derives digest anomaly ids.
var digestNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("mcpwatch alert digest"))

// maxDigestSummary bounds how many entries the digest anomaly's summary lists.
const maxDigestSummary = 20

// digestAlert turns a digest into an alert: a synthetic Anomaly v1 of kind alert_digest (so
// every sink can send it in its own format) carrying the digest itself for sinks that render
// it natively.
func digestAlert(d *Digest) (Alert, error) {
	var sum strings.Builder
	for i, e := range d.Entries {
		if i == maxDigestSummary {
			fmt.Fprintf(&sum, "; and %d more", len(d.Entries)-i)
			break
		}
		if i > 0 {
			sum.WriteString("; ")
		}
		subject := ""
		if e.Subject != "" {
			subject = " " + e.Subject
		}
		fmt.Fprintf(&sum, "%s %s%s: %d repeats suppressed (count %d)", e.AgentID, e.Kind, subject, e.Suppressed, e.Count)
	}
	an := schemas.Anomaly{
		ID:            uuid.NewSHA1(digestNamespace, []byte(d.Sink+"\x00"+d.Start.UTC().Format(time.RFC3339Nano))).String(),
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          d.End.UTC(),
		AgentID:       "mcpwatch",
		Kind:          KindDigest,
		Subject:       d.Sink,
		Score:         0,
		Severity:      schemas.SeverityInfo,
		Title:         fmt.Sprintf("mcpwatch held back %d repeat alerts of %d anomalies for sink %s", d.Suppressed, len(d.Entries), d.Sink),
		Explanation: schemas.Explanation{
			Summary:  sum.String(),
			Observed: fmt.Sprintf("%d repeats of %d anomalies", d.Suppressed, len(d.Entries)),
			Typical:  "one alert per anomaly per " + d.ReAlertWindow,
			Model:    KindDigest,
		},
		EvidenceEventIDs: []string{},
		FirstSeen:        d.Start.UTC(),
		LastSeen:         d.End.UTC(),
		Count:            d.Suppressed,
	}
	body, err := json.Marshal(an)
	if err != nil {
		return Alert{}, fmt.Errorf("cannot encode digest: %w", err)
	}
	return Alert{Anomaly: an, JSON: body, DeliveryID: DeliveryID(an, d.Sink), Digest: d}, nil
}

// digestJSON is a digest as the json format sends it.
func digestJSON(d *Digest) ([]byte, error) {
	return json.Marshal(struct {
		Type string `json:"type"`
		*Digest
	}{"mcpwatch.digest", d})
}

// render returns an alert's body in a JSON sink's format: the Anomaly v1 JSON as read from
// the bus (a digest: the digest document), or an OCSF Detection Finding.
func render(format string, a Alert) ([]byte, error) {
	if format == FormatOCSF {
		return OCSF(a)
	}
	if a.Digest != nil {
		return digestJSON(a.Digest)
	}
	return a.JSON, nil
}

// eventType is "digest" or "anomaly", for headers and envelope fields.
func eventType(a Alert) string {
	if a.Digest != nil {
		return "digest"
	}
	return "anomaly"
}
