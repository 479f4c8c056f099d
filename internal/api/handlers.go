package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// SessionsResponse is the body of GET /api/v1/sessions. NextCursor, when set, fetches the next
// page; it is absent on the last page.
type SessionsResponse struct {
	Sessions   []store.Session `json:"sessions"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// EventsResponse is the body of GET /api/v1/sessions/{id}/events.
type EventsResponse struct {
	SessionID string          `json:"session_id"`
	Events    []schemas.Event `json:"events"`
}

// AnomaliesResponse is the body of GET /api/v1/anomalies.
type AnomaliesResponse struct {
	Anomalies  []schemas.Anomaly `json:"anomalies"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// AgentsResponse is the body of GET /api/v1/agents.
type AgentsResponse struct {
	Agents []store.Agent `json:"agents"`
}

// SeriesResponse is the body of GET /api/v1/timeseries: dense series, every bucket of
// [since, until) present with zeros filled in.
type SeriesResponse struct {
	Metric string         `json:"metric"`
	By     string         `json:"by"`
	Step   string         `json:"step"` // a Go duration, e.g. "1m0s"
	Series []store.Series `json:"series"`
}

// ValuesResponse is the body of GET /api/v1/values/{field}.
type ValuesResponse struct {
	Values []string `json:"values"`
}

// DefinitionsResponse is the body of GET /api/v1/definitions.
type DefinitionsResponse struct {
	Definitions []store.Definition `json:"definitions"`
}

// DeliveriesResponse is the body of GET /api/v1/deliveries.
type DeliveriesResponse struct {
	Deliveries []store.Delivery `json:"deliveries"`
}

// ErrorResponse is the body of every API error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// noParams answers 400 and reports false when a request that takes no parameters has some.
func noParams(w http.ResponseWriter, r *http.Request) bool {
	if _, err := newParams(query(r), time.Time{}); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// found reports whether the store answered; otherwise it has answered the request: 404 with
// notFound when there was nothing to find, 500 when the store failed.
func (s *Server) found(w http.ResponseWriter, r *http.Request, err error, notFound string) bool {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, notFound)
		return false
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return false
	}
	return true
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.openapi)
}

// pageLimit is how many rows to ask the store for to fill a page of limit rows and know
// whether another follows: one more, unless that exceeds what the store returns at most.
func pageLimit(limit int) (ask int, extra bool) {
	if limit == 0 {
		limit = store.DefaultLimit
	}
	if limit >= store.MaxLimit {
		return store.MaxLimit, false
	}
	return limit + 1, true
}

// fetchPage fetches a page of up to limit rows (0: DefaultLimit), asking fetch for one more to
// know whether another page follows; last, set only then, is the page's last row.
func fetchPage[T any](limit int, fetch func(limit int) ([]T, error)) (page []T, last *T, err error) {
	want := cmp.Or(limit, store.DefaultLimit)
	ask, extra := pageLimit(limit)
	rows, err := fetch(ask)
	if err != nil {
		return nil, nil, err
	}
	if (extra && len(rows) > want) || (!extra && len(rows) == want) {
		return rows[:want], &rows[want-1], nil
	}
	return nonNil(rows), nil, nil
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	q, err := sessionQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sessions, last, err := fetchPage(q.Limit, func(limit int) ([]store.Session, error) {
		q.Limit = limit
		return s.st.Sessions(r.Context(), q)
	})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	resp := SessionsResponse{Sessions: sessions}
	if last != nil {
		resp.NextCursor = encodeCursor(listSessions, last.LastSeen, last.ID)
	}
	for i := range resp.Sessions {
		resp.Sessions[i].Tools = nonNil(resp.Sessions[i].Tools)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !noParams(w, r) {
		return
	}
	sess, err := s.st.Session(r.Context(), id)
	if !s.found(w, r, err, fmt.Sprintf("session %q not found", id)) {
		return
	}
	sess.Tools = nonNil(sess.Tools)
	writeJSON(w, http.StatusOK, sess)
}

func (s *Server) sessionEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	limit, err := eventsLimit(query(r))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 {
		limit = store.DefaultLimit
	}
	events, err := s.st.SessionEvents(r.Context(), id, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if len(events) == 0 {
		// An empty list is ambiguous; tell a missing session apart from an empty one.
		if _, err := s.st.Session(r.Context(), id); !s.found(w, r, err, fmt.Sprintf("session %q not found", id)) {
			return
		}
	}
	writeJSON(w, http.StatusOK, EventsResponse{SessionID: id, Events: nonNil(events)})
}

func (s *Server) listAnomalies(w http.ResponseWriter, r *http.Request) {
	q, err := anomalyQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	anomalies, last, err := fetchPage(q.Limit, func(limit int) ([]schemas.Anomaly, error) {
		q.Limit = limit
		return s.st.Anomalies(r.Context(), q)
	})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	resp := AnomaliesResponse{Anomalies: anomalies}
	if last != nil {
		resp.NextCursor = encodeCursor(listAnomalies, last.LastSeen, last.ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getAnomaly(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !noParams(w, r) {
		return
	}
	a, err := s.st.Anomaly(r.Context(), id)
	if !s.found(w, r, err, fmt.Sprintf("anomaly %q not found", id)) {
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	q, err := agentQuery(query(r), s.now(), true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	agents, err := s.st.Agents(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	for i := range agents {
		fixAgent(&agents[i])
	}
	writeJSON(w, http.StatusOK, AgentsResponse{Agents: nonNil(agents)})
}

func fixAgent(a *store.Agent) {
	a.Servers, a.Tools = nonNil(a.Servers), nonNil(a.Tools)
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q, err := agentQuery(query(r), s.now(), false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a, err := s.st.Agent(r.Context(), id, q)
	if !s.found(w, r, err, fmt.Sprintf("agent %q has no events from %s to %s", id, fmtBound(q.Since), fmtBound(q.Until))) {
		return
	}
	fixAgent(&a)
	writeJSON(w, http.StatusOK, a)
}

func fmtBound(t time.Time) string {
	if t.IsZero() {
		return "now"
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) agentProfile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !noParams(w, r) {
		return
	}
	p, err := s.profiler.Profile(r.Context(), s.st, id)
	if !s.found(w, r, err, fmt.Sprintf("agent %q has no baseline yet", id)) {
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// Profile is GET /api/v1/agents/{id}/profile's body (detector.Profile).
type Profile = detector.Profile

func (s *Server) timeSeries(w http.ResponseWriter, r *http.Request) {
	q, err := seriesQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	series, err := s.st.TimeSeries(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if len(series) == 0 && q.By == "" {
		series = []store.Series{{Key: "total"}} // one series, all zeros
	}
	starts := bucketStarts(q.Since, q.Until, q.Step)
	for i := range series {
		series[i].Points = densify(series[i].Points, starts)
	}
	writeJSON(w, http.StatusOK, SeriesResponse{Metric: q.Metric, By: q.By, Step: q.Step.String(), Series: nonNil(series)})
}

// densify returns a point for every bucket start, taking values from the store's sparse points.
func densify(points []store.Point, starts []time.Time) []store.Point {
	have := make(map[int64]float64, len(points))
	for _, p := range points {
		have[p.Time.UnixMicro()] += p.Value
	}
	out := make([]store.Point, len(starts))
	for i, t := range starts {
		out[i] = store.Point{Time: t, Value: have[t.UnixMicro()]}
	}
	return out
}

func (s *Server) values(w http.ResponseWriter, r *http.Request) {
	field, ok := valueFields[r.PathValue("field")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no values for %q: the fields are agents, servers and tools", r.PathValue("field")))
		return
	}
	q, err := valuesQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vs, err := s.st.Values(r.Context(), field, q)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ValuesResponse{Values: nonNil(vs)})
}

func (s *Server) definitions(w http.ResponseWriter, r *http.Request) {
	q, err := definitionQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	defs, err := s.st.Definitions(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DefinitionsResponse{Definitions: nonNil(defs)})
}

func (s *Server) deliveries(w http.ResponseWriter, r *http.Request) {
	q, err := deliveryQuery(query(r), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, err := s.st.Deliveries(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeliveriesResponse{Deliveries: nonNil(ds)})
}
