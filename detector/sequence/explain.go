package sequence

import (
	"fmt"
	"strconv"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Explain puts f in words and numbers for an anomaly, e.g. summary "transition tools/list →
// tools/call delete_all seen in 0 of 1,204 sessions (0 of 53,112 peer sessions)". It allocates:
// call it only for findings that become anomalies.
func (m *Model) Explain(f Finding) schemas.Explanation {
	e := schemas.Explanation{Model: ModelName, Probability: f.P}
	peers := ""
	if f.HasPeer {
		peers = fmt.Sprintf(" (%s of %s peer sessions)", thousands(f.PeerSeen), thousands(f.PeerSessions))
	}
	seen := fmt.Sprintf("seen in %s of %s sessions", thousands(f.Seen), thousands(f.Sessions))
	switch f.Kind {
	case KindNone:
		e.Summary = "nothing unusual"
	case KindCall:
		e.Observed = m.syms.Name(f.To)
		e.Typical = seen + peers
		e.Summary = e.Observed + " " + e.Typical
	case KindTransition:
		e.Observed = m.endName(f.From, "session start") + " → " + m.endName(f.To, "session end")
		e.Typical = seen + peers
		e.Summary = "transition " + e.Observed + " " + e.Typical
	case KindCountAbove, KindCountBelow:
		name := m.syms.Name(f.To)
		e.Observed = fmt.Sprintf("%s × %s", thousands(f.Observed), name)
		e.Typical = fmt.Sprintf("%s–%s per session", thousands(f.Min), thousands(f.Max))
		e.Summary = fmt.Sprintf("%s called %s in the session; %s in every one of %s sessions",
			name, times(f.Observed), rangeTimes(f.Min, f.Max), thousands(f.Sessions))
	case KindLengthAbove, KindLengthBelow:
		e.Observed = calls(f.Observed)
		e.Typical = fmt.Sprintf("%s–%s calls per session", thousands(f.Min), thousands(f.Max))
		e.Summary = fmt.Sprintf("session of %s; %s–%s calls in every one of %s sessions",
			calls(f.Observed), thousands(f.Min), thousands(f.Max), thousands(f.Sessions))
	default:
		e.Summary = f.Kind.String()
	}
	return e
}

func (m *Model) endName(s Symbol, boundary string) string {
	if s == Boundary {
		return boundary
	}
	return m.syms.Name(s)
}

func times[T ~int | ~int32](n T) string {
	if n == 1 {
		return "once"
	}
	return thousands(n) + " times"
}

func rangeTimes[T ~int | ~int32](lo, hi T) string {
	if lo == hi {
		return times(lo)
	}
	return thousands(lo) + "–" + thousands(hi) + " times"
}

func calls[T ~int | ~int32](n T) string {
	if n == 1 {
		return "1 call"
	}
	return thousands(n) + " calls"
}

// thousands formats n with commas: 1204 → "1,204".
func thousands[T ~int | ~int32](n T) string {
	s := strconv.Itoa(int(n))
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
