package policy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// What the engine adds to events and anomalies.
const (
	// KindPolicyViolation anomalies: an agent did what a rule does not allow. One per (agent,
	// rule, server, tool, hour of event time); every repeat produces it again with a larger
	// count.
	KindPolicyViolation = "policy_violation"
	// KindUnknownAgent anomalies: an agent the inventory does not list; one per agent.
	KindUnknownAgent = "unknown_agent"
	// ModelPolicy and ModelInventory are the explanations' model names.
	ModelPolicy    = "policy"
	ModelInventory = "inventory"
	// FlagUnchecked marks an event whose arguments a rule constrains but that the enricher
	// could not check (cut at the inspection cap, not passed on, masked).
	FlagUnchecked = "policy_unchecked"
)

const (
	maxEvidence      = 10      // evidence event ids kept per anomaly, newest last
	maxReasons       = 5       // reasons quoted per explanation
	maxUnknownAgents = 100_000 // agents remembered as raised; then the set starts over
	maxOpen          = 100_000 // violations counted at once; then counting starts over
)

// Engine joins the inventory into events and checks them against the policy (see the package
// documentation). Apply is safe for concurrent use, and with Reload.
type Engine struct {
	log      *slog.Logger
	interval time.Duration

	pol        atomic.Pointer[Policy]
	inv        atomic.Pointer[inventory.Inventory]
	watched    []*watchedFile
	reloadMu   sync.Mutex // one reload at a time; guards watched's state
	loopMu     sync.Mutex
	stop, done chan struct{}

	mu         sync.Mutex // guards what follows
	unknown    map[string]struct{}
	open       map[violationKey]*openViolation
	latestHour int64 // the latest hour of event time a violation was counted in (Unix seconds)

	violations   *prometheus.CounterVec
	unknownTotal prometheus.Counter
	unchecked    prometheus.Counter
	reloads      *prometheus.CounterVec
	reloadErrors *prometheus.CounterVec
	reloadOK     *prometheus.GaugeVec
}

// watchedFile is a file the engine reloads when its content changes.
type watchedFile struct {
	kind, path string
	apply      func(data []byte) (summary []any, err error)
	sum        [sha256.Size]byte // of the content last applied (or found invalid)
	readErr    string            // the last read error reported, so a missing file is logged once
}

// violationKey is what a policy_violation anomaly is per; its id is derived from it.
type violationKey struct {
	agent, rule, server, tool string
	hour                      int64 // Unix seconds of the hour's start (event time)
}

type openViolation struct {
	a       schemas.Anomaly
	reasons []string // of the latest explanation
}

// NewEngine loads the configured files; an invalid file is an error. With neither file
// configured the engine adds nothing to events.
func NewEngine(files Files, set pipeline.Settings) (*Engine, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Registry == nil {
		set.Registry = prometheus.NewRegistry()
	}
	g := &Engine{
		log:      set.Logger,
		interval: files.ReloadInterval,
		unknown:  map[string]struct{}{},
		open:     map[violationKey]*openViolation{},
		violations: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_policy_violations_total", Help: "Events that violated a policy rule, by rule.",
		}, []string{"rule"})),
		unknownTotal: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_unknown_agents_total", Help: "Agents not in the inventory raised as unknown_agent.",
		})),
		unchecked: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_policy_unchecked_total", Help: "Argument constraints that could not be checked (arguments truncated, absent or masked).",
		})),
		reloads: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_policy_reloads_total", Help: "Successful reloads of the policy or inventory file, by file.",
		}, []string{"file"})),
		reloadErrors: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_policy_reload_errors_total", Help: "Reloads of the policy or inventory file that failed (the last good version stays), by file.",
		}, []string{"file"})),
		reloadOK: pipeline.Register(set.Registry, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcpwatch_enricher_policy_last_reload_success", Help: "1 when the last load of the policy or inventory file succeeded, 0 when it failed, by file.",
		}, []string{"file"})),
	}
	if files.PolicyFile != "" {
		g.watched = append(g.watched, &watchedFile{kind: "policy", path: files.PolicyFile, apply: func(data []byte) ([]any, error) {
			p, err := Parse(data, files.PolicyFile)
			if err != nil {
				return nil, err
			}
			g.pol.Store(p)
			return []any{"rules", len(p.rules), "tool_tags", len(p.toolTags)}, nil
		}})
	}
	if files.InventoryFile != "" {
		g.watched = append(g.watched, &watchedFile{kind: "inventory", path: files.InventoryFile, apply: func(data []byte) ([]any, error) {
			inv, err := inventory.Parse(data, files.InventoryFile)
			if err != nil {
				return nil, err
			}
			g.inv.Store(inv)
			agents, servers := inv.Size()
			return []any{"agents", agents, "servers", servers}, nil
		}})
	}
	for _, w := range g.watched {
		data, err := os.ReadFile(w.path)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s file: %w", w.kind, err)
		}
		w.sum = sha256.Sum256(data)
		summary, err := w.apply(data)
		if err != nil {
			return nil, err
		}
		g.reloadOK.WithLabelValues(w.kind).Set(1)
		g.log.Info("loaded "+w.kind, append([]any{"path", w.path}, summary...)...)
	}
	return g, nil
}

// Start checks the files for changes every ReloadInterval until Stop.
func (g *Engine) Start() {
	g.loopMu.Lock()
	defer g.loopMu.Unlock()
	if g.stop != nil || len(g.watched) == 0 {
		return
	}
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	go g.watch(g.stop, g.done)
}

// Stop ends the checks Start began; safe to call twice and without Start.
func (g *Engine) Stop() {
	g.loopMu.Lock()
	defer g.loopMu.Unlock()
	if g.stop == nil {
		return
	}
	close(g.stop)
	<-g.done
	g.stop, g.done = nil, nil
}

func (g *Engine) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = g.reload(false) // reload logs and counts its errors
		}
	}
}

// Reload reads both files now, whether or not they changed (SIGHUP calls it). A file that
// cannot be read or is invalid is logged and counted, and its last good version stays in use;
// the error says what is wrong.
func (g *Engine) Reload() error { return g.reload(true) }

// ReloadIfChanged reloads the files whose content changed since they were last loaded, as
// the periodic check does.
func (g *Engine) ReloadIfChanged() error { return g.reload(false) }

func (g *Engine) reload(force bool) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	var errs []error
	for _, w := range g.watched {
		if err := g.reloadFile(w, force); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *Engine) reloadFile(w *watchedFile, force bool) error {
	log := g.log.With("file", w.kind, "path", w.path)
	data, err := os.ReadFile(w.path)
	if err != nil {
		err = fmt.Errorf("cannot read %s file: %w", w.kind, err)
		if force || err.Error() != w.readErr {
			w.readErr = err.Error()
			g.failed(log, w, err)
		}
		return err
	}
	w.readErr = ""
	sum := sha256.Sum256(data)
	if !force && sum == w.sum {
		return nil
	}
	w.sum = sum // an invalid version is reported once, not at every check
	summary, err := w.apply(data)
	if err != nil {
		g.failed(log, w, err)
		return err
	}
	g.reloads.WithLabelValues(w.kind).Inc()
	g.reloadOK.WithLabelValues(w.kind).Set(1)
	log.Info("reloaded "+w.kind, summary...)
	return nil
}

// failed reports a reload that keeps the last good version. The error names lines and fields
// (values cut short), never the file's content.
func (g *Engine) failed(log *slog.Logger, w *watchedFile, err error) {
	g.reloadErrors.WithLabelValues(w.kind).Inc()
	g.reloadOK.WithLabelValues(w.kind).Set(0)
	log.Error("cannot reload "+w.kind+"; keeping the last good version", "err", err)
}

// Apply joins the inventory into ev's labels, marks argument constraints it could not check
// with a flag, and appends to out the anomalies ev raises: unknown_agent the first time an
// agent the inventory does not list is seen, policy_violation for what the rules do not
// allow. now stamps the anomalies' Time. Call it before the event's content is dropped.
func (g *Engine) Apply(ev *schemas.Event, now time.Time, out []schemas.Anomaly) []schemas.Anomaly {
	inv, pol := g.inv.Load(), g.pol.Load()
	if inv == nil && pol == nil {
		return out
	}
	c := Call{Event: ev}
	if inv != nil {
		c.Agent = inv.Agent(ev.AgentID)
		if ev.ServerID != "" {
			c.Server = inv.Server(ev.ServerID)
		}
	}
	if pol != nil && ev.Method == "tools/call" && ev.Target != "" {
		c.ToolTags = pol.ToolTags(ev.ServerID, ev.Target)
	}
	var agentTags, serverTags []string
	if c.Agent != nil {
		agentTags = c.Agent.Tags
	}
	if c.Server != nil {
		serverTags = c.Server.Tags
	}
	serverScope := unionTags(agentTags, serverTags, nil)
	all := unionTags(serverScope, c.ToolTags, nil)
	setLabels(ev, inv != nil, &c, all)

	if inv != nil && c.Agent == nil {
		out = g.unknownAgent(ev, inv, all, now, out)
	}
	if pol == nil {
		return out
	}
	res := pol.Evaluate(&c)
	for _, v := range res.Violations {
		tags := all
		if v.Tool == "" {
			tags = serverScope
		}
		out = g.violation(ev, v, tags, now, out)
	}
	for _, u := range res.Unchecked {
		g.unchecked.Inc()
		path := "params.arguments"
		if u.Path != "" {
			path += "." + u.Path
		}
		ev.Flags = append(ev.Flags, schemas.Flag{
			Type: FlagUnchecked, Severity: schemas.SeverityInfo, Path: path,
			Evidence: fmt.Sprintf("rule %s: %s; the constraint was not checked", u.Rule.Name, u.Why),
		})
	}
	return out
}

// setLabels sets the inventory's labels and the tags label. Those labels are the enricher's
// alone: what the event carried under them is dropped, so a client cannot choose its peer
// group.
func setLabels(ev *schemas.Event, inventoried bool, c *Call, tags []string) {
	for k := range ev.Labels {
		if k == inventory.LabelTags || inventoried && (strings.HasPrefix(k, "agent.") || strings.HasPrefix(k, "server.")) {
			delete(ev.Labels, k)
		}
	}
	n := 0
	if c.Agent != nil {
		n += len(c.Agent.Labels)
	}
	if c.Server != nil {
		n += len(c.Server.Labels)
	}
	if len(tags) > 0 {
		n++
	}
	if n == 0 {
		return
	}
	if ev.Labels == nil {
		ev.Labels = make(map[string]string, n)
	}
	if c.Agent != nil {
		for _, l := range c.Agent.Labels {
			ev.Labels[l[0]] = l[1]
		}
	}
	if c.Server != nil {
		for _, l := range c.Server.Labels {
			ev.Labels[l[0]] = l[1]
		}
	}
	if len(tags) > 0 {
		ev.Labels[inventory.LabelTags] = strings.Join(tags, ",")
	}
}

// unionTags merges sorted tag lists; it returns one of them, unchanged, when the others are
// empty (the result must not be modified).
func unionTags(a, b, c []string) []string {
	switch {
	case len(b) == 0 && len(c) == 0:
		return a
	case len(a) == 0 && len(c) == 0:
		return b
	case len(a) == 0 && len(b) == 0:
		return c
	}
	out := make([]string, 0, len(a)+len(b)+len(c))
	out = append(append(append(out, a...), b...), c...)
	slices.Sort(out)
	return slices.Compact(out)
}

func (g *Engine) unknownAgent(ev *schemas.Event, inv *inventory.Inventory, tags []string, now time.Time, out []schemas.Anomaly) []schemas.Anomaly {
	g.mu.Lock()
	_, seen := g.unknown[ev.AgentID]
	if !seen {
		if len(g.unknown) >= maxUnknownAgents {
			clear(g.unknown) // the ids are deterministic: raising one again updates the same anomaly
		}
		g.unknown[ev.AgentID] = struct{}{}
	}
	g.mu.Unlock()
	if seen {
		return out
	}
	g.unknownTotal.Inc()
	sev := inv.UnknownAgentSeverity()
	agents, _ := inv.Size()
	via := ev.AgentSource
	if ev.ClientName != "" {
		via += ", client " + ev.ClientName
	}
	did := "was seen"
	if ev.ServerID != "" {
		did = "used server " + ev.ServerID
	}
	at := eventTime(ev, now)
	return append(out, schemas.Anomaly{
		ID:            AnomalyID(ev.AgentID, KindUnknownAgent),
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          now,
		AgentID:       ev.AgentID,
		SessionID:     ev.SessionID,
		ServerID:      ev.ServerID,
		Kind:          KindUnknownAgent,
		Score:         severityScore(sev),
		Severity:      sev,
		Title:         fmt.Sprintf("Agent %s is not in the inventory", ev.AgentID),
		Explanation: schemas.Explanation{
			Summary:  fmt.Sprintf("Agent %s (attributed by %s) %s, and no inventory entry matches it: it has no owner, team or peer group on record.", ev.AgentID, via, did),
			Observed: "agent " + ev.AgentID,
			Typical:  fmt.Sprintf("agents listed in the inventory (%d entries)", agents),
			Model:    ModelInventory,
		},
		EvidenceEventIDs: evidence(nil, ev.ID),
		FirstSeen:        at,
		LastSeen:         at,
		Count:            1,
		Tags:             slices.Clone(tags),
	})
}

func (g *Engine) violation(ev *schemas.Event, v Violation, tags []string, now time.Time, out []schemas.Anomaly) []schemas.Anomaly {
	g.violations.WithLabelValues(v.Rule.Name).Inc()
	at := eventTime(ev, now)
	hour := at.UTC().Truncate(time.Hour)
	key := violationKey{agent: ev.AgentID, rule: v.Rule.Name, server: ev.ServerID, tool: v.Tool, hour: hour.Unix()}

	g.mu.Lock()
	defer g.mu.Unlock()
	if key.hour > g.latestHour {
		g.latestHour = key.hour
		for k := range g.open { // keep the current and the previous hour, for late events
			if k.hour < key.hour-3600 {
				delete(g.open, k)
			}
		}
	}
	if o := g.open[key]; o != nil {
		o.a.Count++
		o.a.Time = now
		if at.After(o.a.LastSeen) {
			o.a.LastSeen = at
		}
		if at.Before(o.a.FirstSeen) {
			o.a.FirstSeen = at
		}
		o.a.EvidenceEventIDs = evidence(o.a.EvidenceEventIDs, ev.ID)
		if !slices.Equal(o.reasons, v.Reasons) { // explain the latest reasons
			o.a.Explanation, o.reasons = explain(ev, v), v.Reasons
		}
		o.a.SessionID = ev.SessionID
		c := o.a
		c.EvidenceEventIDs = slices.Clone(o.a.EvidenceEventIDs)
		return append(out, c)
	}
	subject := v.Rule.Name
	title := fmt.Sprintf("Policy %s: agent %s used server %s", v.Rule.Name, ev.AgentID, ev.ServerID)
	if v.Tool != "" {
		subject += "/" + v.Tool
		title = fmt.Sprintf("Policy %s: agent %s called %s on %s", v.Rule.Name, ev.AgentID, v.Tool, ev.ServerID)
	}
	a := schemas.Anomaly{
		ID:               AnomalyID(ev.AgentID, KindPolicyViolation, v.Rule.Name, ev.ServerID, v.Tool, hour.Format(time.RFC3339)),
		SchemaVersion:    schemas.AnomalySchemaVersion,
		Time:             now,
		AgentID:          ev.AgentID,
		SessionID:        ev.SessionID,
		ServerID:         ev.ServerID,
		Kind:             KindPolicyViolation,
		Subject:          subject,
		Score:            severityScore(v.Rule.Severity),
		Severity:         v.Rule.Severity,
		Title:            title,
		Explanation:      explain(ev, v),
		EvidenceEventIDs: evidence(nil, ev.ID),
		FirstSeen:        at,
		LastSeen:         at,
		Count:            1,
		Tags:             slices.Clone(tags),
	}
	if len(g.open) >= maxOpen {
		clear(g.open)
	}
	g.open[key] = &openViolation{a: a, reasons: v.Reasons}
	a.EvidenceEventIDs = slices.Clone(a.EvidenceEventIDs)
	return append(out, a)
}

func explain(ev *schemas.Event, v Violation) schemas.Explanation {
	r := v.Rule
	did := fmt.Sprintf("sent %s to server %s", orUnknown(ev.Method), ev.ServerID)
	observed := fmt.Sprintf("%s on %s", orUnknown(ev.Method), ev.ServerID)
	if v.Tool != "" {
		did = fmt.Sprintf("called tool %s on server %s", v.Tool, ev.ServerID)
		observed = fmt.Sprintf("%s %s on %s", ev.Method, v.Tool, ev.ServerID)
	}
	reasons := v.Reasons
	more := ""
	if len(reasons) > maxReasons {
		more = fmt.Sprintf("; and %d more", len(reasons)-maxReasons)
		reasons = reasons[:maxReasons]
	}
	rule := fmt.Sprintf("rule %q", r.Name)
	if r.Description != "" {
		rule += " (" + r.Description + ")"
	}
	return schemas.Explanation{
		Summary:  fmt.Sprintf("Agent %s %s, which %s does not allow: %s%s. Nothing was blocked.", ev.AgentID, did, rule, strings.Join(reasons, "; "), more),
		Observed: observed,
		Typical:  fmt.Sprintf("rule %s allows %s", r.Name, r.Allows()),
		Model:    ModelPolicy,
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "a message"
	}
	return s
}

// eventTime is when the event was observed, or now for an event without a time.
func eventTime(ev *schemas.Event, now time.Time) time.Time {
	if ev.ObservedAt.IsZero() {
		return now
	}
	return ev.ObservedAt
}

func evidence(ids []string, id string) []string {
	if id == "" {
		return ids
	}
	ids = append(ids, id)
	if n := len(ids); n > maxEvidence {
		ids = append(ids[:0], ids[n-maxEvidence:]...)
	}
	return ids
}

// severityScore places a severity in the middle of its score band.
func severityScore(s schemas.Severity) float64 {
	switch s {
	case schemas.SeverityInfo:
		return 10
	case schemas.SeverityLow:
		return 30
	case schemas.SeverityMedium:
		return 55
	case schemas.SeverityHigh:
		return 80
	}
	return 95
}

// AnomalyID is deterministic for a finding: the same agent, kind and parts always give the
// same id, so a repeat, or a batch redelivered after a crash, upserts the same anomaly. It is
// built as enricher.AnomalyID is (a UUID-shaped SHA-256 prefix, version 8).
func AnomalyID(agent, kind string, parts ...string) string {
	return schemas.StableAnomalyID(agent, kind, parts...)
}
