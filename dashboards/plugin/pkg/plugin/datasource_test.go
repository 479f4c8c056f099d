package plugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// startAPI starts another mcpwatch API server over an empty store, e.g. one that is not ready
// or serves TLS.
func startAPI(t *testing.T, cfg api.Config, ready func() error) string {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "mcpwatch.db"), 30, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(t.Context()))
	cfg.Listen = "127.0.0.1:0"
	reg := prometheus.NewRegistry()
	srv, err := api.New(cfg, st, reg, ready, pipeline.Settings{Logger: slog.New(slog.DiscardHandler), Registry: reg})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return srv.Addr()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key to dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpwatch-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, certPEM
}

func TestCheckHealth(t *testing.T) {
	notReady := startAPI(t, api.Config{}, func() error { return errors.New("detector starting") })
	certFile, keyFile, certPEM := selfSignedCert(t, t.TempDir())
	tlsAddr := startAPI(t, api.Config{Tokens: []string{testToken}, TLS: api.TLSConfig{CertFile: certFile, KeyFile: keyFile}}, nil)
	caJSON, err := json.Marshal(map[string]any{"tlsAuthWithCACert": true})
	require.NoError(t, err)
	other := httptest.NewServer(http.NotFoundHandler()) // a web server that is not mcpwatch
	t.Cleanup(other.Close)

	tests := []struct {
		name     string
		settings backend.DataSourceInstanceSettings
		ok       bool
		message  string
	}{
		{name: "ready", settings: backend.DataSourceInstanceSettings{URL: fixtureAPI, DecryptedSecureJSONData: map[string]string{TokenKey: testToken}},
			ok: true, message: "mcpwatch API v1 at " + fixtureAPI + " is ready; no agent was active in the last 24 hours."},
		{name: "wrong token", settings: backend.DataSourceInstanceSettings{URL: fixtureAPI, DecryptedSecureJSONData: map[string]string{TokenKey: "nope"}},
			message: "mcpwatch at " + fixtureAPI + " rejected the token (401 Unauthorized): set Token to one of mcpwatch's api.tokens."},
		{name: "no token", settings: backend.DataSourceInstanceSettings{URL: fixtureAPI},
			message: "mcpwatch at " + fixtureAPI + " requires a bearer token: set Token to one of mcpwatch's api.tokens."},
		{name: "unreachable", settings: backend.DataSourceInstanceSettings{URL: "http://" + closedPort(t)},
			message: "connection refused"},
		{name: "not ready", settings: backend.DataSourceInstanceSettings{URL: "http://" + notReady},
			message: "is not ready yet: not ready: detector starting"},
		{name: "not mcpwatch", settings: backend.DataSourceInstanceSettings{URL: other.URL},
			message: "/readyz answered 404 Not Found: 404 page not found. Is this the mcpwatch API address"},
		{name: "no url", settings: backend.DataSourceInstanceSettings{},
			message: "Invalid settings: url: required"},
		{name: "bad url", settings: backend.DataSourceInstanceSettings{URL: "127.0.0.1:7410"},
			message: `Invalid settings: url: "127.0.0.1:7410" must be an absolute http(s) URL`},
		{name: "credentials in url", settings: backend.DataSourceInstanceSettings{URL: "http://user:pw@127.0.0.1:7410"},
			message: "Invalid settings: url: must not contain credentials"},
		{name: "tls with the CA", ok: true, settings: backend.DataSourceInstanceSettings{URL: "https://" + tlsAddr, JSONData: caJSON,
			DecryptedSecureJSONData: map[string]string{TokenKey: testToken, "tlsCACert": string(certPEM)}},
			message: "is ready"},
		{name: "tls without the CA", settings: backend.DataSourceInstanceSettings{URL: "https://" + tlsAddr,
			DecryptedSecureJSONData: map[string]string{TokenKey: testToken}},
			message: "certificate signed by unknown authority"},
		{name: "tls skip verify", ok: true, settings: backend.DataSourceInstanceSettings{URL: "https://" + tlsAddr, JSONData: []byte(`{"tlsSkipVerify": true}`),
			DecryptedSecureJSONData: map[string]string{TokenKey: testToken}},
			message: "is ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.settings.Type = ID
			inst, err := NewDatasource(t.Context(), tc.settings)
			require.NoError(t, err)
			d := inst.(*Datasource)
			defer d.Dispose()
			res, err := d.CheckHealth(t.Context(), &backend.CheckHealthRequest{})
			require.NoError(t, err)
			require.Contains(t, res.Message, tc.message)
			require.NotContains(t, res.Message, testToken)
			if tc.ok {
				require.Equal(t, backend.HealthStatusOk, res.Status, res.Message)
			} else {
				require.Equal(t, backend.HealthStatusError, res.Status, res.Message)
			}
		})
	}
}

// TestCheckHealthAgentsQuestion backs the "ready" case above: the fixture's agents were last
// active on 2026-11-03, so the health check's question (agents of the last 24 hours) finds
// none, while the same question over the fixture's second day finds some.
func TestCheckHealthAgentsQuestion(t *testing.T) {
	d := newTestDatasource(t)
	var resp agentsResponse
	require.NoError(t, d.api.get(t.Context(), request{path: "/api/v1/agents", query: map[string][]string{"since": {"24h"}, "limit": {"1"}}}, &resp))
	require.Empty(t, resp.Agents)
	require.NoError(t, d.api.get(t.Context(), request{path: "/api/v1/agents", query: map[string][]string{
		"since": {day2.From.Format(time.RFC3339)}, "until": {day2.To.Format(time.RFC3339)}, "limit": {"1"}}}, &resp))
	require.Len(t, resp.Agents, 1)
}

func TestQueryErrors(t *testing.T) {
	d := newTestDatasource(t)
	wrongToken := newDatasourceFor(t, fixtureAPI, "nope")
	unreachable := newDatasourceFor(t, "http://"+closedPort(t), testToken)
	badSettings := newDatasourceFor(t, "not a url", testToken)
	tests := []struct {
		name      string
		d         *Datasource
		queryType string
		model     string
		status    backend.Status
		message   string
	}{
		{"no query type", d, "", `{}`, backend.StatusBadRequest, "queryType: required (one of sessions, session_events"},
		{"unknown query type", d, "bogus", `{}`, backend.StatusBadRequest, `queryType: "bogus" is not one of sessions`},
		{"agent_rate without agent", d, QueryAgentRate, `{}`, backend.StatusBadRequest, "agent: required for agent_rate queries"},
		{"agent_rate for All agents", d, QueryAgentRate, `{"agent": "$__all"}`, backend.StatusBadRequest, "agent: required for agent_rate queries"},
		{"session_events without session", d, QuerySessionEvents, `{}`, backend.StatusBadRequest, "session: required"},
		{"bad metric", d, QueryTimeSeries, `{"metric": "bytes"}`, backend.StatusBadRequest, `metric: "bytes" is not one of calls, errors, anomalies, deliveries`},
		{"bad section", d, QueryAgentProfile, `{"agent": "a", "section": "sizes"}`, backend.StatusBadRequest, `section: "sizes" is not one of tools, transitions`},
		{"bad limit", d, QuerySessions, `{"limit": 20000}`, backend.StatusBadRequest, "limit: 20000 is out of range"},
		{"not json", d, QuerySessions, `[1]`, backend.StatusBadRequest, "cannot read the query"},
		{"step too small", d, QueryTimeSeries, `{"metric": "calls", "step": "1s"}`, backend.StatusBadRequest, "step: 1s makes 86401 buckets"},
		{"bad step", d, QueryTimeSeries, `{"metric": "calls", "step": "soon"}`, backend.StatusBadRequest, `step: "soon" must be a duration`},
		{"api rejects a parameter", d, QueryAnomalies, `{"minSeverity": "urgent"}`, backend.StatusBadRequest, "mcpwatch API answered 400 Bad Request: min_severity"},
		{"metric without that split", d, QueryTimeSeries, `{"metric": "calls", "by": "sink"}`, backend.StatusBadRequest, "mcpwatch API answered 400 Bad Request"},
		{"unknown session", d, QuerySessionEvents, `{"session": "no-such-session"}`, backend.StatusNotFound, "404 Not Found"},
		{"wrong token", wrongToken, QuerySessions, `{}`, backend.StatusUnauthorized, "set the data source's Token to one of mcpwatch's api.tokens"},
		{"unreachable", unreachable, QuerySessions, `{}`, backend.StatusBadGateway, "cannot reach the mcpwatch API at http://127.0.0.1:"},
		{"bad settings", badSettings, QuerySessions, `{}`, backend.StatusBadRequest, "invalid data source settings: url:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok := dataQuery(t, "OK", QueryValues, `{"field": "agents"}`, day2, 0, 0)
			bad := dataQuery(t, "BAD", tc.queryType, `{}`, day2, 0, 0)
			bad.JSON = []byte(tc.model)
			resp, err := tc.d.QueryData(t.Context(), &backend.QueryDataRequest{Queries: []backend.DataQuery{ok, bad}})
			require.NoError(t, err)
			dr := resp.Responses["BAD"]
			require.Error(t, dr.Error)
			require.Contains(t, dr.Error.Error(), tc.message)
			require.Equal(t, tc.status, dr.Status)
			require.NotContains(t, dr.Error.Error(), testToken)
			if tc.d == d {
				require.NoError(t, resp.Responses["OK"].Error, "a bad query does not fail its neighbours")
				require.Len(t, resp.Responses["OK"].Frames, 1)
			}
		})
	}
}

func TestAgentWithoutBaseline(t *testing.T) {
	// An agent the detector never saw has no profile: the rate is shown without a band.
	d := newTestDatasource(t)
	resp, err := d.QueryData(t.Context(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery(t, "A", QueryAgentRate, `{"agent": "ghost"}`, day2, time.Minute, 24),
		dataQuery(t, "B", QueryAgentProfile, `{"agent": "ghost", "section": "tools"}`, day2, 0, 0),
	}})
	require.NoError(t, err)
	for _, ref := range []string{"A", "B"} {
		dr := resp.Responses[ref]
		require.NoError(t, dr.Error)
		require.Len(t, dr.Frames, 1)
		require.Len(t, dr.Frames[0].Meta.Notices, 1)
		require.Contains(t, dr.Frames[0].Meta.Notices[0].Text, "agent ghost has no learned")
	}
	rate := resp.Responses["A"].Frames[0]
	require.Len(t, rate.Fields, 2, "time and observed only")
	n, err := rate.RowLen()
	require.NoError(t, err)
	require.Equal(t, 24, n, "the API's series is dense")
}
