package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Datasource is one configured mcpwatch data source.
type Datasource struct {
	api *client
	mux *datasource.QueryTypeMux
	log log.Logger
	// settingsErr says why the settings cannot be used; CheckHealth and every query report it.
	settingsErr error
}

// NewDatasource is the instance factory Grafana's instance manager calls for every data source
// (again whenever its settings change). Bad settings do not fail here: CheckHealth and every
// query report them, so the configuration page can show what to fix.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{log: log.DefaultLogger.With("datasource", s.UID), mux: datasource.NewQueryTypeMux()}
	for qt, h := range d.handlers() {
		d.mux.HandleFunc(qt, d.each(qt, h))
	}
	d.mux.HandleFunc("", d.unknownType)

	set, err := LoadSettings(ctx, s)
	if err != nil {
		d.settingsErr = err
		return d, nil
	}
	hc, err := httpclient.New(set.HTTP)
	if err != nil {
		d.settingsErr = fmt.Errorf("cannot create the HTTP client (check the TLS settings): %w", err)
		return d, nil
	}
	d.api = &client{base: set.URL, token: set.Token, http: hc}
	return d, nil
}

// Dispose releases the instance's idle connections when Grafana replaces it.
func (d *Datasource) Dispose() {
	if d.api != nil {
		d.api.http.CloseIdleConnections()
	}
}

// QueryData answers each query with its query type's handler.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	if d.settingsErr != nil {
		resp := backend.NewQueryDataResponse()
		for _, q := range req.Queries {
			resp.Responses[q.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream,
				"invalid data source settings: "+d.settingsErr.Error())
		}
		return resp, nil
	}
	return d.mux.QueryData(ctx, req)
}

// handler answers one query: the frames, and the API calls it made (for the query inspector).
type handler func(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error)

func (d *Datasource) handlers() map[string]handler {
	return map[string]handler{
		QuerySessions:      d.sessions,
		QuerySessionEvents: d.sessionEvents,
		QueryAnomalies:     d.anomalies,
		QueryAgents:        d.agents,
		QueryAgentRate:     d.agentRate,
		QueryAgentProfile:  d.agentProfile,
		QueryAgentSizes:    d.agentSizes,
		QueryTimeSeries:    d.timeSeries,
		QueryDeliveries:    d.deliveries,
		QueryValues:        d.values,
	}
}

// each runs h for every query of a request, turning errors into per-query error responses so
// one bad query does not fail its neighbours.
func (d *Datasource) each(qt string, h handler) func(context.Context, *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	return func(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
		resp := backend.NewQueryDataResponse()
		for _, dq := range req.Queries {
			q, err := parseQuery(dq)
			if err != nil {
				resp.Responses[dq.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
				continue
			}
			frames, calls, err := h(ctx, dq, q)
			if err != nil {
				d.log.Debug("query failed", "queryType", qt, "refId", dq.RefID, "err", err)
				resp.Responses[dq.RefID] = errorResponse(err)
				continue
			}
			executed := make([]string, len(calls))
			for i, c := range calls {
				executed[i] = c.String()
			}
			for _, f := range frames {
				if f.Meta == nil {
					f.Meta = &data.FrameMeta{}
				}
				f.Meta.ExecutedQueryString = strings.Join(executed, "\n")
			}
			resp.Responses[dq.RefID] = backend.DataResponse{Frames: frames}
		}
		return resp, nil
	}
}

func (d *Datasource) unknownType(_ context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		msg := fmt.Sprintf("queryType: %q is not one of %s", q.QueryType, strings.Join(QueryTypes, ", "))
		if q.QueryType == "" {
			msg = "queryType: required (one of " + strings.Join(QueryTypes, ", ") + ")"
		}
		resp.Responses[q.RefID] = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, msg)
	}
	return resp, nil
}

// errorResponse maps an error to the status Grafana shows. API answers and connection failures
// are downstream errors (the plugin worked; mcpwatch or the network did not).
func errorResponse(err error) backend.DataResponse {
	var ae *apiError
	var ue *unreachableError
	switch {
	case errors.As(err, &ae):
		status := backend.StatusBadGateway
		msg := err.Error()
		switch ae.Status {
		case http.StatusBadRequest:
			status = backend.StatusBadRequest
		case http.StatusUnauthorized, http.StatusForbidden:
			status = backend.StatusUnauthorized
			msg += " (set the data source's Token to one of mcpwatch's api.tokens)"
		case http.StatusNotFound:
			status = backend.StatusNotFound
		case http.StatusTooManyRequests:
			status = backend.StatusTooManyRequests
		}
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, msg)
	case errors.As(err, &ue):
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, err.Error())
	case errors.Is(err, errBadQuery):
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
	}
	return backend.ErrDataResponseWithSource(backend.StatusInternal, backend.ErrorSourcePlugin, err.Error())
}

// errBadQuery marks errors about the query itself found while running it.
var errBadQuery = errors.New("bad query")
