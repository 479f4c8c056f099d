// Package inventory is the enricher's knowledge of who is who: a YAML file listing the
// organisation's agents and MCP servers with their owner, team, environment, criticality, peer
// group and tags. The enricher joins the entries matching an event's agent and server into the
// event's labels (agent.team, server.environment, tags, …: see the Label constants), which the
// policy matches on, the detector's peer groups use, and alert routing filters on; an agent
// the inventory does not list is raised once as an unknown_agent anomaly.
//
// Entries match by id, exactly or by Glob; an exact id wins over patterns, and patterns are
// tried in file order.
package inventory
