package capture

import (
	"encoding/json"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const (
	// DefaultInspectionMaxBytes caps the content carried for inspection when
	// collector.inspection_max_bytes is not set.
	DefaultInspectionMaxBytes = 4 << 10
	// DefaultCaptureMaxBytes caps captured content when a rule sets no max_bytes.
	DefaultCaptureMaxBytes = 4 << 10
	// DefaultDefinitionsMaxBytes caps the list results carried for tool-definition drift when
	// collector.definitions_max_bytes is not set.
	DefaultDefinitionsMaxBytes = 256 << 10
	// MaxBytesLimit is the largest cap allowed: events must stay well inside a Kafka message.
	MaxBytesLimit = 256 << 10
)

// definitionLists are the methods whose results carry server definitions; the enricher
// compares them for tool-definition drift, so they are carried whole up to their own cap.
var definitionLists = []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"}

// Rule opts one server, or some of its tools, in to capture (an element of collector.capture).
type Rule struct {
	// Server is the server's name (its ServerID: the HTTP tap's upstream name).
	Server string `yaml:"server"`
	// Tools is "all" (every operation of the server, any method) or a list of tool names
	// (their tools/call operations). Default all.
	Tools Tools `yaml:"tools"`
	// MaxBytes caps the captured arguments and, separately, the captured result. Default 4096.
	MaxBytes int `yaml:"max_bytes"`
}

// Tools is "all" or a list of tool names.
type Tools struct {
	// All is true for "all", and when tools is not given.
	All   bool
	Names []string
}

// UnmarshalYAML accepts the scalar all or a non-empty list of names.
func (t *Tools) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "all" {
			*t = Tools{All: true}
			return nil
		}
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		if len(names) > 0 {
			*t = Tools{Names: names}
			return nil
		}
	}
	return fmt.Errorf("line %d: tools must be all or a non-empty list of tool names", n.Line)
}

// MarshalYAML writes all or the list.
func (t Tools) MarshalYAML() (any, error) {
	if t.All || len(t.Names) == 0 {
		return "all", nil
	}
	return t.Names, nil
}

// Config is what the collector carries: the capture rules (collector.capture), the
// inspection cap (collector.inspection_max_bytes) and the definitions cap
// (collector.definitions_max_bytes).
type Config struct {
	// Rules opt servers and tools in to capture; the first rule for a server that covers the
	// operation applies.
	Rules []Rule
	// InspectionMaxBytes caps the content carried for inspection only (arguments and result
	// each); 0 disables it, nil means DefaultInspectionMaxBytes.
	InspectionMaxBytes *int
	// DefinitionsMaxBytes caps the content of list results (tools/list, prompts/list,
	// resources/list, resources/templates/list) carried for tool-definition drift, when it is
	// above the cap that would apply otherwise; 0 disables it, nil means
	// DefaultDefinitionsMaxBytes. A list cut at the cap is not compared.
	DefinitionsMaxBytes *int
}

// Validate reports every invalid field by its path under collector.
func (c Config) Validate() error {
	var errs config.Errors
	for i, r := range c.Rules {
		p := fmt.Sprintf("collector.capture[%d]", i)
		if r.Server == "" {
			errs.Add(p+".server", "must not be empty")
		}
		if slices.Contains(r.Tools.Names, "") {
			errs.Add(p+".tools", "tool names must not be empty")
		}
		if r.MaxBytes < 0 || r.MaxBytes > MaxBytesLimit {
			errs.Addf(p+".max_bytes", "must be between 0 and %d", MaxBytesLimit)
		}
	}
	if m := c.InspectionMaxBytes; m != nil && (*m < 0 || *m > MaxBytesLimit) {
		errs.Addf("collector.inspection_max_bytes", "must be between 0 (off) and %d", MaxBytesLimit)
	}
	if m := c.DefinitionsMaxBytes; m != nil && (*m < 0 || *m > MaxBytesLimit) {
		errs.Addf("collector.definitions_max_bytes", "must be between 0 (off) and %d", MaxBytesLimit)
	}
	return errs.Err()
}

// Policy decides per operation what content to carry. It is immutable and safe for
// concurrent use.
type Policy struct {
	rules       []Rule
	inspection  int
	definitions int
}

// New returns the policy of cfg.
func New(cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid capture config: %w", err)
	}
	p := &Policy{inspection: DefaultInspectionMaxBytes, definitions: DefaultDefinitionsMaxBytes}
	if cfg.InspectionMaxBytes != nil {
		p.inspection = *cfg.InspectionMaxBytes
	}
	if cfg.DefinitionsMaxBytes != nil {
		p.definitions = *cfg.DefinitionsMaxBytes
	}
	for _, r := range cfg.Rules {
		if len(r.Tools.Names) == 0 {
			r.Tools.All = true
		}
		if r.MaxBytes == 0 {
			r.MaxBytes = DefaultCaptureMaxBytes
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Decision is what to carry for one operation.
type Decision struct {
	// MaxBytes caps arguments and result each; 0 carries nothing.
	MaxBytes int
	// Captured marks the content as opted in to capture (kept and stored).
	Captured bool
}

// Decide returns the decision for an operation of server with the given method and target
// (the tool name for tools/call). List results (tools/list, …) are carried up to the
// definitions cap when it is larger: the enricher needs them whole. Captured ones are then
// stored at that size too.
func (p *Policy) Decide(server, method, target string) Decision {
	if p == nil {
		return Decision{}
	}
	d := p.decide(server, method, target)
	if p.definitions > d.MaxBytes && slices.Contains(definitionLists, method) {
		d.MaxBytes = p.definitions
	}
	return d
}

func (p *Policy) decide(server, method, target string) Decision {
	for _, r := range p.rules {
		if r.Server != server {
			continue
		}
		if r.Tools.All || (method == "tools/call" && slices.Contains(r.Tools.Names, target)) {
			return Decision{MaxBytes: r.MaxBytes, Captured: true}
		}
	}
	return Decision{MaxBytes: p.inspection}
}

// Arguments returns the content of a request or notification's params, well-formed JSON as
// jsonrpc.Parse leaves them: params.arguments for tools/call and prompts/get, params without
// _meta otherwise (what ArgsShape describes). It returns nil when there is nothing to carry.
func (d Decision) Arguments(method string, params json.RawMessage) *schemas.Content {
	if d.MaxBytes <= 0 || len(params) == 0 {
		return nil
	}
	var text string
	var cut bool
	switch method {
	case "tools/call", "prompts/get":
		args := member(params, "arguments")
		if len(args) == 0 {
			return nil
		}
		text, cut = Mask(args, d.MaxBytes, "")
	default:
		text, cut = Mask(params, d.MaxBytes, "_meta")
		if text == "{}" {
			text = "" // only _meta
		}
	}
	if text == "" {
		return nil
	}
	return &schemas.Content{Arguments: text, Truncated: cut, Captured: d.Captured}
}

// WithResult returns c (which may be nil) with the response's result (without _meta), or its
// error, added.
func (d Decision) WithResult(c *schemas.Content, result json.RawMessage, rpcErr *jsonrpc.Error) *schemas.Content {
	if d.MaxBytes <= 0 {
		return c
	}
	raw := result
	if len(raw) == 0 && rpcErr != nil {
		var err error
		if raw, err = json.Marshal(rpcErr); err != nil {
			panic("BUG: cannot encode a JSON-RPC error: " + err.Error())
		}
	}
	text, cut := Mask(raw, d.MaxBytes, "_meta")
	if text == "" || text == "{}" {
		return c
	}
	out := &schemas.Content{Captured: d.Captured}
	if c != nil {
		*out = *c // the call's content is shared; never change it in place
	}
	out.Result = text
	out.Truncated = out.Truncated || cut
	return out
}

// Reapply holds content built elsewhere (a wrap, another collector posting to ingest) to this
// decision, since the sender's own policy is not the operator's: captured only where this
// policy opts in, secrets masked again, each part cut to MaxBytes. It returns nil when the
// decision carries no content. c is not changed.
func (d Decision) Reapply(c *schemas.Content) *schemas.Content {
	if c == nil || d.MaxBytes <= 0 {
		return nil
	}
	out := &schemas.Content{Captured: d.Captured, Truncated: c.Truncated}
	var cut bool
	out.Arguments, cut = remask(c.Arguments, d.MaxBytes)
	out.Truncated = out.Truncated || cut
	out.Result, cut = remask(c.Result, d.MaxBytes)
	out.Truncated = out.Truncated || cut
	if out.Arguments == "" && out.Result == "" {
		return nil
	}
	return out
}

// remask masks text, JSON as Mask does (by key and by pattern) or, when it is not JSON (a
// sender cut it), by pattern alone, and cuts it to max bytes.
func remask(text string, max int) (string, bool) {
	if text == "" {
		return "", false
	}
	if json.Valid([]byte(text)) {
		return Mask([]byte(text), max, "")
	}
	masked := MaskString(text)
	return cutUTF8([]byte(masked), max), len(masked) > max
}
