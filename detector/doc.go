// Package detector keeps per-agent behavioural baselines over mcp.events.enriched and raises
// Anomaly v1 records on mcp.anomalies when an agent deviates. It runs five models per agent:
// first_seen_tool (a tool the agent never called: new_tool), the request-rate model of package
// rate (rate_spike, rate_drop), the tool-sequence model of package sequence (new_transition,
// unlikely_step, unusual_session), with the population of agents as prior for cold ones, the
// context-size model of package size (large_response, large_request) and session_shape
// (enumeration bursts and probing of unknown tools: scan); the same anomaly in several agents
// becomes a campaign. Models run on event time, so a replay scores as the live stream did. Repeats of an
// anomaly are merged into it, a new agent's statistical anomalies are marked learning during
// its warm-up, and configured agents and kinds are suppressed. Baselines are snapshotted to the
// store and restored at start, so a restart does not forget what is normal.
package detector
