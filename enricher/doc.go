// Package enricher is the stage between mcp.events and mcp.events.enriched. It keeps the agent
// attribution the collector made (collector.identity: mTLS, JWT, header, baggage, clientInfo),
// completing it only for events that arrive without one, adds operator labels, and drops event
// content that was not captured, so only content an operator opted in to capture is stored.
// What its checks find becomes anomalies on mcp.anomalies (suspicious_content for content
// flagged high or critical, tool_drift and tool_shadowing from servers' list results,
// policy_violation and unknown_agent from the policy and the inventory, whose labels it joins
// into every event: packages policy and inventory), produced beside the events; a batch is
// committed only after both were acknowledged.
// Before dropping content it inspects it (package inspect): what it finds becomes flags on the
// event.
package enricher
