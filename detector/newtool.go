package detector

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Model and anomaly kind names.
const (
	ModelFirstSeenTool = "first_seen_tool"
	KindNewTool        = "new_tool"
)

// agentTools is one agent's first_seen_tool baseline: the tools it has called, sorted. An
// agent calls a few tools: a binary search over them costs less than a map's hash, and the
// slice takes a third of a small map's memory.
type agentTools struct {
	Tools []string
}

// snapshot is agentTools' stored form: sorted names, so snapshots are deterministic.
type toolsSnapshot struct {
	Tools []string `json:"tools"`
}

func (a *agentTools) MarshalJSON() ([]byte, error) {
	names := a.Tools
	if names == nil {
		names = []string{}
	}
	return json.Marshal(toolsSnapshot{Tools: names})
}

func (a *agentTools) UnmarshalJSON(b []byte) error {
	var s toolsSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	slices.Sort(s.Tools)
	a.Tools = slices.Clip(slices.Compact(s.Tools))
	return nil
}

// add records tool and reports whether it was new.
func (a *agentTools) add(tool string) bool {
	i, known := slices.BinarySearch(a.Tools, tool)
	if !known {
		a.Tools = slices.Insert(a.Tools, i, tool)
	}
	return !known
}

// observeTool records a tools/call and returns an anomaly when the agent never called the tool
// before. ok is false when the event is not a tool call or the tool is known.
func observeTool(a *agentTools, ev *schemas.Event, score float64, now time.Time) (schemas.Anomaly, bool) {
	if ev.Method != "tools/call" || ev.Target == "" || ev.Kind != schemas.KindRequest || ev.Direction != schemas.ClientToServer {
		return schemas.Anomaly{}, false
	}
	known := len(a.Tools)
	if !a.add(ev.Target) {
		return schemas.Anomaly{}, false
	}
	typical := "no tool calls seen before"
	if known > 0 {
		typical = fmt.Sprintf("%d known tools: %s", known, sampleTools(a.Tools, ev.Target, 5))
	}
	return schemas.Anomaly{
		ID:            AnomalyID(ev.AgentID, KindNewTool, ev.ServerID+"/"+ev.Target),
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          now,
		AgentID:       ev.AgentID,
		SessionID:     ev.SessionID,
		ServerID:      ev.ServerID,
		Kind:          KindNewTool,
		Subject:       ev.Target,
		Score:         score,
		Severity:      schemas.SeverityForScore(score),
		Title:         fmt.Sprintf("Agent %s called tool %q for the first time", ev.AgentID, ev.Target),
		Explanation: schemas.Explanation{
			Summary:  fmt.Sprintf("Agent %s called %q on server %s, a tool it had never called before (it had called %d other tools).", ev.AgentID, ev.Target, ev.ServerID, known),
			Observed: "tools/call " + ev.Target,
			Typical:  typical,
			Model:    ModelFirstSeenTool,
		},
		EvidenceEventIDs: []string{ev.ID},
		FirstSeen:        ev.ObservedAt,
		LastSeen:         ev.ObservedAt,
		Count:            1,
	}, true
}

// sampleTools lists up to n known tools other than except, sorted, for explanations.
func sampleTools(tools []string, except string, n int) string {
	names := make([]string, 0, len(tools))
	for _, t := range tools {
		if t != except {
			names = append(names, t)
		}
	}
	if len(names) > n {
		return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
	}
	return strings.Join(names, ", ")
}

// AnomalyID is stable for an (agent, kind, subject), so a repeat — or a redelivery after a
// restart — updates the same anomaly instead of raising a new one. It is shaped like a UUID.
func AnomalyID(agent, kind, subject string) string {
	h := sha256.Sum256([]byte(agent + "\x00" + kind + "\x00" + subject))
	h[6] = (h[6] & 0x0f) | 0x80 // version 8: custom
	h[8] = (h[8] & 0x3f) | 0x80 // RFC 4122 variant
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
