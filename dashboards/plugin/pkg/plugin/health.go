package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// CheckHealth backs the data source page's "Save & test": it asks /readyz whether mcpwatch is
// up, then makes one authenticated API v1 call, so an unreachable API, a starting one, a
// missing or rejected token and an API without v1 each get their own message.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(format string, args ...any) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: fmt.Sprintf(format, args...)}, nil
	}
	if d.settingsErr != nil {
		return fail("Invalid settings: %v", d.settingsErr)
	}
	base := d.api.base.String()

	ready, err := d.api.getText(ctx, request{path: "/readyz"})
	var ae *apiError
	var ue *unreachableError
	switch {
	case errors.As(err, &ue):
		return fail("Cannot reach mcpwatch at %s: %v. Check the URL, that mcpwatch runs, and that its api.listen address is reachable from Grafana.", base, ue.err)
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		return fail("mcpwatch at %s is not ready yet: %s", base, ae.Message)
	case errors.As(err, &ae):
		return fail("%s/readyz answered %d %s: %s. Is this the mcpwatch API address (api.listen, default port 7410)?", base, ae.Status, http.StatusText(ae.Status), ae.Message)
	case err != nil:
		return fail("Cannot check %s/readyz: %v", base, err)
	}

	var agents agentsResponse
	err = d.api.get(ctx, request{path: "/api/v1/agents", query: url.Values{"since": {"24h"}, "limit": {"1"}}}, &agents)
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		if d.api.token == "" {
			return fail("mcpwatch at %s requires a bearer token: set Token to one of mcpwatch's api.tokens.", base)
		}
		return fail("mcpwatch at %s rejected the token (%d %s): set Token to one of mcpwatch's api.tokens.", base, ae.Status, http.StatusText(ae.Status))
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return fail("mcpwatch at %s is ready but has no API v1 agents endpoint: upgrade mcpwatch.", base)
	case err != nil:
		return fail("mcpwatch at %s is ready (%s) but the API v1 call failed: %v", base, ready, err)
	}
	activity := "no agent was active in the last 24 hours"
	if len(agents.Agents) > 0 {
		activity = "agents were active in the last 24 hours"
	}
	return &backend.CheckHealthResult{
		Status:  backend.HealthStatusOk,
		Message: fmt.Sprintf("mcpwatch API v1 at %s is ready; %s.", base, activity),
	}, nil
}
