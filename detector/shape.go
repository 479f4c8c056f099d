package detector

import (
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"gonum.org/v1/gonum/mathext"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Anomaly kinds of the session-shape model (beside scan, its enumeration bursts).
const (
	// KindSessionShape is a session unusually long, touching unusually many distinct tools,
	// or failing unusually often for the agent; Subject names the feature.
	KindSessionShape = "session_shape"
	// KindServerFanout is an agent reaching more MCP servers within a window than it does.
	KindServerFanout = "server_fanout"
)

// Session-shape features, the Subject of session_shape anomalies.
const (
	FeatureDuration      = "duration"
	FeatureDistinctTools = "distinct_tools"
	FeatureErrors        = "errors"
)

// ModelSessionShapeBaseline is the store's name for an agent's session-shape baseline.
const ModelSessionShapeBaseline = "session_shape"

// ShapeConfig configures the session-shape model: each ended session's duration, distinct
// tools and error ratio, and the servers an agent reaches per window, against the agent's own.
type ShapeConfig struct {
	// Disabled turns the model off. It needs the sequence model, which keeps the sessions.
	Disabled bool `yaml:"disabled"`
	// MinScore is the score (0–100) from which a feature becomes an anomaly (default 60).
	MinScore float64 `yaml:"min_score"`
	// MinSessions is how many sessions (or windows, for fan-out) the agent must have ended
	// before its shape is scored (default 10).
	MinSessions int `yaml:"min_sessions"`
	// FanOutWindow is the window servers are counted in (default 1h of event time).
	FanOutWindow time.Duration `yaml:"fan_out_window"`
	// MinDuration, MinDistinctTools, MinErrors and MinServers are the smallest values that
	// can be raised (defaults 5m, 5, 3 and 3): a two-minute session of an agent whose sessions
	// last seconds is unusual, but nothing a SOC acts on.
	MinDuration      time.Duration `yaml:"min_duration"`
	MinDistinctTools int           `yaml:"min_distinct_tools"`
	MinErrors        int           `yaml:"min_errors"`
	MinServers       int           `yaml:"min_servers"`
}

func (c *ShapeConfig) setDefaults() {
	if c.MinScore == 0 {
		c.MinScore = 60
	}
	if c.MinSessions == 0 {
		c.MinSessions = 10
	}
	if c.FanOutWindow == 0 {
		c.FanOutWindow = time.Hour
	}
	if c.MinDuration == 0 {
		c.MinDuration = 5 * time.Minute
	}
	if c.MinDistinctTools == 0 {
		c.MinDistinctTools = 5
	}
	if c.MinErrors == 0 {
		c.MinErrors = 3
	}
	if c.MinServers == 0 {
		c.MinServers = 3
	}
}

func (c ShapeConfig) validate(errs *config.Errors) {
	validateScore(errs, "detector.shape.min_score", c.MinScore)
	if c.MinSessions < 2 {
		errs.Addf("detector.shape.min_sessions", "must be at least 2, got %d", c.MinSessions)
	}
	if c.FanOutWindow <= 0 {
		errs.Add("detector.shape.fan_out_window", "must be positive")
	}
	if c.MinDuration < 0 {
		errs.Add("detector.shape.min_duration", "must not be negative")
	}
	for name, v := range map[string]int{"min_distinct_tools": c.MinDistinctTools, "min_errors": c.MinErrors, "min_servers": c.MinServers} {
		if v < 1 {
			errs.Addf("detector.shape."+name, "must be at least 1, got %d", v)
		}
	}
}

// shapeParams are the robust log-space distributions session features are scored against:
// the context-size model's, over a handful of keys.
func shapeParams(c ShapeConfig) (*size.Params, error) {
	return size.NewParams(size.Config{MaxKeys: 4, MinCount: c.MinSessions, HalfLife: 100})
}

// shapeBaseline is an agent's distributions of its session-shape features, by shapeKeys.
type shapeBaseline [len(shapeKeys)]size.Stats

// The features' positions in shapeBaseline and shapeKeys.
const (
	shapeDuration = iota
	shapeDistinctTools
	shapeServers
)

// shapeKeys are the features' keys in snapshots.
var shapeKeys = [...]size.Key{
	shapeDuration:      size.KeyOf("session", FeatureDuration),
	shapeDistinctTools: size.KeyOf("session", FeatureDistinctTools),
	shapeServers:       size.KeyOf("window", "servers"),
}

// errorMemory is how many calls the agent's error ratio remembers (an EWMA beyond).
const errorMemory = 2000

// fanOut counts the distinct servers an agent reached in the current window.
type fanOut struct {
	start   int64    // window start (event time, Unix ns)
	servers []uint64 // hashes of the servers reached, reused across windows
}

// noteShape counts a request into its session and the agent's fan-out, raising server_fanout
// when the servers reached so far are unusual for the agent.
func (d *Detector) noteShape(out []schemas.Anomaly, st *agentState, ls *liveSession, ev *schemas.Event, id uuid.UUID, t int64, now time.Time) []schemas.Anomaly {
	if ev.Status == schemas.StatusError || ev.Status == schemas.StatusToolError || ev.Status == schemas.StatusTimeout {
		ls.errors++
	}
	if st.shape == nil {
		st.shape = &shapeBaseline{}
	}
	f := &st.fan
	if t-f.start >= int64(d.cfg.Shape.FanOutWindow) {
		d.endFanOut(st)
		f.start = t
	}
	h := uint64(size.KeyOf("server", ev.ServerID))
	for _, s := range f.servers {
		if s == h {
			return out
		}
	}
	f.servers = append(f.servers, h)
	n := len(f.servers)
	if n < d.cfg.Shape.MinServers {
		return out
	}
	r := d.shapeParams.PeekStats(&st.shape[shapeServers], n)
	if r.Learning || r.Score < d.cfg.Shape.MinScore {
		return out
	}
	window := rate.ShortDuration(d.cfg.Shape.FanOutWindow)
	observed := fmt.Sprintf("%d servers within %s", n, window)
	typical := fmt.Sprintf("%s–%s per %s (typical %s)", shapeCount(r.Low), shapeCount(r.High), window, shapeCount(r.Typical))
	return d.raiseOrUpdate(out, schemas.Anomaly{
		AgentID:  st.name,
		ServerID: ev.ServerID,
		Kind:     KindServerFanout,
		Subject:  window,
		Score:    r.Score,
		Title:    fmt.Sprintf("Agent %s reached %s", st.name, observed),
		Explanation: schemas.Explanation{
			Summary:     fmt.Sprintf("Agent %s reached %s, the latest %s; 90%% of its windows reach %s (probability %.2g).", st.name, observed, ev.ServerID, typical, r.P),
			Observed:    observed,
			Typical:     typical,
			Model:       ModelSessionShape,
			Probability: r.P,
		},
		FirstSeen: time.Unix(0, t).UTC(),
		Learning:  d.learning(st, t),
	}, evidence(id), now, d.cfg.MergeWindow, false)
}

// endFanOut learns the servers the agent reached in its fan-out window, and empties it.
func (d *Detector) endFanOut(st *agentState) {
	if f := &st.fan; len(f.servers) > 0 && st.shape != nil {
		d.shapeParams.ObserveStats(&st.shape[shapeServers], len(f.servers))
		f.servers = f.servers[:0]
		d.markDirty(st)
	}
}

// isToolCall reports whether sym is a tools/call.
func (d *Detector) isToolCall(sym sequence.Symbol) bool {
	method, _ := d.seqModel.Symbols().Call(sym)
	return method == "tools/call"
}

// endShape scores an ended session's duration, distinct tools and errors, then learns them.
func (d *Detector) endShape(out []schemas.Anomaly, st *agentState, ls *liveSession, steps int, t int64, now time.Time) []schemas.Anomaly {
	if st.shape == nil {
		st.shape = &shapeBaseline{}
	}
	c := d.cfg.Shape
	dur := time.Duration(max(ls.last-ls.start, 0))
	ms := int(min(dur.Milliseconds(), math.MaxInt32))
	// Explanations are written only for what is raised: a session's end allocates nothing.
	if r := d.shapeParams.ObserveStats(&st.shape[shapeDuration], max(ms, 1)); dur >= c.MinDuration && d.raisesShape(r.Score, r.Learning) {
		out = d.raiseShape(out, st, ls, FeatureDuration, r.Score, r.P, r.Learning,
			fmt.Sprintf("a session of %s", rate.ShortDuration(dur.Round(time.Second))),
			fmt.Sprintf("%s–%s (typical %s)", rate.ShortDuration(msDuration(r.Low)), rate.ShortDuration(msDuration(r.High)), rate.ShortDuration(msDuration(r.Typical))), t, now)
	}
	tools := ls.sess.CountCalls(d.isToolCall)
	if r := d.shapeParams.ObserveStats(&st.shape[shapeDistinctTools], max(tools, 1)); tools >= c.MinDistinctTools && d.raisesShape(r.Score, r.Learning) {
		out = d.raiseShape(out, st, ls, FeatureDistinctTools, r.Score, r.P, r.Learning,
			fmt.Sprintf("%d distinct tools in one session", tools),
			fmt.Sprintf("%s–%s (typical %s)", shapeCount(r.Low), shapeCount(r.High), shapeCount(r.Typical)), t, now)
	}
	// Errors: P(X ≥ k) for X ~ Binomial(steps, p), p the agent's error ratio smoothed
	// toward one error in twenty calls.
	k := int(ls.errors)
	p := (float64(st.errs) + 1) / (float64(st.calls) + 20)
	if k >= c.MinErrors && st.sessionsEnded >= uint32(c.MinSessions) {
		pk := mathext.RegIncBeta(float64(k), float64(steps-k+1), p)
		score := 100.0
		if pk > 0 {
			score = min(100, -10*math.Log10(pk))
		}
		if d.raisesShape(score, false) {
			out = d.raiseShape(out, st, ls, FeatureErrors, score, pk, false,
				fmt.Sprintf("%d of %d calls failed", k, steps), fmt.Sprintf("%.1f%% of calls fail", 100*p), t, now)
		}
	}
	st.errs += float32(k)
	st.calls += float32(steps)
	if st.calls > errorMemory {
		st.errs, st.calls = st.errs*errorMemory/st.calls, errorMemory
	}
	if st.sessionsEnded < math.MaxUint32 {
		st.sessionsEnded++
	}
	return out
}

// raisesShape reports whether a feature scoring score is raised.
func (d *Detector) raisesShape(score float64, learning bool) bool {
	return !learning && score >= d.cfg.Shape.MinScore
}

func (d *Detector) raiseShape(out []schemas.Anomaly, st *agentState, ls *liveSession, feature string, score, p float64, learning bool, observed, typical string, t int64, now time.Time) []schemas.Anomaly {
	if !d.raisesShape(score, learning) {
		return out
	}
	return d.raise(out, schemas.Anomaly{
		AgentID:   st.name,
		SessionID: ls.id,
		ServerID:  ls.server,
		Kind:      KindSessionShape,
		Subject:   feature,
		Score:     score,
		Title:     fmt.Sprintf("Agent %s: %s", st.name, observed),
		Explanation: schemas.Explanation{
			Summary:     fmt.Sprintf("%s; for this agent %s (probability %.2g).", observed, typical, p),
			Observed:    observed,
			Typical:     typical,
			Model:       ModelSessionShape,
			Probability: p,
		},
		FirstSeen: time.Unix(0, t).UTC(),
		Learning:  d.learning(st, t),
	}, evidence(ls.lastID), now, d.cfg.MergeWindow)
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Second)
}

// shapeCount writes a typical count: whole numbers, one decimal below ten.
func shapeCount(x float64) string {
	if x < 10 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}
