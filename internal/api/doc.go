// Package api serves mcpwatch's HTTP API v1 — sessions and their event timelines, anomalies,
// agents ranked by risk and their learnt baselines (decoded from the detector's snapshots),
// dense time series, values for completion, tool-definition versions and alert deliveries,
// read from the store — plus the process endpoints /healthz, /readyz and /metrics, and the
// OpenAPI 3.1 document of it all at /api/v1/openapi.json. Lists of sessions and anomalies are
// paginated with opaque cursors. It also holds Client, the typed client the `mcpwatch
// sessions|anomalies|agents` commands use. The server binds loopback by default and, when
// bearer tokens are configured, requires one on every /api/ route; serving the API on a
// non-loopback address without tokens must be asked for explicitly.
package api
