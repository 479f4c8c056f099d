package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// AnomalySchemaVersion is the value of Anomaly.SchemaVersion for anomalies written by this code.
const AnomalySchemaVersion = 1

// Severity bands, lowest first.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// SeverityForScore maps a 0–100 score to its band.
func SeverityForScore(score float64) Severity {
	switch {
	case score >= 90:
		return SeverityCritical
	case score >= 70:
		return SeverityHigh
	case score >= 40:
		return SeverityMedium
	case score >= 20:
		return SeverityLow
	default:
		return SeverityInfo
	}
}

// Rank orders severities: info 0 … critical 4; unknown values rank -1.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return -1
}

// Anomaly v1 is one deviation from an agent's learned behaviour. Repeats of the same anomaly
// (same agent, kind and subject) keep the same ID and grow Count and LastSeen.
type Anomaly struct {
	// ID is stable for an (agent, kind, subject): a repeat updates the same anomaly.
	ID string `json:"anomaly_id"`
	// SchemaVersion is AnomalySchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// Time is when this version of the anomaly was produced.
	Time      time.Time `json:"time"`
	AgentID   string    `json:"agent_id"`
	SessionID string    `json:"session_id,omitempty"`
	ServerID  string    `json:"server_id,omitempty"`
	// Kind names the deviation, e.g. new_tool.
	Kind string `json:"kind"`
	// Subject is what the anomaly is about within its kind, e.g. the tool name.
	Subject string `json:"subject,omitempty"`
	// Score is 0–100; higher is less likely under the agent's baseline.
	Score    float64  `json:"score"`
	Severity Severity `json:"severity"`
	// Title is one line for a human.
	Title       string      `json:"title"`
	Explanation Explanation `json:"explanation"`
	// EvidenceEventIDs are the events that show the deviation (bounded, newest last).
	EvidenceEventIDs []string  `json:"evidence_event_ids"`
	FirstSeen        time.Time `json:"first_seen"`
	LastSeen         time.Time `json:"last_seen"`
	Count            int       `json:"count"`
	// Learning is true while the agent's baseline is still warming up; such anomalies are not alerted.
	Learning bool `json:"learning,omitempty"`
	// Tags are the agent's, server's and tool's tags (inventory, policy tool tags), sorted;
	// alert routing filters on them.
	Tags []string `json:"tags,omitempty"`
}

// MarshalJSON writes a nil EvidenceEventIDs as [] rather than null: the field is required and
// always an array in the Anomaly v1 schema, so consumers never have to handle null.
// A struct that embeds Anomaly inherits this method and would marshal as the Anomaly alone:
// give the Anomaly a field name instead of embedding it.
func (a Anomaly) MarshalJSON() ([]byte, error) {
	type plain Anomaly // same fields, without this method
	p := plain(a)
	if p.EvidenceEventIDs == nil {
		p.EvidenceEventIDs = []string{}
	}
	return json.Marshal(p)
}

// Explanation says why an anomaly was raised, in words and numbers.
type Explanation struct {
	// Summary is a sentence: what was observed against what is typical.
	Summary string `json:"summary"`
	// Observed and Typical are short descriptions, e.g. "212 calls/min" and "10–35 at this hour".
	Observed string `json:"observed"`
	Typical  string `json:"typical"`
	// Model names the model that scored the event, e.g. first_seen_tool.
	Model string `json:"model"`
	// Probability is the model's probability of the observation under the baseline, when it has one.
	Probability float64 `json:"probability,omitempty"`
}

// StableAnomalyID is deterministic for a finding: the same agent, kind and parts (server,
// subject, definition version, time bucket, …) always give the same id, so a batch redelivered
// after a crash upserts the same anomaly and alerting's delivery id stays stable. It is shaped
// like a UUID (version 8, custom) over a SHA-256 of the parts.
func StableAnomalyID(agent, kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(agent))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	sum[6] = (sum[6] & 0x0f) | 0x80 // version 8: custom
	sum[8] = (sum[8] & 0x3f) | 0x80 // RFC 4122 variant
	s := hex.EncodeToString(sum[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
