package detector

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Anomaly kinds of the context-size model.
const (
	KindLargeResponse = "large_response" // an exfiltration-sized result
	KindLargeRequest  = "large_request"  // context bloat
)

// ModelContextSize is the context-size model's baseline name in the store.
const ModelContextSize = size.ModelName

// SizeConfig configures the context_size model in the live detector.
type SizeConfig struct {
	// Disabled turns the model off.
	Disabled bool `yaml:"disabled"`
	// MinScore is the score (0–100) from which a message becomes a large_response or
	// large_request anomaly (default 60: probability 10⁻⁶).
	MinScore float64 `yaml:"min_score"`
	// MinBytes is the smallest message that can be raised (default 65536): a 2 KB answer
	// from a tool that usually returns 100 bytes is unusual but no exfiltration.
	MinBytes int `yaml:"min_bytes"`
	// Model holds the size model's parameters.
	Model size.Config `yaml:",inline"`
}

func (c *SizeConfig) setDefaults() {
	if c.MinScore == 0 {
		c.MinScore = 60
	}
	if c.MinBytes == 0 {
		c.MinBytes = 64 << 10
	}
	c.Model.SetDefaults()
}

func (c SizeConfig) validate(errs *config.Errors) {
	validateScore(errs, "detector.size.min_score", c.MinScore)
	if c.MinBytes < 0 {
		errs.Addf("detector.size.min_bytes", "must not be negative, got %d", c.MinBytes)
	}
	errs.Merge("detector.size", c.Model.Validate())
}

// sizeKey is the call a size belongs to: tools and prompts by name, other methods alone.
func sizeKey(ev *schemas.Event) size.Key {
	switch ev.Method {
	case "tools/call", "prompts/get":
		return size.KeyOf(ev.Method, ev.Target)
	}
	return size.KeyOf(ev.Method, "")
}

// symbolSizeKey is sizeKey for an event whose call the sequence model interned as sym: the
// same (method, tool) pair, hashed once per symbol rather than once per event.
func (d *Detector) symbolSizeKey(ev *schemas.Event, sym sequence.Symbol) size.Key {
	if sym == sequence.Other || sym == sequence.Boundary {
		return sizeKey(ev) // not one pair
	}
	if int(sym) >= len(d.symbolKeys) {
		d.symbolKeys = append(d.symbolKeys, make([]size.Key, int(sym)+1-len(d.symbolKeys))...)
	}
	k := d.symbolKeys[sym]
	if k == 0 {
		k = sizeKey(ev)
		d.symbolKeys[sym] = k
	}
	return k
}

// observeSizes scores the request's and the response's sizes of call k and learns them.
func (d *Detector) observeSizes(out []schemas.Anomaly, st *agentState, ev *schemas.Event, k size.Key, id uuid.UUID, t int64, now time.Time) []schemas.Anomaly {
	if ev.RequestBytes > 0 {
		out = d.raiseSize(out, st, ev, id, d.observeSize(st, k, size.Request, ev.RequestBytes), size.Request, t, now)
	}
	if ev.ResponseBytes > 0 {
		out = d.raiseSize(out, st, ev, id, d.observeSize(st, k, size.Response, ev.ResponseBytes), size.Response, t, now)
	}
	return out
}

// observeSize scores and learns one size. Only sizes that score are raised, and only they
// need the typical band for their explanation (unless every size is raised, at min_score 0).
func (d *Detector) observeSize(st *agentState, k size.Key, dir size.Direction, bytes int) size.Result {
	if d.cfg.Size.MinScore > 0 {
		return st.sizes.Check(k, dir, bytes)
	}
	return st.sizes.Observe(k, dir, bytes)
}

func (d *Detector) raiseSize(out []schemas.Anomaly, st *agentState, ev *schemas.Event, id uuid.UUID, r size.Result, dir size.Direction, t int64, now time.Time) []schemas.Anomaly {
	if r.Learning || r.Score < d.cfg.Size.MinScore || r.Observed < float64(d.cfg.Size.MinBytes) {
		return out
	}
	call := ev.Method
	if ev.Target != "" && (ev.Method == "tools/call" || ev.Method == "prompts/get") {
		call += " " + ev.Target
	}
	kind, what := KindLargeResponse, "response"
	if dir == size.Request {
		kind, what = KindLargeRequest, "request"
	}
	over := "this call"
	if r.Overall {
		over = "the agent's calls (this one has too little history)"
	}
	observed := fmt.Sprintf("%s %s from %s", formatBytes(r.Observed), what, call)
	typical := fmt.Sprintf("%s–%s (typical %s) for %s", formatBytes(r.Low), formatBytes(r.High), formatBytes(r.Typical), over)
	return d.raise(out, schemas.Anomaly{
		AgentID:   st.name,
		SessionID: ev.SessionID,
		ServerID:  ev.ServerID,
		Kind:      kind,
		Subject:   call,
		Score:     r.Score,
		Title:     fmt.Sprintf("Agent %s: %s", st.name, observed),
		Explanation: schemas.Explanation{
			Summary:     fmt.Sprintf("%s; 90%% of sizes are %s (probability %.2g).", observed, typical, r.P),
			Observed:    observed,
			Typical:     typical,
			Model:       size.ModelName,
			Probability: r.P,
		},
		FirstSeen: time.Unix(0, t).UTC(),
		Learning:  d.learning(st, t),
	}, evidence(id), now, d.cfg.MergeWindow)
}

// formatBytes writes sizes as people read them: 812 B, 4.1 KB, 52 MB.
func formatBytes(x float64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for x >= 1000 && i < len(units)-1 {
		x /= 1000
		i++
	}
	if i == 0 || x >= 10 {
		return strconv.FormatFloat(x, 'f', 0, 64) + " " + units[i]
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + " " + units[i]
}
