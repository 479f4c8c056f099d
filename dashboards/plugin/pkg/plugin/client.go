package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// client calls the mcpwatch HTTP API v1.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// apiError is an API answer other than 2xx.
type apiError struct {
	Status  int
	Message string // the API's {"error": …} text, or an excerpt of a foreign body
}

func (e *apiError) Error() string {
	return fmt.Sprintf("mcpwatch API answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// unreachableError is a request that got no HTTP answer at all.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	hint := ""
	if errors.Is(e.err, syscall.ECONNREFUSED) {
		hint = " (connection refused: is mcpwatch running and is api.listen reachable from Grafana?)"
	}
	return fmt.Sprintf("cannot reach the mcpwatch API at %s%s: %v", e.base, hint, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// request is one API call: its path (already escaped) and query.
type request struct {
	path  string
	query url.Values
}

// String is the call as shown in Grafana's query inspector ("executed query").
func (r request) String() string {
	if len(r.query) == 0 {
		return "GET " + r.path
	}
	return "GET " + r.path + "?" + r.query.Encode()
}

// get performs r and decodes the JSON answer into out.
func (c *client) get(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot decode the mcpwatch API answer to %s: %w", r.path, err)
	}
	return nil
}

// getText performs r and returns a text answer (for /readyz).
func (c *client) getText(ctx context.Context, r request) (string, error) {
	resp, err := c.do(ctx, r, "text/plain")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(b)), err
}

func (c *client) do(ctx context.Context, r request, accept string) (*http.Response, error) {
	u := *c.base
	u.RawPath = u.EscapedPath() + r.path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("cannot build the API request %s: %w", r.path, err)
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachableError{base: c.base.String(), err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, &apiError{Status: resp.StatusCode, Message: errorMessage(resp.Body)}
	}
	return resp, nil
}

// errorMessage extracts {"error": …}, or a short excerpt of a body that is not the API's (a
// proxy's error page, say).
func errorMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	var e struct {
		Error string `json:"error"`
	}
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
