// Package plugin is mcpwatch's Grafana backend datasource. It turns Grafana queries (sessions,
// a session's events, anomalies, agents ranked by risk, an agent's request rate against its
// learned band, its profile, its message sizes against their quantiles, time series, alert
// deliveries and template-variable values) into calls to the mcpwatch HTTP API v1 and the
// answers into data frames: tables for lists, wide numeric time series with labels for
// anything Grafana alerting may evaluate. CheckHealth tells an unreachable API apart from a
// rejected token. The plugin holds no state of its own; the API is the only source.
package plugin
