package inventory

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/enricher/policy/yamlfile"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Labels the enricher sets on events from the inventory; an attribute the entry leaves empty
// sets no label.
const (
	LabelAgentOwner       = "agent.owner"
	LabelAgentTeam        = "agent.team"
	LabelAgentEnvironment = "agent.environment"
	LabelAgentCriticality = "agent.criticality"
	LabelAgentPeerGroup   = "agent.peer_group"
	LabelAgentTags        = "agent.tags"

	LabelServerOwner       = "server.owner"
	LabelServerTeam        = "server.team"
	LabelServerEnvironment = "server.environment"
	LabelServerCriticality = "server.criticality"
	LabelServerPeerGroup   = "server.peer_group"
	LabelServerTags        = "server.tags"

	// LabelTags is the sorted, comma-separated union of the agent's, the server's and (from
	// the policy's tool_tags) the tool's tags.
	LabelTags = "tags"
)

// Criticalities an entry may have.
var Criticalities = []string{"low", "medium", "high", "critical"}

// File is the inventory file's shape.
type File struct {
	// UnknownAgentSeverity is the severity of unknown_agent anomalies: info, low, medium
	// (the default), high or critical.
	UnknownAgentSeverity schemas.Severity `yaml:"unknown_agent_severity"`
	// Agents are the known agents, matched by event.agent_id.
	Agents []Entry `yaml:"agents"`
	// Servers are the known MCP servers, matched by event.server_id (the tap's upstream name,
	// the wrapped server's name, the OTLP span's server).
	Servers []Entry `yaml:"servers"`
}

// Entry is one agent or server, or a family of them by pattern.
type Entry struct {
	// ID is the agent or server id, or a Glob matching several.
	ID string `yaml:"id"`
	// Owner is who answers for it: a person, a mailbox, a team.
	Owner string `yaml:"owner"`
	// Team owns it.
	Team string `yaml:"team"`
	// Environment it belongs to, e.g. dev, staging, prod.
	Environment string `yaml:"environment"`
	// Criticality is low, medium, high or critical.
	Criticality string `yaml:"criticality"`
	// PeerGroup names agents that behave alike; the detector starts a new agent's baselines
	// from its peer group's.
	PeerGroup string `yaml:"peer_group"`
	// Tags are free words (pii, prod, customer-facing): no commas or spaces.
	Tags []string `yaml:"tags"`
	// Description is for people reading the file; it is not joined into events.
	Description string `yaml:"description"`
}

// Attributes is what an event's agent or server gets from its entry.
type Attributes struct {
	// ID is the entry's id as written (a pattern for a family).
	ID          string
	Owner       string
	Team        string
	Environment string
	Criticality string
	PeerGroup   string
	// Tags are sorted, without duplicates.
	Tags []string
	// Labels are the event labels this entry sets, keys prefixed agent. or server.
	Labels [][2]string
}

// Inventory is a parsed inventory file. It is immutable: a reload makes a new one.
type Inventory struct {
	unknownSeverity schemas.Severity
	agents, servers table
}

// table finds entries by exact id, then by pattern in file order.
type table struct {
	exact    map[string]*Attributes
	patterns []pattern
}

type pattern struct {
	glob  Glob
	attrs *Attributes
}

func (t *table) find(id string) *Attributes {
	if a := t.exact[id]; a != nil {
		return a
	}
	for _, p := range t.patterns {
		if p.glob.Match(id) {
			return p.attrs
		}
	}
	return nil
}

// Load reads and checks the inventory file at path.
func Load(path string) (*Inventory, error) {
	var f File
	if err := yamlfile.Load(path, &f); err != nil {
		return nil, err
	}
	inv, _ := f.compile()
	return inv, nil
}

// Parse checks an inventory file's text; name is used in errors.
func Parse(data []byte, name string) (*Inventory, error) {
	var f File
	if err := yamlfile.Decode(data, name, &f); err != nil {
		return nil, err
	}
	inv, _ := f.compile()
	return inv, nil
}

// Validate reports every problem with its path.
func (f *File) Validate() error {
	_, errs := f.compile()
	return errs.Err()
}

func (f *File) compile() (*Inventory, config.Errors) {
	var errs config.Errors
	inv := &Inventory{unknownSeverity: f.UnknownAgentSeverity}
	if inv.unknownSeverity == "" {
		inv.unknownSeverity = schemas.SeverityMedium
	} else if inv.unknownSeverity.Rank() < 0 {
		errs.Addf("unknown_agent_severity", "must be info, low, medium, high or critical, got %s", Quote(string(f.UnknownAgentSeverity)))
	}
	inv.agents = compileTable(&errs, "agents", "agent.", f.Agents)
	inv.servers = compileTable(&errs, "servers", "server.", f.Servers)
	return inv, errs
}

func compileTable(errs *config.Errors, path, prefix string, entries []Entry) table {
	t := table{exact: make(map[string]*Attributes, len(entries))}
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		at := fmt.Sprintf("%s[%d]", path, i)
		if j, dup := seen[e.ID]; dup && e.ID != "" {
			errs.Addf(at+".id", "duplicate id %s (also %s[%d])", Quote(e.ID), path, j)
			continue
		}
		seen[e.ID] = i
		a, ok := compileEntry(errs, at, prefix, e)
		if !ok {
			continue
		}
		g, err := CompileGlob(e.ID)
		switch {
		case err != nil:
			errs.Addf(at+".id", "invalid glob %s: %v", Quote(e.ID), err)
		case g.Literal():
			t.exact[e.ID] = a
		default:
			t.patterns = append(t.patterns, pattern{glob: g, attrs: a})
		}
	}
	return t
}

func compileEntry(errs *config.Errors, at, prefix string, e Entry) (*Attributes, bool) {
	n := len(*errs)
	if e.ID == "" {
		errs.Add(at+".id", "must not be empty")
	}
	if e.Criticality != "" && !slices.Contains(Criticalities, e.Criticality) {
		errs.Addf(at+".criticality", "must be low, medium, high or critical, got %s", Quote(e.Criticality))
	}
	for _, f := range [][2]string{{"owner", e.Owner}, {"team", e.Team}, {"environment", e.Environment}, {"peer_group", e.PeerGroup}} {
		if strings.TrimSpace(f[1]) != f[1] {
			errs.Addf(at+"."+f[0], "must not start or end with spaces, got %s", Quote(f[1]))
		}
	}
	for i, tag := range e.Tags {
		if err := CheckTag(tag); err != nil {
			errs.Addf(fmt.Sprintf("%s.tags[%d]", at, i), "%v", err)
		}
	}
	if len(*errs) > n {
		return nil, false
	}
	a := &Attributes{
		ID: e.ID, Owner: e.Owner, Team: e.Team, Environment: e.Environment,
		Criticality: e.Criticality, PeerGroup: e.PeerGroup, Tags: SortTags(e.Tags),
	}
	for _, l := range [][2]string{
		{"owner", a.Owner}, {"team", a.Team}, {"environment", a.Environment},
		{"criticality", a.Criticality}, {"peer_group", a.PeerGroup}, {"tags", strings.Join(a.Tags, ",")},
	} {
		if l[1] != "" {
			a.Labels = append(a.Labels, [2]string{prefix + l[0], l[1]})
		}
	}
	return a, true
}

// CheckTag says what is wrong with a tag: tags are joined with commas into the tags label.
func CheckTag(tag string) error {
	switch {
	case tag == "":
		return fmt.Errorf("must not be empty")
	case strings.ContainsAny(tag, ", \t\r\n"):
		return fmt.Errorf("must not contain commas or spaces, got %s", Quote(tag))
	}
	return nil
}

// SortTags returns tags sorted, without duplicates, in a new slice (nil for none).
func SortTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// Agent returns the attributes of the agent id, or nil when the inventory does not list it.
func (inv *Inventory) Agent(id string) *Attributes { return inv.agents.find(id) }

// Server returns the attributes of the server id, or nil when the inventory does not list it.
func (inv *Inventory) Server(id string) *Attributes { return inv.servers.find(id) }

// UnknownAgentSeverity is the severity of unknown_agent anomalies.
func (inv *Inventory) UnknownAgentSeverity() schemas.Severity { return inv.unknownSeverity }

// Size returns how many agent and server entries (ids and patterns) the inventory has.
func (inv *Inventory) Size() (agents, servers int) {
	return len(inv.agents.exact) + len(inv.agents.patterns), len(inv.servers.exact) + len(inv.servers.patterns)
}
