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

	// Sessions lists sessions, most recently active first.
	Sessions(ctx context.Context, q SessionQuery) ([]Session, error)
	// Session returns one session's summary; ErrNotFound when there is none.
	Session(ctx context.Context, id string) (Session, error)
	// SessionEvents returns a session's events in observed order.
	SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error)
	// Anomalies lists anomalies, most recent LastSeen first.
	Anomalies(ctx context.Context, q AnomalyQuery) ([]schemas.Anomaly, error)

	// DropExpired deletes events and anomalies older than the configured retention, counted back
	// from now. Callers run it periodically (e.g. hourly); it is cheap when nothing expired.
	// Baselines are never expired: only the latest snapshot per key is kept anyway.
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
	Errors          int       `json:"errors"`
	// Tools are the distinct tools called in the session, sorted.
	Tools []string `json:"tools"`
}

// SessionQuery filters Sessions. Zero values mean "no filter"; Limit 0 means DefaultLimit.
type SessionQuery struct {
	AgentID  string
	ServerID string
	Since    time.Time // sessions active at or after Since
	Until    time.Time // sessions that started before Until
	Limit    int
}

// AnomalyQuery filters Anomalies. Zero values mean "no filter"; Limit 0 means DefaultLimit.
type AnomalyQuery struct {
	AgentID     string
	Kind        string
	MinSeverity schemas.Severity
	Since       time.Time // LastSeen at or after Since
	Until       time.Time // FirstSeen before Until
	Limit       int
}

// DefaultLimit is the row limit when a query sets none; MaxLimit caps any query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// LatestSchemaVersion is the schema version Migrate brings both backends to.
const LatestSchemaVersion = 2
