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

// Sessions lists sessions matching q, most recently active first.
func (c *Client) Sessions(ctx context.Context, q store.SessionQuery) ([]store.Session, error) {
	var resp SessionsResponse
	if err := c.get(ctx, "/api/v1/sessions", encodeSessionQuery(q), &resp); err != nil {
		return nil, err
	}
	return resp.Sessions, nil
}

// Session returns one session's summary; the error matches store.ErrNotFound when there is none.
func (c *Client) Session(ctx context.Context, id string) (store.Session, error) {
	var s store.Session
	err := c.get(ctx, "/api/v1/sessions/"+url.PathEscape(id), nil, &s)
	return s, err
}

// SessionEvents returns up to limit of a session's events in observed order (limit 0: the
// server's default).
func (c *Client) SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error) {
	v := url.Values{}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var resp EventsResponse
	if err := c.get(ctx, "/api/v1/sessions/"+url.PathEscape(id)+"/events", v, &resp); err != nil {
		return nil, err
	}
	return resp.Events, nil
}

// Anomalies lists anomalies matching q, most recent first.
func (c *Client) Anomalies(ctx context.Context, q store.AnomalyQuery) ([]schemas.Anomaly, error) {
	var resp AnomaliesResponse
	if err := c.get(ctx, "/api/v1/anomalies", encodeAnomalyQuery(q), &resp); err != nil {
		return nil, err
	}
	return resp.Anomalies, nil
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
