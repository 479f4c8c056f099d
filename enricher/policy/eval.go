package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Call is an event as the policy sees it: the operation, and what the inventory and the
// policy's tool_tags say about the agent, the server and the tool.
type Call struct {
	Event *schemas.Event
	// Agent and Server are the inventory's entries; nil when it does not list them (or there
	// is no inventory).
	Agent, Server *inventory.Attributes
	// ToolTags are the called tool's tags (ToolTags).
	ToolTags []string
}

// Violation is what one rule found wrong with one event.
type Violation struct {
	Rule *Rule
	// Tool is the tool called, or "" when the violation is about the server (any method).
	Tool string
	// Reasons say what was done that the rule does not allow, one phrase each, never quoting
	// argument values.
	Reasons []string
}

// Result is what evaluating an event found.
type Result struct {
	Violations []Violation
	// Unchecked are argument constraints that could not be checked (arguments cut at the
	// inspection cap, not passed to the enricher, or masked).
	Unchecked []Unchecked
}

// Evaluate checks a client-to-server operation against every rule matching its agent.
// Server-wide checks (servers, deny_servers, server tags, environments) apply to every method;
// tool checks (tools, deny_tools, tool tags, arguments) to tools/call.
func (p *Policy) Evaluate(c *Call) Result {
	var res Result
	ev := c.Event
	if ev.Direction != schemas.ClientToServer {
		return res // server-initiated requests are not the agent's doing
	}
	isToolCall := ev.Method == "tools/call" && ev.Target != ""
	var args arguments
	for _, r := range p.rules {
		if !r.match.holds(c) {
			continue
		}
		if ev.ServerID != "" && r.checksServer {
			if reasons := r.checkServer(c); len(reasons) > 0 {
				res.Violations = append(res.Violations, Violation{Rule: r, Reasons: reasons})
			}
		}
		if isToolCall {
			reasons := r.checkTool(c)
			for _, a := range r.args {
				if _, ok := a.tools.Match(ev.Target); ok {
					reasons, res.Unchecked = a.check(r, ev, &args, reasons, res.Unchecked)
				}
			}
			if len(reasons) > 0 {
				res.Violations = append(res.Violations, Violation{Rule: r, Tool: ev.Target, Reasons: reasons})
			}
		}
	}
	return res
}

func (m *match) holds(c *Call) bool {
	ev, a := c.Event, c.Agent
	if m.inInventory != nil && *m.inInventory != (a != nil) {
		return false
	}
	if !matches(m.agents, ev.AgentID) || !matches(m.sources, ev.AgentSource) ||
		!matches(m.clients, ev.ClientName) || !matches(m.declared, ev.DeclaredAgent) {
		return false
	}
	if m.teams == nil && m.envs == nil && m.peerGroups == nil && m.owners == nil && m.criticalities == nil && m.tags == nil {
		return true
	}
	if a == nil {
		return false // inventory conditions hold only for listed agents
	}
	if !matches(m.teams, a.Team) || !matches(m.envs, a.Environment) || !matches(m.peerGroups, a.PeerGroup) ||
		!matches(m.owners, a.Owner) || !matches(m.criticalities, a.Criticality) {
		return false
	}
	if m.tags != nil {
		return slices.ContainsFunc(a.Tags, func(t string) bool { _, ok := m.tags.Match(t); return ok })
	}
	return true
}

// matches is true for no condition (nil), else when v is set and matches a pattern.
func matches(gs inventory.Globs, v string) bool {
	if gs == nil {
		return true
	}
	if v == "" {
		return false
	}
	_, ok := gs.Match(v)
	return ok
}

func (r *Rule) checkServer(c *Call) []string {
	var reasons []string
	server := c.Event.ServerID
	if r.servers != nil {
		if _, ok := r.servers.Match(server); !ok {
			reasons = append(reasons, fmt.Sprintf("server %s is not among the allowed servers", server))
		}
	}
	if g, ok := r.denyServers.Match(server); ok {
		reasons = append(reasons, fmt.Sprintf("server %s is denied (deny_servers %s)", server, g))
	}
	if s := c.Server; s != nil {
		if len(r.serverEnvs) > 0 && s.Environment != "" {
			if _, ok := r.serverEnvs.Match(s.Environment); !ok {
				reasons = append(reasons, fmt.Sprintf("server %s is in environment %s", server, s.Environment))
			}
		}
		if r.sameEnv && c.Agent != nil && c.Agent.Environment != "" && s.Environment != "" && s.Environment != c.Agent.Environment {
			reasons = append(reasons, fmt.Sprintf("agent in environment %s used server %s in environment %s", c.Agent.Environment, server, s.Environment))
		}
		if tags := intersect(r.forbidTags, s.Tags); len(tags) > 0 {
			reasons = append(reasons, fmt.Sprintf("server %s is tagged %s (forbid_tags)", server, strings.Join(tags, ", ")))
		}
	}
	return reasons
}

func (r *Rule) checkTool(c *Call) []string {
	var reasons []string
	tool := c.Event.Target
	if r.tools != nil {
		if _, ok := r.tools.Match(tool); !ok {
			reasons = append(reasons, fmt.Sprintf("tool %s is not among the allowed tools", tool))
		}
	}
	if g, ok := r.denyTools.Match(tool); ok {
		reasons = append(reasons, fmt.Sprintf("tool %s is denied (deny_tools %s)", tool, g))
	}
	if tags := intersect(r.forbidTags, c.ToolTags); len(tags) > 0 {
		reasons = append(reasons, fmt.Sprintf("tool %s is tagged %s (forbid_tags)", tool, strings.Join(tags, ", ")))
	}
	return reasons
}

// intersect returns the elements of a that are in b; both are sorted.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			out = append(out, x)
		}
	}
	return out
}
