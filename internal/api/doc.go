// Package api serves mcpwatch's HTTP API: session history, a session's event timeline and
// anomalies read from the store, plus the process endpoints /healthz, /readyz and /metrics. It
// also holds Client, the typed client the `mcpwatch sessions|anomalies` commands use. The server
// binds loopback by default and, when bearer tokens are configured, requires one on every /api/
// route; serving the API on a non-loopback address without tokens must be asked for explicitly.
package api
