package enricher

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/enricher/drift"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Anomaly kinds the enricher raises.
const (
	// KindSuspiciousContent: content inspection flagged an event's content at severity high or
	// above. One anomaly per (agent, server, flag type, hour), its Count growing.
	KindSuspiciousContent = "suspicious_content"
	// KindToolDrift: a server's tool, prompt or resource definition was added, removed or
	// changed after its first list result (see docs/drift.md).
	KindToolDrift = "tool_drift"
	// KindToolShadowing: two servers an agent uses offer a tool of the same name.
	KindToolShadowing = "tool_shadowing"
)

// ModelContentInspection is the Explanation.Model of suspicious_content anomalies.
const ModelContentInspection = "content_inspection"

// AnomalyID is deterministic for a finding: the same agent, kind and parts (server, subject,
// definition version, time bucket, …) always give the same id, so a batch redelivered after a
// crash upserts the same anomaly and alerting's delivery id stays stable. It is shaped like a
// UUID (version 8, custom).
func AnomalyID(agent, kind string, parts ...string) string {
	return schemas.StableAnomalyID(agent, kind, parts...)
}

// ScoreForSeverity is the score the enricher gives an anomaly of severity s: the middle of
// the band schemas.SeverityForScore maps back to s.
func ScoreForSeverity(s schemas.Severity) float64 {
	switch s {
	case schemas.SeverityCritical:
		return 95
	case schemas.SeverityHigh:
		return 80
	case schemas.SeverityMedium:
		return 55
	case schemas.SeverityLow:
		return 30
	}
	return 10
}

// maxEvidence bounds EvidenceEventIDs of an anomaly that grows (newest kept).
const maxEvidence = 10

// suspiciousContent turns content flags of severity high or above into suspicious_content
// anomalies: one per (agent, server, flag type) per hour of ObservedAt, so a stream of flagged
// calls is one growing anomaly an analyst can read, not a flood. It keeps the current and the
// previous hour's anomalies; older ones are forgotten (a late event then starts a new version
// with the same id, which the store's upsert resolves to the one with the highest Count).
type suspiciousContent struct {
	now func() time.Time

	mu     sync.Mutex
	open   map[suspicionKey]*schemas.Anomaly
	newest time.Time // the latest hour seen
}

type suspicionKey struct {
	agent, server, flag string
	hour                int64 // Unix seconds of the hour's start
}

func newSuspiciousContent(now func() time.Time) *suspiciousContent {
	return &suspiciousContent{now: now, open: make(map[suspicionKey]*schemas.Anomaly)}
}

// observe appends to out the suspicious_content anomalies ev raises: one per flag type with
// a flag of severity high or above, each counting the event once.
func (s *suspiciousContent) observe(ev *schemas.Event, out []schemas.Anomaly) []schemas.Anomaly {
	first := -1
	for i := range ev.Flags {
		if ev.Flags[i].Severity.Rank() >= schemas.SeverityHigh.Rank() {
			first = i
			break
		}
	}
	if first < 0 {
		return out
	}
	at := ev.ObservedAt.UTC()
	if at.IsZero() {
		at = s.now().UTC()
	}
	hour := at.Truncate(time.Hour)

	s.mu.Lock()
	defer s.mu.Unlock()
	if hour.After(s.newest) {
		s.newest = hour
		s.expire()
	}
	for i := first; i < len(ev.Flags); i++ {
		f := ev.Flags[i]
		if f.Severity.Rank() < schemas.SeverityHigh.Rank() || seenType(ev.Flags[first:i], f.Type) {
			continue
		}
		sev, paths := worstOfType(ev.Flags[i:], f.Type)
		key := suspicionKey{agent: ev.AgentID, server: ev.ServerID, flag: f.Type, hour: hour.Unix()}
		a := s.open[key]
		if a == nil {
			a = &schemas.Anomaly{
				ID:            AnomalyID(ev.AgentID, KindSuspiciousContent, ev.ServerID, f.Type, hour.Format(time.RFC3339)),
				SchemaVersion: schemas.AnomalySchemaVersion,
				AgentID:       ev.AgentID,
				ServerID:      ev.ServerID,
				Kind:          KindSuspiciousContent,
				Subject:       f.Type,
				FirstSeen:     at,
				LastSeen:      at,
			}
			s.open[key] = a
		}
		a.Count++
		a.Time = s.now().UTC()
		a.SessionID = ev.SessionID
		if at.Before(a.FirstSeen) {
			a.FirstSeen = at
		}
		if at.After(a.LastSeen) {
			a.LastSeen = at
		}
		if sev.Rank() > a.Severity.Rank() {
			a.Severity = sev
		}
		a.Score = ScoreForSeverity(a.Severity)
		if ev.ID != "" && !slices.Contains(a.EvidenceEventIDs, ev.ID) {
			a.EvidenceEventIDs = append(a.EvidenceEventIDs, ev.ID)
			if n := len(a.EvidenceEventIDs); n > maxEvidence {
				a.EvidenceEventIDs = slices.Delete(a.EvidenceEventIDs, 0, n-maxEvidence)
			}
		}
		target := ev.Method
		if ev.Target != "" {
			target += " " + ev.Target
		}
		a.Title = fmt.Sprintf("Suspicious content (%s) in agent %s's traffic with server %s", f.Type, ev.AgentID, ev.ServerID)
		a.Explanation = schemas.Explanation{
			Summary: fmt.Sprintf("Content inspection flagged %s at severity %s in %d operation(s) of agent %s with server %s between %s and %s; the latest was %s at %s.",
				f.Type, a.Severity, a.Count, ev.AgentID, ev.ServerID, hour.Format(time.RFC3339), hour.Add(time.Hour).Format(time.RFC3339), target, strings.Join(paths, ", ")),
			Observed: fmt.Sprintf("%d flagged operation(s) this hour", a.Count),
			Typical:  "no content flagged high or critical",
			Model:    ModelContentInspection,
		}
		v := *a
		v.EvidenceEventIDs = slices.Clone(a.EvidenceEventIDs)
		out = append(out, v)
	}
	return out
}

// expire forgets anomalies of hours before the previous one. Call with mu held.
func (s *suspiciousContent) expire() {
	oldest := s.newest.Add(-time.Hour).Unix()
	for k := range s.open {
		if k.hour < oldest {
			delete(s.open, k)
		}
	}
}

func seenType(flags []schemas.Flag, typ string) bool {
	for _, f := range flags {
		if f.Type == typ && f.Severity.Rank() >= schemas.SeverityHigh.Rank() {
			return true
		}
	}
	return false
}

// worstOfType returns the highest severity of flags of type typ (high or above) and their
// distinct paths, sorted (at most 5).
func worstOfType(flags []schemas.Flag, typ string) (schemas.Severity, []string) {
	var sev schemas.Severity
	var paths []string
	for _, f := range flags {
		if f.Type != typ || f.Severity.Rank() < schemas.SeverityHigh.Rank() {
			continue
		}
		if f.Severity.Rank() > sev.Rank() {
			sev = f.Severity
		}
		p := f.Path
		if p == "" {
			p = "(no path)"
		}
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if len(paths) > 5 {
		paths = append(paths[:5], fmt.Sprintf("… %d more", len(paths)-5))
	}
	return sev, paths
}

// ModelDefinitionDrift is the Explanation.Model of tool_drift and tool_shadowing anomalies.
const ModelDefinitionDrift = "definition_drift"

// listChanged names the notification that announces changes of a definition kind.
var listChanged = map[string]string{
	drift.KindTool:             "notifications/tools/list_changed",
	drift.KindPrompt:           "notifications/prompts/list_changed",
	drift.KindResource:         "notifications/resources/list_changed",
	drift.KindResourceTemplate: "notifications/resources/list_changed",
}

// driftAnomaly turns a drift finding into its anomaly. The id covers the definition version
// (fingerprint and when it was first seen), so the same change redelivered is the same
// anomaly, and a later change of the same tool is a new one.
func driftAnomaly(f drift.Finding, now time.Time) schemas.Anomaly {
	kindName := strings.ReplaceAll(f.DefKind, "_", " ")
	a := schemas.Anomaly{
		SchemaVersion:    schemas.AnomalySchemaVersion,
		Time:             now.UTC(),
		AgentID:          f.AgentID,
		SessionID:        f.SessionID,
		ServerID:         f.ServerID,
		Subject:          f.Name,
		Severity:         f.Severity,
		Score:            ScoreForSeverity(f.Severity),
		EvidenceEventIDs: []string{f.EventID},
		FirstSeen:        f.At,
		LastSeen:         f.At,
		Count:            1,
	}
	if f.EventID == "" {
		a.EvidenceEventIDs = nil
	}
	if f.Shadowing {
		a.Kind = KindToolShadowing
		a.ID = AnomalyID(f.AgentID, KindToolShadowing, f.Name, strings.Join(f.Servers, ","))
		a.Title = fmt.Sprintf("Tool %q is offered to agent %s by %d servers: %s", f.Name, f.AgentID, len(f.Servers), strings.Join(f.Servers, ", "))
		a.Explanation = schemas.Explanation{
			Summary: fmt.Sprintf("Agent %s uses servers %s, which all offer a tool named %q: a call to it may reach a server the agent did not intend (tool shadowing). Server %s listed it last.",
				f.AgentID, strings.Join(f.Servers, ", "), f.Name, f.ServerID),
			Observed: fmt.Sprintf("%q on %s", f.Name, strings.Join(f.Servers, ", ")),
			Typical:  "each tool name offered by one server",
			Model:    ModelDefinitionDrift,
		}
		return a
	}
	a.Kind = KindToolDrift
	version := f.NewFingerprint
	if f.Change == drift.Removed {
		version = f.OldFingerprint
	}
	a.ID = AnomalyID(f.AgentID, KindToolDrift, f.ServerID, f.DefKind, f.Name, string(f.Change), version, f.At.Format(time.RFC3339Nano))

	announced := "without announcing it (no " + listChanged[f.DefKind] + " since its last complete list)"
	if f.Announced {
		announced = "after announcing it with " + listChanged[f.DefKind]
	}
	var observed []string
	switch f.Change {
	case drift.Changed:
		a.Title = fmt.Sprintf("Server %s changed %s %q", f.ServerID, kindName, f.Name)
		observed = f.Diff
		a.Explanation.Typical = fmt.Sprintf("the version first seen %s (fingerprint %s)", f.OldFirstSeen.Format(time.RFC3339), short(f.OldFingerprint))
	case drift.Added:
		a.Title = fmt.Sprintf("Server %s added %s %q", f.ServerID, kindName, f.Name)
		observed = []string{fmt.Sprintf("new %s %q (fingerprint %s)", kindName, f.Name, short(f.NewFingerprint))}
		a.Explanation.Typical = fmt.Sprintf("no %s %q in the server's earlier complete list", kindName, f.Name)
	case drift.Removed:
		a.Title = fmt.Sprintf("Server %s removed %s %q", f.ServerID, kindName, f.Name)
		observed = []string{fmt.Sprintf("%s %q missing from a complete list", kindName, f.Name)}
		a.Explanation.Typical = fmt.Sprintf("the version first seen %s (fingerprint %s)", f.OldFirstSeen.Format(time.RFC3339), short(f.OldFingerprint))
	}
	if len(f.Flags) > 0 {
		a.Title += " with suspicious text"
		var fl []string
		for _, fg := range f.Flags {
			fl = append(fl, fmt.Sprintf("%s at %s (%s)", fg.Type, fg.Path, fg.Severity))
		}
		observed = append(observed, "content inspection: "+strings.Join(fl, ", "))
	}
	a.Explanation.Observed = strings.Join(observed, "; ")
	a.Explanation.Summary = fmt.Sprintf("Server %s %s %s %q %s, seen in agent %s's list result: %s.",
		f.ServerID, f.Change, kindName, f.Name, announced, f.AgentID, a.Explanation.Observed)
	a.Explanation.Model = ModelDefinitionDrift
	return a
}

// short is a fingerprint's first 12 hex digits.
func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
