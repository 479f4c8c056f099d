// Package detector keeps per-agent behavioural baselines over mcp.events.enriched and raises
// Anomaly v1 records on mcp.anomalies when an agent deviates. Today it has one model,
// first_seen_tool: an agent calling a tool it has never called before. Baselines are snapshotted
// to the store and restored at start, so a restart does not forget what is normal.
package detector
