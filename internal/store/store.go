package store

import (
	"context"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Store persists events, anomalies and baseline snapshots and answers the queries the API needs.
// Writes are idempotent: inserting an event twice (same ID) stores it once, and upserting an
// anomaly keeps the version with the highest Count (then latest LastSeen), so at-least-once
// delivery from the bus never shows duplicates.
type Store interface {
	// Migrate brings the schema to the latest version. It is safe to run repeatedly.
	Migrate(ctx context.Context) error
	// SchemaVersion is the latest applied migration (0 before Migrate).
	SchemaVersion(ctx context.Context) (int, error)

	InsertEvents(ctx context.Context, events []schemas.Event) error
	UpsertAnomalies(ctx context.Context, anomalies []schemas.Anomaly) error
	// SaveBaselines stores model state snapshots, replacing earlier ones with the same key.
	SaveBaselines(ctx context.Context, snapshots []Baseline) error
	// LoadBaselines returns the latest snapshot of every key of a model.
	LoadBaselines(ctx context.Context, model string) ([]Baseline, error)
	// LoadBaselinesOf returns the latest snapshot of each of keys a model has (keys without
	// one are left out), ordered by key. At most MaxBaselineKeys keys per call.
	LoadBaselinesOf(ctx context.Context, model string, keys []string) ([]Baseline, error)

	// Sessions lists sessions, most recently active first.
	Sessions(ctx context.Context, q SessionQuery) ([]Session, error)
	// Session returns one session's summary; ErrNotFound when there is none.
	Session(ctx context.Context, id string) (Session, error)
	// SessionEvents returns a session's events in observed order.
	SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error)
	// Anomalies lists anomalies, most recent LastSeen first (then by ID).
	Anomalies(ctx context.Context, q AnomalyQuery) ([]schemas.Anomaly, error)
	// Anomaly returns one anomaly by id; ErrNotFound when there is none.
	Anomaly(ctx context.Context, id string) (schemas.Anomaly, error)

	// Agents summarises the agents seen in [Since, Until), riskiest first (Risk desc, then
	// LastSeen desc, then ID asc).
	Agents(ctx context.Context, q AgentQuery) ([]Agent, error)
	// Agent summarises one agent over [Since, Until); ErrNotFound when it has no events there.
	Agent(ctx context.Context, id string, q AgentQuery) (Agent, error)

	// TimeSeries counts calls, errors, anomalies or deliveries per Step, split by a dimension.
	// An invalid query (unknown Metric, a By or filter the metric lacks, Step below 1s, a zero
	// or empty range, more than MaxLimit buckets) is an error.
	TimeSeries(ctx context.Context, q SeriesQuery) ([]Series, error)

	// Values lists the distinct non-empty agents, servers or tools seen in [Since, Until),
	// sorted (for Grafana template variables and CLI completion). field is "agent", "server" or
	// "tool"; anything else is an error.
	Values(ctx context.Context, field string, q ValuesQuery) ([]string, error)

	// SaveDefinitions records tool/prompt/resource definition versions (tool-definition drift).
	// It is idempotent on (ServerID, Kind, Name, FirstSeen): a later save of the same key keeps
	// the greatest LastSeen (and that save's Fingerprint and Definition).
	SaveDefinitions(ctx context.Context, defs []Definition) error
	// Definitions lists definition versions, newest FirstSeen first (then by ServerID, Kind,
	// Name).
	Definitions(ctx context.Context, q DefinitionQuery) ([]Definition, error)

	// RecordDeliveries records alert delivery outcomes. It is idempotent on (ID, Status):
	// recording the same outcome twice stores it once, keeping the record with the latest Time
	// (records with an equal key and Time are expected to be identical; which one is kept is
	// otherwise unspecified).
	RecordDeliveries(ctx context.Context, ds []Delivery) error
	// Deliveries lists delivery outcomes, newest Time first (then by ID, then Status).
	Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error)

	// DropExpired deletes events, anomalies and deliveries older than the configured retention,
	// counted back from now. Callers run it periodically (e.g. hourly); it is cheap when nothing
	// expired. Baselines are never expired (only the latest snapshot per key is kept anyway), nor
	// are definitions (drift is judged against versions first seen long ago; they are few).
	DropExpired(ctx context.Context, now time.Time) error

	Close() error
}

// Baseline is an opaque model snapshot for one key (usually an agent).
type Baseline struct {
	Model     string
	Key       string
	UpdatedAt time.Time
	State     []byte
}

// Session summarises the events sharing a session id.
type Session struct {
	ID              string    `json:"session_id"`
	AgentID         string    `json:"agent_id"`
	ServerID        string    `json:"server_id"`
	ClientName      string    `json:"client_name,omitempty"`
	ProtocolVersion string    `json:"protocol_version,omitempty"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	Events          int       `json:"events"`
	// Errors counts events whose status is not ok (error, tool_error, timeout, malformed).
	Errors int `json:"errors"`
	// Tools are the distinct tools called in the session, sorted.
	Tools []string `json:"tools"`
	// MaxScore is the highest score of the session's anomalies (0: none).
	MaxScore float64 `json:"max_score"`
	// Anomalies counts the anomalies recorded with this session id: those whose latest version
	// names the session, learning ones included, as AnomalyQuery{SessionID: id} lists them.
	Anomalies int `json:"anomalies"`
}

// SessionQuery filters Sessions. Zero values mean "no filter"; Limit 0 means DefaultLimit.
// AgentID, ServerID and Tool select sessions with at least one such event; the time bounds
// select sessions but never trim them (a session's summary always covers all its events).
type SessionQuery struct {
	AgentID  string
	ServerID string
	Tool     string    // sessions that called this tool (a tools/call target), at any time
	Since    time.Time // sessions active at or after Since
	Until    time.Time // sessions that started before Until
	MinScore float64   // sessions with an anomaly scoring at least this (as Session.MaxScore counts)
	// After is a keyset cursor: only sessions strictly after it in list order. Pass the last
	// session of a page to get the next page.
	After *SessionCursor
	Limit int
}

// SessionCursor is a position in Sessions' order (LastSeen desc, then ID asc).
type SessionCursor struct {
	LastSeen time.Time
	ID       string
}

// AnomalyQuery filters Anomalies. Zero values mean "no filter"; Limit 0 means DefaultLimit.
// Every filter applies to an anomaly's latest version (highest Count, then latest LastSeen).
type AnomalyQuery struct {
	AgentID     string
	ServerID    string
	SessionID   string
	Kind        string
	MinSeverity schemas.Severity
	MinScore    float64
	Since       time.Time // LastSeen at or after Since
	Until       time.Time // FirstSeen before Until
	// After is a keyset cursor: only anomalies strictly after it in list order.
	After *AnomalyCursor
	Limit int
}

// AnomalyCursor is a position in Anomalies' order (LastSeen desc, then ID asc).
type AnomalyCursor struct {
	LastSeen time.Time
	ID       string
}

// AgentQuery selects the time range of Agents and Agent. Zero times mean unbounded; Limit 0
// means DefaultLimit.
type AgentQuery struct {
	Since, Until time.Time // events observed in [Since, Until)
	Limit        int
}

// Agent is one agent's activity and risk over a time range. Agents are the non-empty agent ids
// of events in the range; anomalies only add to agents that have events there.
type Agent struct {
	ID        string    `json:"agent_id"`
	FirstSeen time.Time `json:"first_seen"` // first event in range
	LastSeen  time.Time `json:"last_seen"`  // last event in range
	Events    int       `json:"events"`
	Errors    int       `json:"errors"`    // status error, tool_error or timeout
	Sessions  int       `json:"sessions"`  // distinct non-empty session ids
	Servers   []string  `json:"servers"`   // distinct non-empty server ids, sorted
	Tools     []string  `json:"tools"`     // distinct tools called (tools/call targets), sorted
	Anomalies int       `json:"anomalies"` // non-learning anomalies with LastSeen in range
	MaxScore  float64   `json:"max_score"` // highest score among them (0: none)
	// Risk is 100·(1 − Π(1 − score_i/100)) over those anomalies (each score clamped to
	// [0, 99.9]), rounded to 0.1: one critical anomaly or many medium ones make a risky agent.
	Risk float64 `json:"risk"`
}

// SeriesQuery selects a time series. Since, Until and Step are required (Step ≥ 1s, whole
// microseconds; at most MaxLimit buckets); buckets start at multiples of Step since the Unix
// epoch, so the first bucket may start before Since (it counts only what is in range).
type SeriesQuery struct {
	// Metric is "calls" (events of kind request), "errors" (requests with status error,
	// tool_error or timeout), "anomalies" (non-learning anomalies by FirstSeen) or
	// "deliveries" (delivery records by Time).
	Metric string
	// By splits the series: "" (one series, key "total"); "agent" and "server" (calls, errors,
	// anomalies; deliveries by agent too); "tool" (calls, errors; the tools/call target);
	// "kind" and "severity" (anomalies, deliveries); "sink" and "status" (deliveries). Events
	// or anomalies without a value for By (e.g. no tool) go to key "" and are kept.
	By           string
	Step         time.Duration
	Since, Until time.Time
	// Filters: AgentID for every metric, ServerID for calls, errors and anomalies, Tool for
	// calls and errors. A filter the metric lacks is an error rather than ignored.
	AgentID, ServerID, Tool string
	// Limit caps the number of series (the largest totals first); 0 means 20.
	Limit int
}

// Series is one key's non-empty buckets in time order; series are sorted by total desc, then
// key asc. Callers fill empty buckets with zeros when they need a dense series.
type Series struct {
	Key    string  `json:"key"`
	Points []Point `json:"points"`
}

// Point is one bucket of a Series.
type Point struct {
	Time  time.Time `json:"time"` // bucket start
	Value float64   `json:"value"`
}

// ValuesQuery filters Values. Zero times mean unbounded; Limit 0 means DefaultLimit.
type ValuesQuery struct {
	Since, Until time.Time // events observed in [Since, Until)
	AgentID      string    // values seen with this agent (servers, tools)
	Limit        int
}

// Definition is one version of a server's tool, prompt or resource definition as its list
// results showed it. A removal is recorded as a version with an empty Fingerprint.
type Definition struct {
	ServerID    string    `json:"server_id"`
	Kind        string    `json:"kind"`        // tool, prompt, resource, resource_template
	Name        string    `json:"name"`        // tool or prompt name, resource URI or URI template
	Fingerprint string    `json:"fingerprint"` // hex SHA-256 of Definition; "" for a removal
	Definition  string    `json:"definition"`  // canonical JSON; "" for a removal
	FirstSeen   time.Time `json:"first_seen"`  // when this version was first seen
	LastSeen    time.Time `json:"last_seen"`   // when it was last seen in a list result
}

// DefinitionQuery filters Definitions. Zero values mean "no filter"; Limit 0 means DefaultLimit.
type DefinitionQuery struct {
	ServerID, Kind, Name string
	Since, Until         time.Time // FirstSeen in [Since, Until)
	Limit                int
}

// Delivery is one alert's outcome at one sink.
type Delivery struct {
	ID        string    `json:"delivery_id"` // alerting.DeliveryID: stable per anomaly version and sink
	AnomalyID string    `json:"anomaly_id"`
	AgentID   string    `json:"agent_id"`
	Kind      string    `json:"kind"`     // the anomaly's kind
	Severity  string    `json:"severity"` // the anomaly's severity
	Sink      string    `json:"sink"`
	Status    string    `json:"status"` // delivered, dead_lettered, replayed
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"` // the last error (never a secret or payload)
	Time      time.Time `json:"time"`            // when the outcome happened
}

// DeliveryQuery filters Deliveries. Zero values mean "no filter"; Limit 0 means DefaultLimit.
type DeliveryQuery struct {
	AnomalyID, Sink, Status string
	Since, Until            time.Time // Time in [Since, Until)
	Limit                   int
}

// DefaultLimit is the row limit when a query sets none; MaxLimit caps any query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// MaxBaselineKeys caps the keys of one LoadBaselinesOf call: each is a bound parameter, and
// SQLite allows 32,766 per statement (ClickHouse's query text grows with them too).
const MaxBaselineKeys = 1000

// DefaultSeriesLimit is the number of series TimeSeries returns when SeriesQuery.Limit is 0.
const DefaultSeriesLimit = 20

// LatestSchemaVersion is the schema version Migrate brings both backends to.
const LatestSchemaVersion = 3
