package api

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// memStore is an in-memory store.Store with the query semantics documented on the interface.
// It stands in until the SQLite backend lands.
type memStore struct {
	mu        sync.Mutex
	events    []schemas.Event
	anomalies map[string]schemas.Anomaly
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{anomalies: map[string]schemas.Anomaly{}} }

func (m *memStore) Migrate(context.Context) error                         { return nil }
func (m *memStore) SchemaVersion(context.Context) (int, error)            { return 1, nil }
func (m *memStore) SaveBaselines(context.Context, []store.Baseline) error { return nil }
func (m *memStore) LoadBaselines(context.Context, string) ([]store.Baseline, error) {
	return nil, nil
}
func (m *memStore) Close() error { return nil }

// DropExpired is a no-op: these tests never age data out.
func (m *memStore) DropExpired(context.Context, time.Time) error { return nil }

func (m *memStore) InsertEvents(_ context.Context, events []schemas.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		if !slices.ContainsFunc(m.events, func(x schemas.Event) bool { return x.ID == e.ID }) {
			m.events = append(m.events, e)
		}
	}
	return nil
}

func (m *memStore) UpsertAnomalies(_ context.Context, anomalies []schemas.Anomaly) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range anomalies {
		old, ok := m.anomalies[a.ID]
		if !ok || a.Count > old.Count || (a.Count == old.Count && a.LastSeen.After(old.LastSeen)) {
			m.anomalies[a.ID] = a
		}
	}
	return nil
}

func limitOf(n int) int {
	if n <= 0 {
		return store.DefaultLimit
	}
	return min(n, store.MaxLimit)
}

func (m *memStore) summaries() map[string]*store.Session {
	out := map[string]*store.Session{}
	for _, e := range m.events {
		if e.SessionID == "" {
			continue
		}
		s, ok := out[e.SessionID]
		if !ok {
			s = &store.Session{ID: e.SessionID, AgentID: e.AgentID, ServerID: e.ServerID,
				FirstSeen: e.ObservedAt, LastSeen: e.ObservedAt, Tools: []string{}}
			out[e.SessionID] = s
		}
		s.ClientName = cmp.Or(s.ClientName, e.ClientName)
		s.ProtocolVersion = cmp.Or(s.ProtocolVersion, e.ProtocolVersion)
		if e.ObservedAt.Before(s.FirstSeen) {
			s.FirstSeen = e.ObservedAt
		}
		if e.ObservedAt.After(s.LastSeen) {
			s.LastSeen = e.ObservedAt
		}
		s.Events++
		if e.Status != schemas.StatusOK {
			s.Errors++
		}
		if e.Method == "tools/call" && e.Target != "" && !slices.Contains(s.Tools, e.Target) {
			s.Tools = append(s.Tools, e.Target)
			slices.Sort(s.Tools)
		}
	}
	return out
}

func (m *memStore) Sessions(_ context.Context, q store.SessionQuery) ([]store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Session
	for _, s := range m.summaries() {
		if (q.AgentID != "" && s.AgentID != q.AgentID) || (q.ServerID != "" && s.ServerID != q.ServerID) ||
			(!q.Since.IsZero() && s.LastSeen.Before(q.Since)) || (!q.Until.IsZero() && !s.FirstSeen.Before(q.Until)) {
			continue
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b store.Session) int { return b.LastSeen.Compare(a.LastSeen) })
	return out[:min(len(out), limitOf(q.Limit))], nil
}

func (m *memStore) Session(_ context.Context, id string) (store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.summaries()[id]
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	return *s, nil
}

func (m *memStore) SessionEvents(_ context.Context, id string, limit int) ([]schemas.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []schemas.Event
	for _, e := range m.events {
		if e.SessionID == id {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b schemas.Event) int { return a.ObservedAt.Compare(b.ObservedAt) })
	return out[:min(len(out), limitOf(limit))], nil
}

func (m *memStore) Anomalies(_ context.Context, q store.AnomalyQuery) ([]schemas.Anomaly, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []schemas.Anomaly
	for _, a := range m.anomalies {
		if (q.AgentID != "" && a.AgentID != q.AgentID) || (q.Kind != "" && a.Kind != q.Kind) ||
			(q.MinSeverity != "" && a.Severity.Rank() < q.MinSeverity.Rank()) ||
			(!q.Since.IsZero() && a.LastSeen.Before(q.Since)) || (!q.Until.IsZero() && !a.FirstSeen.Before(q.Until)) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b schemas.Anomaly) int { return b.LastSeen.Compare(a.LastSeen) })
	return out[:min(len(out), limitOf(q.Limit))], nil
}

// failingStore fails every query, as a broken database would.
type failingStore struct{ *memStore }

var errDiskOnFire = errors.New("sqlite: disk I/O error at /secret/path/mcpwatch.db")

func (failingStore) Sessions(context.Context, store.SessionQuery) ([]store.Session, error) {
	return nil, errDiskOnFire
}
func (failingStore) Session(context.Context, string) (store.Session, error) {
	return store.Session{}, errDiskOnFire
}
func (failingStore) SessionEvents(context.Context, string, int) ([]schemas.Event, error) {
	return nil, errDiskOnFire
}
func (failingStore) Anomalies(context.Context, store.AnomalyQuery) ([]schemas.Anomaly, error) {
	return nil, errDiskOnFire
}
