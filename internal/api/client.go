package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Client queries a running mcpwatch API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client for the API at baseURL (e.g. http://127.0.0.1:7410). token, when
// set, is sent as a bearer token. A nil httpClient means one with a 60 s timeout.
func NewClient(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api URL %q: must be an absolute http(s) URL like http://127.0.0.1:7410", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if httpClient == nil {
		httpClient = &http.Client{Timeout: time.Minute}
	}
	return &Client{base: u, token: token, http: httpClient}, nil
}

// APIError is an answer other than 2xx; Message is the server's error text.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("mcpwatch API answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is makes a 404 match store.ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == store.ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Sessions lists sessions matching q, most recently active first (one page of q.Limit).
func (c *Client) Sessions(ctx context.Context, q store.SessionQuery) ([]store.Session, error) {
	resp, err := c.SessionsPage(ctx, q, "")
	return resp.Sessions, err
}

// SessionsPage returns one page of sessions: the first when cursor is empty, else the one
// after the page whose NextCursor it is. q.After is ignored (cursors are opaque).
func (c *Client) SessionsPage(ctx context.Context, q store.SessionQuery, cursor string) (SessionsResponse, error) {
	v := encodeSessionQuery(q)
	setIf(v, "cursor", cursor)
	return getJSON[SessionsResponse](ctx, c, "/api/v1/sessions", v)
}

// Session returns one session's summary; the error matches store.ErrNotFound when there is none.
func (c *Client) Session(ctx context.Context, id string) (store.Session, error) {
	return getJSON[store.Session](ctx, c, "/api/v1/sessions/"+url.PathEscape(id), nil)
}

// SessionEvents returns up to limit of a session's events in observed order (limit 0: the
// server's default).
func (c *Client) SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error) {
	v := url.Values{}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	resp, err := getJSON[EventsResponse](ctx, c, "/api/v1/sessions/"+url.PathEscape(id)+"/events", v)
	if err != nil {
		return nil, err
	}
	return resp.Events, nil
}

// Anomalies lists anomalies matching q, most recent first (one page of q.Limit).
func (c *Client) Anomalies(ctx context.Context, q store.AnomalyQuery) ([]schemas.Anomaly, error) {
	resp, err := c.AnomaliesPage(ctx, q, "")
	return resp.Anomalies, err
}

// AnomaliesPage returns one page of anomalies, as SessionsPage does for sessions.
func (c *Client) AnomaliesPage(ctx context.Context, q store.AnomalyQuery, cursor string) (AnomaliesResponse, error) {
	v := encodeAnomalyQuery(q)
	setIf(v, "cursor", cursor)
	return getJSON[AnomaliesResponse](ctx, c, "/api/v1/anomalies", v)
}

// Anomaly returns one anomaly; the error matches store.ErrNotFound when there is none.
func (c *Client) Anomaly(ctx context.Context, id string) (schemas.Anomaly, error) {
	return getJSON[schemas.Anomaly](ctx, c, "/api/v1/anomalies/"+url.PathEscape(id), nil)
}

// Agents lists the agents with events in q's range, riskiest first (a zero Since: the
// server's default, the last 24 hours).
func (c *Client) Agents(ctx context.Context, q store.AgentQuery) ([]store.Agent, error) {
	resp, err := getJSON[AgentsResponse](ctx, c, "/api/v1/agents", encodeAgentQuery(q))
	return resp.Agents, err
}

// Agent summarises one agent over q's range (q.Limit is ignored); the error matches
// store.ErrNotFound when it has no events there.
func (c *Client) Agent(ctx context.Context, id string, q store.AgentQuery) (store.Agent, error) {
	q.Limit = 0
	return getJSON[store.Agent](ctx, c, "/api/v1/agents/"+url.PathEscape(id), encodeAgentQuery(q))
}

// AgentProfile returns an agent's learnt baseline; the error matches store.ErrNotFound before
// the detector has saved one.
func (c *Client) AgentProfile(ctx context.Context, id string) (Profile, error) {
	return getJSON[Profile](ctx, c, "/api/v1/agents/"+url.PathEscape(id)+"/profile", nil)
}

// TimeSeries returns dense series (zero Since, Until or Step: the server's defaults).
func (c *Client) TimeSeries(ctx context.Context, q store.SeriesQuery) (SeriesResponse, error) {
	v := url.Values{}
	setIf(v, "metric", q.Metric)
	setIf(v, "by", q.By)
	if q.Step != 0 {
		v.Set("step", q.Step.String())
	}
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setIf(v, "agent", q.AgentID)
	setIf(v, "server", q.ServerID)
	setIf(v, "tool", q.Tool)
	setLimit(v, q.Limit)
	return getJSON[SeriesResponse](ctx, c, "/api/v1/timeseries", v)
}

// Values lists the distinct agents, servers or tools (field: "agents", "servers", "tools").
func (c *Client) Values(ctx context.Context, field string, q store.ValuesQuery) ([]string, error) {
	v := url.Values{}
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setIf(v, "agent", q.AgentID)
	setLimit(v, q.Limit)
	resp, err := getJSON[ValuesResponse](ctx, c, "/api/v1/values/"+url.PathEscape(field), v)
	return resp.Values, err
}

// Definitions lists definition versions, newest first.
func (c *Client) Definitions(ctx context.Context, q store.DefinitionQuery) ([]store.Definition, error) {
	v := url.Values{}
	setIf(v, "server", q.ServerID)
	setIf(v, "kind", q.Kind)
	setIf(v, "name", q.Name)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setLimit(v, q.Limit)
	resp, err := getJSON[DefinitionsResponse](ctx, c, "/api/v1/definitions", v)
	return resp.Definitions, err
}

// Deliveries lists alert delivery outcomes, newest first.
func (c *Client) Deliveries(ctx context.Context, q store.DeliveryQuery) ([]store.Delivery, error) {
	v := url.Values{}
	setIf(v, "anomaly", q.AnomalyID)
	setIf(v, "sink", q.Sink)
	setIf(v, "status", q.Status)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setLimit(v, q.Limit)
	resp, err := getJSON[DeliveriesResponse](ctx, c, "/api/v1/deliveries", v)
	return resp.Deliveries, err
}

// getJSON GETs path (already escaped) with query from the API and decodes the answer into a T.
func getJSON[T any](ctx context.Context, c *Client, path string, query url.Values) (T, error) {
	var out T
	err := c.get(ctx, path, query, &out)
	return out, err
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	u := *c.base
	// path is already escaped; set both forms so an escaped "/" in an id survives.
	u.RawPath = u.EscapedPath() + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("cannot build API request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("cannot reach mcpwatch API at %s: is `mcpwatch run` running? (%w)", c.base, err)
		}
		return fmt.Errorf("cannot reach mcpwatch API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &APIError{StatusCode: resp.StatusCode, Message: errorMessage(resp.Body)}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot decode mcpwatch API response from %s: %w", u.Path, err)
	}
	return nil
}

// errorMessage extracts {"error": …}, or a short excerpt of a body that is not ours (a proxy's
// error page, say).
func errorMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	var e ErrorResponse
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	msg := strings.Join(strings.Fields(string(b)), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = "(no message)"
	}
	return msg
}
