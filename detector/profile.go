package detector

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Profile is an agent's learnt baseline as people read it, decoded from the detector's
// snapshots in the store: its request rate band by hour of the week, the tools it calls and
// the transitions between its calls, and the quantiles of its message sizes. It is the body of
// the API's GET /api/v1/agents/{id}/profile. Sections whose baseline is missing (a model
// disabled, or nothing learnt yet) are omitted.
type Profile struct {
	AgentID string `json:"agent_id"`
	// UpdatedAt is when the newest of the agent's snapshots was saved.
	UpdatedAt time.Time `json:"updated_at"`
	// Learning reports that the agent is still warming up (detector.warm_up): its statistical
	// anomalies are marked learning and not alerted.
	Learning bool `json:"learning"`
	// FirstSeen is the event time of the agent's first request and Requests how many it has
	// sent, as the detector counts them for the warm-up.
	FirstSeen *time.Time   `json:"first_seen,omitempty"`
	Requests  int64        `json:"requests,omitempty"`
	Rate      *RateProfile `json:"rate,omitempty"`
	// TopTools are the tools the agent calls most (tools/call), most calls first.
	TopTools []ToolUse `json:"top_tools,omitempty"`
	// TopTransitions are the agent's most frequent transitions from one call to the next,
	// "(start)" and "(end)" standing for a session's start and end.
	TopTransitions []Transition `json:"top_transitions,omitempty"`
	// Sizes are the quantiles of the agent's request and response sizes over all its calls.
	Sizes *SizeProfile `json:"sizes,omitempty"`
	// KnownTools are every tool the agent has called (first_seen_tool's baseline), sorted.
	KnownTools []string `json:"known_tools,omitempty"`
}

// RateProfile is the request-rate baseline's typical band for every hour of the week.
type RateProfile struct {
	// Unit is what the numbers count, e.g. "calls/min" (one-minute buckets).
	Unit string `json:"unit"`
	// Band has 168 entries, hour_of_week 0 (Monday 00:00–01:00 UTC) to 167 (Sunday 23:00).
	Band []HourBand `json:"band"`
}

// HourBand is the typical rate during one hour of the week: the mean of the model's expected
// rate over the hour, and the lowest low and highest high of its 90 % bands within it.
type HourBand struct {
	HourOfWeek int     `json:"hour_of_week"`
	Expected   float64 `json:"expected"`
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
}

// ToolUse is one tool in an agent's baseline.
type ToolUse struct {
	Tool  string `json:"tool"`
	Calls int    `json:"calls"`
	// Share is Calls over all the agent's tool calls in the baseline.
	Share float64 `json:"share"`
	// Sessions is how many of the agent's learnt sessions called it.
	Sessions int `json:"sessions"`
}

// Transition is one step from a call to the next in an agent's baseline. A call is named by
// its tool for tools/call, otherwise by its method (and prompt name for prompts/get).
type Transition struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Count int    `json:"count"`
	// Probability is the model's estimate of P(to | from) for the agent.
	Probability float64 `json:"probability"`
}

// SizeProfile holds the size quantiles per direction; a direction without sizes is omitted.
type SizeProfile struct {
	RequestBytes  *Quantiles `json:"request_bytes,omitempty"`
	ResponseBytes *Quantiles `json:"response_bytes,omitempty"`
}

// Quantiles of a size distribution, in whole bytes.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// Profile list lengths.
const (
	profileTopTools       = 20
	profileTopTransitions = 20
)

// Profiler decodes agents' stored baselines into Profiles. It needs the detector's
// configuration: snapshots are only readable under the model parameters they were taken with.
// It is safe for concurrent use (every call decodes into fresh models).
type Profiler struct {
	cfg  Config
	rate *rate.Params
	size *size.Params
	log  *slog.Logger
}

// NewProfiler returns a Profiler for baselines saved by a detector configured with cfg
// (defaults are filled in). Unreadable snapshots are logged on logger (nil: discarded) and
// left out of profiles.
func NewProfiler(cfg Config, logger *slog.Logger) (*Profiler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rp, err := rate.NewParams(cfg.Rate.Model)
	if err != nil {
		return nil, err
	}
	sp, err := size.NewParams(cfg.Size.Model)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Profiler{cfg: cfg, rate: rp, size: sp, log: logger}, nil
}

// Profile reads agent's baselines from st. It returns an error matching store.ErrNotFound
// when the store holds no baseline of the agent.
func (p *Profiler) Profile(ctx context.Context, st store.Store, agent string) (Profile, error) {
	snaps := map[string]store.Baseline{}
	for _, model := range []string{ModelAgent, ModelRequestRate, ModelToolSequence, ModelContextSize, ModelFirstSeenTool} {
		bs, err := st.LoadBaselinesOf(ctx, model, []string{agent})
		if err != nil {
			return Profile{}, fmt.Errorf("cannot load %s baselines: %w", model, err)
		}
		for _, b := range bs {
			snaps[model] = b
		}
	}
	if len(snaps) == 0 {
		return Profile{}, fmt.Errorf("no baseline of agent %q: %w", agent, store.ErrNotFound)
	}
	pr := Profile{AgentID: agent, Learning: true}
	for _, b := range snaps {
		if b.UpdatedAt.After(pr.UpdatedAt) {
			pr.UpdatedAt = b.UpdatedAt.UTC()
		}
	}
	unreadable := func(b store.Baseline, err error) {
		p.log.Warn("ignoring unreadable baseline in a profile", "model", b.Model, "agent", agent, "err", err)
	}
	if b, ok := snaps[ModelAgent]; ok {
		var rec agentRecord
		if err := json.Unmarshal(b.State, &rec); err != nil {
			unreadable(b, err)
		} else {
			first := rec.First.UTC()
			pr.FirstSeen, pr.Requests = &first, rec.Events
			w := p.cfg.WarmUp
			// The detector judges warm-up by event time; the snapshot's time stands in for
			// the agent's latest event.
			pr.Learning = (w.Events > 0 && rec.Events < int64(w.Events)) ||
				(w.Duration > 0 && b.UpdatedAt.Sub(rec.First) < w.Duration)
		}
	}
	if b, ok := snaps[ModelRequestRate]; ok && !p.cfg.Rate.Disabled {
		m := p.rate.NewModel(nil)
		if err := m.UnmarshalBinary(b.State); err != nil {
			unreadable(b, err)
		} else if bands, ok := m.WeekBands(); ok {
			rp := &RateProfile{Unit: p.rate.Unit(), Band: make([]HourBand, len(bands))}
			for h, hb := range bands {
				rp.Band[h] = HourBand{HourOfWeek: h, Expected: hb.Expected, Lower: hb.Low, Upper: hb.High}
			}
			pr.Rate = rp
			if _, ok := snaps[ModelAgent]; !ok {
				pr.Learning = m.Learning()
			}
		}
	}
	if b, ok := snaps[ModelToolSequence]; ok && !p.cfg.Sequence.Disabled {
		if err := p.sequenceProfile(&pr, b.State); err != nil {
			unreadable(b, err)
		}
	}
	if b, ok := snaps[ModelContextSize]; ok && !p.cfg.Size.Disabled {
		s := p.size.New()
		if err := s.UnmarshalBinary(b.State); err != nil {
			unreadable(b, err)
		} else {
			sp := &SizeProfile{RequestBytes: sizeQuantiles(s, size.Request), ResponseBytes: sizeQuantiles(s, size.Response)}
			if sp.RequestBytes != nil || sp.ResponseBytes != nil {
				pr.Sizes = sp
			}
		}
	}
	if b, ok := snaps[ModelFirstSeenTool]; ok {
		var tools agentTools
		if err := json.Unmarshal(b.State, &tools); err != nil {
			unreadable(b, err)
		} else {
			pr.KnownTools = tools.Tools
		}
	}
	return pr, nil
}

func (p *Profiler) sequenceProfile(pr *Profile, state []byte) error {
	m, err := sequence.New(p.cfg.Sequence.Model, nil)
	if err != nil {
		return err
	}
	b := m.NewBaseline()
	if err := b.UnmarshalBinary(state); err != nil {
		return err
	}
	syms := m.Symbols()
	var total int
	for _, c := range b.Calls() {
		if method, tool := syms.Call(c.Call); method == "tools/call" {
			pr.TopTools = append(pr.TopTools, ToolUse{Tool: tool, Calls: c.Count, Sessions: c.Sessions})
			total += c.Count
		}
	}
	for i := range pr.TopTools {
		if total > 0 {
			pr.TopTools[i].Share = float64(pr.TopTools[i].Calls) / float64(total)
		}
	}
	slices.SortFunc(pr.TopTools, func(a, b ToolUse) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Tool, b.Tool))
	})
	pr.TopTools = pr.TopTools[:min(len(pr.TopTools), profileTopTools)]

	name := func(s sequence.Symbol, boundary string) string {
		switch s {
		case sequence.Boundary:
			return boundary
		case sequence.Other:
			return "(other)"
		}
		method, target := syms.Call(s)
		switch {
		case method == "tools/call":
			return target
		case target != "":
			return method + " " + target
		}
		return method
	}
	for _, t := range b.Transitions() {
		pr.TopTransitions = append(pr.TopTransitions, Transition{
			From: name(t.From, "(start)"), To: name(t.To, "(end)"), Count: t.Count, Probability: t.Probability,
		})
	}
	slices.SortFunc(pr.TopTransitions, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	pr.TopTransitions = pr.TopTransitions[:min(len(pr.TopTransitions), profileTopTransitions)]
	if len(pr.TopTools) == 0 {
		pr.TopTools = nil
	}
	if len(pr.TopTransitions) == 0 {
		pr.TopTransitions = nil
	}
	return nil
}

func sizeQuantiles(s *size.Sizes, dir size.Direction) *Quantiles {
	var q Quantiles
	for _, x := range []struct {
		q   float64
		out *float64
	}{{0.5, &q.P50}, {0.9, &q.P90}, {0.99, &q.P99}} {
		v, _, ok := s.Quantile(dir, x.q)
		if !ok {
			return nil
		}
		*x.out = math.Round(v) // whole bytes
	}
	return &q
}
