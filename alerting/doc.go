// Package alerting delivers anomalies from mcp.anomalies to the SOC's systems. Today it has one
// sink, a webhook posting Anomaly v1 JSON (optionally HMAC-signed). A batch's offsets are
// committed only after every matching sink accepted each anomaly or it was dead-lettered to
// mcp.alerts.dlq after its retry budget, so nothing is lost.
package alerting
