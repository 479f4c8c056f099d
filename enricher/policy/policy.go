package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/enricher/policy/yamlfile"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// File is the policy file's shape. Patterns are inventory.Glob patterns.
type File struct {
	// ToolTags tag tools (on some servers, or any): rules forbid tags with forbid_tags, and
	// the tags label and anomalies carry them.
	ToolTags []ToolTagSpec `yaml:"tool_tags"`
	// Rules are evaluated independently: every rule that matches an event's agent checks it.
	Rules []RuleSpec `yaml:"rules"`
}

// ToolTagSpec gives tools tags.
type ToolTagSpec struct {
	// Tools are the tools' names (patterns).
	Tools []string `yaml:"tools"`
	// Servers limits the entry to these servers (patterns); empty: any server.
	Servers []string `yaml:"servers"`
	// Tags are added to the matching tools.
	Tags []string `yaml:"tags"`
}

// RuleSpec is one rule. A list left out places no constraint; an empty list ([]) allows
// nothing (servers: [] forbids every server).
type RuleSpec struct {
	// Name identifies the rule in anomalies, metrics and logs; unique.
	Name string `yaml:"name"`
	// Description is for people; it is quoted in anomalies' explanations.
	Description string `yaml:"description"`
	// Severity of this rule's violations: info, low, medium, high (the default) or critical.
	Severity schemas.Severity `yaml:"severity"`
	// Match selects the agents the rule applies to; empty: every agent.
	Match MatchSpec `yaml:"match"`
	// Servers the agents may use (patterns); left out: any.
	Servers []string `yaml:"servers"`
	// DenyServers the agents must not use (patterns).
	DenyServers []string `yaml:"deny_servers"`
	// Tools the agents may call (patterns); left out: any.
	Tools []string `yaml:"tools"`
	// DenyTools the agents must not call (patterns).
	DenyTools []string `yaml:"deny_tools"`
	// ForbidTags are tags of servers (inventory) and tools (tool_tags) the agents must not
	// touch.
	ForbidTags []string `yaml:"forbid_tags"`
	// ServerEnvironments are the environments (patterns) of servers the agents may use;
	// servers whose environment the inventory does not give are not checked.
	ServerEnvironments []string `yaml:"server_environments"`
	// SameEnvironment: the agents may only use servers of their own environment (when the
	// inventory gives both).
	SameEnvironment bool `yaml:"same_environment"`
	// Arguments constrain the arguments of tools/call.
	Arguments []ArgumentSpec `yaml:"arguments"`
}

// MatchSpec selects agents: every condition given must hold, and a list holds when any of its
// patterns matches. Inventory conditions do not hold for agents the inventory does not list.
type MatchSpec struct {
	// Agents are agent ids (patterns).
	Agents []string `yaml:"agents"`
	// AgentSources are how the agent was attributed: mtls, jwt, jwt_unverified, header,
	// baggage, client_info, unknown (patterns).
	AgentSources []string `yaml:"agent_sources"`
	// Clients are clientInfo names (patterns).
	Clients []string `yaml:"clients"`
	// DeclaredAgents are the agent ids clients declared in the agent-id header (patterns).
	DeclaredAgents []string `yaml:"declared_agents"`
	// Teams, Environments, PeerGroups, Owners and Criticalities match the agent's inventory
	// attributes (patterns).
	Teams         []string `yaml:"teams"`
	Environments  []string `yaml:"environments"`
	PeerGroups    []string `yaml:"peer_groups"`
	Owners        []string `yaml:"owners"`
	Criticalities []string `yaml:"criticalities"`
	// Tags match when the agent has any of them (inventory).
	Tags []string `yaml:"tags"`
	// InInventory: true matches only agents the inventory lists, false only those it does
	// not; left out: both.
	InInventory *bool `yaml:"in_inventory"`
}

// ArgumentSpec constrains one argument of some tools' calls.
type ArgumentSpec struct {
	// Tools whose calls are checked (patterns); required.
	Tools []string `yaml:"tools"`
	// Path is the argument: keys separated by dots, [n] for an array element, [*] for every
	// element, $ for the whole arguments object ("sql", "options.limit", "files[*].path").
	Path string `yaml:"path"`
	// Required: the argument must be present.
	Required bool `yaml:"required"`
	// MustMatch and MustNotMatch are regular expressions (RE2 syntax) the value must and must
	// not match (anywhere; anchor with ^ and $).
	MustMatch    string `yaml:"must_match"`
	MustNotMatch string `yaml:"must_not_match"`
	// MaxLength is the most characters the value may have; 0: no limit.
	MaxLength int `yaml:"max_length"`
	// Enum lists the values allowed.
	Enum []string `yaml:"enum"`
}

// Policy is a parsed policy file. It is immutable: a reload makes a new one.
type Policy struct {
	toolTags []toolTag
	rules    []*Rule
}

type toolTag struct {
	tools, servers inventory.Globs
	tags           []string
}

// Rule is a compiled rule.
type Rule struct {
	// Name, Description and Severity are as in the file (Severity defaulted).
	Name        string
	Description string
	Severity    schemas.Severity

	match                   match
	servers, denyServers    inventory.Globs // servers nil: any
	tools, denyTools        inventory.Globs // tools nil: any
	forbidTags              []string
	serverEnvs              inventory.Globs
	sameEnv                 bool
	args                    []*argument
	allows                  string // what the rule allows, for explanations
	checksServer, checksArg bool
}

type match struct {
	agents, sources, clients, declared             inventory.Globs
	teams, envs, peerGroups, owners, criticalities inventory.Globs
	tags                                           inventory.Globs
	inInventory                                    *bool
}

// Load reads and checks the policy file at path.
func Load(path string) (*Policy, error) {
	var f File
	if err := yamlfile.Load(path, &f); err != nil {
		return nil, err
	}
	p, _ := f.compile()
	return p, nil
}

// Parse checks a policy file's text; name is used in errors.
func Parse(data []byte, name string) (*Policy, error) {
	var f File
	if err := yamlfile.Decode(data, name, &f); err != nil {
		return nil, err
	}
	p, _ := f.compile()
	return p, nil
}

// Validate reports every problem with its path.
func (f *File) Validate() error {
	_, errs := f.compile()
	return errs.Err()
}

// Rules returns the compiled rules in file order.
func (p *Policy) Rules() []*Rule { return p.rules }

func (f *File) compile() (*Policy, config.Errors) {
	var errs config.Errors
	p := &Policy{}
	for i, tt := range f.ToolTags {
		at := fmt.Sprintf("tool_tags[%d]", i)
		t := toolTag{
			tools:   inventory.CompileGlobs(&errs, at+".tools", tt.Tools),
			servers: inventory.CompileGlobs(&errs, at+".servers", tt.Servers),
			tags:    compileTags(&errs, at+".tags", tt.Tags),
		}
		if len(tt.Tools) == 0 {
			errs.Add(at+".tools", "must list at least one tool")
		}
		if len(tt.Tags) == 0 {
			errs.Add(at+".tags", "must list at least one tag")
		}
		p.toolTags = append(p.toolTags, t)
	}
	names := map[string]int{}
	for i, rs := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		switch j, dup := names[rs.Name]; {
		case rs.Name == "":
			errs.Add(at+".name", "must not be empty")
		case dup:
			errs.Addf(at+".name", "duplicate rule name %s (also rules[%d])", inventory.Quote(rs.Name), j)
		default:
			names[rs.Name] = i
		}
		p.rules = append(p.rules, compileRule(&errs, at, rs))
	}
	return p, errs
}

func compileTags(errs *config.Errors, path string, tags []string) []string {
	for i, t := range tags {
		if err := inventory.CheckTag(t); err != nil {
			errs.Addf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
	return inventory.SortTags(tags)
}

func compileRule(errs *config.Errors, at string, rs RuleSpec) *Rule {
	r := &Rule{Name: rs.Name, Description: rs.Description, Severity: rs.Severity}
	if r.Severity == "" {
		r.Severity = schemas.SeverityHigh
	} else if r.Severity.Rank() < 0 {
		errs.Addf(at+".severity", "must be info, low, medium, high or critical, got %s", inventory.Quote(string(rs.Severity)))
	}
	m := rs.Match
	g := func(name string, p []string) inventory.Globs {
		return inventory.CompileGlobs(errs, at+"."+name, p)
	}
	r.match = match{
		agents: g("match.agents", m.Agents), sources: g("match.agent_sources", m.AgentSources),
		clients: g("match.clients", m.Clients), declared: g("match.declared_agents", m.DeclaredAgents),
		teams: g("match.teams", m.Teams), envs: g("match.environments", m.Environments),
		peerGroups: g("match.peer_groups", m.PeerGroups), owners: g("match.owners", m.Owners),
		criticalities: g("match.criticalities", m.Criticalities), tags: g("match.tags", m.Tags),
		inInventory: m.InInventory,
	}
	r.servers, r.denyServers = g("servers", rs.Servers), g("deny_servers", rs.DenyServers)
	r.tools, r.denyTools = g("tools", rs.Tools), g("deny_tools", rs.DenyTools)
	r.forbidTags = compileTags(errs, at+".forbid_tags", rs.ForbidTags)
	r.serverEnvs = g("server_environments", rs.ServerEnvironments)
	r.sameEnv = rs.SameEnvironment
	for i, as := range rs.Arguments {
		if a := compileArgument(errs, fmt.Sprintf("%s.arguments[%d]", at, i), as); a != nil {
			r.args = append(r.args, a)
		}
	}
	r.checksServer = rs.Servers != nil || len(rs.DenyServers) > 0 || len(rs.ServerEnvironments) > 0 || rs.SameEnvironment || len(rs.ForbidTags) > 0
	r.checksArg = len(rs.Arguments) > 0
	if !r.checksServer && rs.Tools == nil && len(rs.DenyTools) == 0 && !r.checksArg {
		errs.Add(at, "checks nothing: give servers, deny_servers, tools, deny_tools, forbid_tags, server_environments, same_environment or arguments")
	}
	r.allows = r.describe()
	return r
}

// describe says what the rule allows, for explanations.
func (r *Rule) describe() string {
	var parts []string
	list := func(gs inventory.Globs) string {
		if len(gs) == 0 {
			return "none"
		}
		return gs.String()
	}
	if r.servers != nil {
		parts = append(parts, "servers "+list(r.servers))
	}
	if len(r.denyServers) > 0 {
		parts = append(parts, "no servers "+r.denyServers.String())
	}
	if r.tools != nil {
		parts = append(parts, "tools "+list(r.tools))
	}
	if len(r.denyTools) > 0 {
		parts = append(parts, "no tools "+r.denyTools.String())
	}
	if len(r.forbidTags) > 0 {
		parts = append(parts, "nothing tagged "+strings.Join(r.forbidTags, ", "))
	}
	if len(r.serverEnvs) > 0 {
		parts = append(parts, "servers in environments "+r.serverEnvs.String())
	}
	if r.sameEnv {
		parts = append(parts, "servers in the agent's own environment")
	}
	for _, a := range r.args {
		parts = append(parts, a.describe())
	}
	return strings.Join(parts, "; ")
}

// Allows says in words what the rule allows.
func (r *Rule) Allows() string { return r.allows }

// ToolTags returns the tags tool_tags give tool on server, sorted; the result must not be
// modified.
func (p *Policy) ToolTags(server, tool string) []string {
	var out []string
	shared := true // out is an entry's own slice
	for i := range p.toolTags {
		t := &p.toolTags[i]
		if _, ok := t.tools.Match(tool); !ok {
			continue
		}
		if t.servers != nil {
			if _, ok := t.servers.Match(server); !ok {
				continue
			}
		}
		if out == nil {
			out = t.tags
			continue
		}
		if shared {
			out, shared = slices.Clone(out), false
		}
		out = append(out, t.tags...)
	}
	if !shared {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}

// compileRegexp compiles a must_match or must_not_match.
func compileRegexp(errs *config.Errors, path, expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		errs.Addf(path, "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	return re
}
