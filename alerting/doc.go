// Package alerting delivers anomalies from mcp.anomalies to the SOC's systems: webhooks
// (Anomaly v1 JSON or an OCSF Detection Finding, optionally HMAC-signed, optionally over
// mutual TLS), syslog (RFC 5424 carrying JSON, CEF or LEEF), Splunk's HTTP Event Collector and
// files. Each sink has its own routing (minimum severity, glob filters on kinds, agents,
// servers and tags) and re-alert window, with periodic digests of the repeats it held back.
// A batch's offsets are committed only after every routed sink accepted each anomaly or it was
// dead-lettered to mcp.alerts.dlq, and the outcomes were recorded in the store; a sink that is
// down holds the stream back instead. ReplayDLQ re-sends dead letters with their original
// delivery ids. See docs/alerting.md.
package alerting
