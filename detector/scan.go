package detector

import (
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"gonum.org/v1/gonum/mathext"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// ModelSessionShape names the scan model in explanations.
const ModelSessionShape = "session_shape"

// ScanConfig configures the scan model: enumeration calls (tools/list, resources/list,
// resources/templates/list, prompts/list) and failed calls to tools the agent never called
// before (probing), counted per session against the agent's usual number per session.
type ScanConfig struct {
	// Disabled turns the model off. It also needs the sequence model, which keeps the sessions.
	Disabled bool `yaml:"disabled"`
	// MinCalls is how many enumeration and probe calls a session must make before it can be a
	// scan (default 10); it is scored again each time the number doubles.
	MinCalls int `yaml:"min_calls"`
	// MinScore is the score (0–100) from which a session becomes a scan anomaly (default 60).
	MinScore float64 `yaml:"min_score"`
}

// maxScanMemory bounds the sessions the agent's per-session average remembers (an EWMA after).
const maxScanMemory = 100

// scanPrior is the enumeration and probe calls per session assumed for a new agent, worth one
// session: a client lists tools, resources and prompts once when it connects.
const scanPrior = 1.0

func (c *ScanConfig) setDefaults() {
	if c.MinCalls == 0 {
		c.MinCalls = 10
	}
	if c.MinScore == 0 {
		c.MinScore = 60
	}
}

func isEnumeration(method string) bool {
	switch method {
	case "tools/list", "resources/list", "resources/templates/list", "prompts/list":
		return true
	}
	return false
}

// scanExpected is the agent's usual enumeration and probe calls per session, smoothed toward
// scanPrior.
func (st *agentState) scanExpected() float64 {
	n := float64(st.scanSessions)
	return max((float64(st.scanMean)*n+scanPrior)/(n+1), 0.1)
}

// scanProbability is P(X ≥ k) for X ~ Poisson(lambda).
func scanProbability(k int, lambda float64) float64 {
	return mathext.GammaIncReg(float64(k), lambda)
}

// observeScan counts an enumeration or probe call into the agent's session and raises a scan
// when the count reaches MinCalls (and each doubling after) and is unlikely for the agent.
// newCall reports that the sequence model never saw the call in a learnt session.
func (d *Detector) observeScan(out []schemas.Anomaly, st *agentState, ls *liveSession, ev *schemas.Event, id uuid.UUID, newCall bool, t int64, now time.Time) []schemas.Anomaly {
	switch {
	case isEnumeration(ev.Method):
		ls.enum++
	case ev.Method == "tools/call" && ev.Status != schemas.StatusOK && ev.Status != schemas.StatusToolError && newCall:
		ls.probes++
	default:
		return out
	}
	if !isDoubling(int(ls.enum+ls.probes), d.cfg.Scan.MinCalls) {
		return out
	}
	return d.raiseScan(out, st, ls, ev.ServerID, id, t, now, false)
}

// raiseScan scores the session's count so far; final marks its tally at the session's end.
func (d *Detector) raiseScan(out []schemas.Anomaly, st *agentState, ls *liveSession, server string, id uuid.UUID, t int64, now time.Time, final bool) []schemas.Anomaly {
	k := int(ls.enum + ls.probes)
	lambda := st.scanExpected()
	p := scanProbability(k, lambda)
	score := 100.0
	if p > 0 {
		score = min(100, -10*math.Log10(p))
	}
	if score < d.cfg.Scan.MinScore {
		return out
	}
	observed := fmt.Sprintf("%d enumeration calls and %d probes of unknown tools", ls.enum, ls.probes)
	typical := fmt.Sprintf("%.1f per session", lambda)
	return d.raiseOrUpdate(out, schemas.Anomaly{
		AgentID:   st.name,
		SessionID: ls.id,
		ServerID:  server,
		Kind:      KindScan,
		Subject:   ls.id,
		Score:     score,
		Title:     fmt.Sprintf("Agent %s is scanning: %s in one session", st.name, observed),
		Explanation: schemas.Explanation{
			Summary:     fmt.Sprintf("%s in one session; typical %s over %d sessions (probability %.2g).", observed, typical, st.scanSessions, p),
			Observed:    observed,
			Typical:     typical,
			Model:       ModelSessionShape,
			Probability: p,
		},
		FirstSeen: time.Unix(0, t).UTC(),
		Learning:  d.learning(st, t),
	}, evidence(id), now, d.cfg.MergeWindow, final)
}

// isDoubling reports whether k is lo·2^i.
func isDoubling(k, lo int) bool {
	for m := lo; m <= k; m *= 2 {
		if m == k {
			return true
		}
	}
	return false
}

// learnScan adds an ended session's count to the agent's average.
func (st *agentState) learnScan(ls *liveSession) {
	k := float32(ls.enum) + float32(ls.probes)
	if st.scanSessions < maxScanMemory {
		st.scanSessions++
	}
	st.scanMean += (k - st.scanMean) / float32(st.scanSessions)
}
