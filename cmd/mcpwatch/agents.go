package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const agentsUsage = `Usage:
  mcpwatch agents list [--since T] [--until T] [--limit N] [flags]
  mcpwatch agents show ID [--since T] [--until T] [flags]

List the agents seen in a time range (the last 24 hours by default), riskiest first,
or show one agent: its activity and risk, what it has learnt to be normal for it
(request rate for the current hour, top tools and transitions, message sizes) and
its latest anomalies.
Run "mcpwatch agents list --help" for every flag.

` + queryCommon

// runAgents runs `mcpwatch agents …`; args are the words after "agents".
func runAgents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatchQuery(ctx, "agents", agentsUsage, map[string]querySubcmd{
		"list": agentsList,
		"show": agentsShow,
	}, args, stdout, stderr)
}

func agentsList(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch agents list [--since T] [--until T] [--limit N] [flags]"
	c.about = "Agents with events in [since, until), riskiest first. Risk is 0–100, from the scores\nof the agent's (non-learning) anomalies last seen in the range: one critical anomaly\nor many medium ones make a risky agent."
	var q store.AgentQuery
	var since, until queryTimeFlag
	c.fs.Var(&since, "since", "only agents with events at or after `T` (default: 24h before --until, or now)")
	c.fs.Var(&until, "until", "only agents with events before `T`")
	c.fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `N` agents (default %d)", store.DefaultLimit))
	code, ok := c.parseNoArgs(args)
	if !ok {
		return code
	}
	if code, ok := c.checkLimit(q.Limit); !ok {
		return code
	}
	if q.Since, q.Until, code, ok = c.agentTimes(&since, &until); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	agents, err := cl.Agents(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	return c.printList(api.AgentsResponse{Agents: nonNil(agents)}, len(agents), "agents",
		func() error { return printAgents(c.stdout, agents) },
		func() error { return csvAgents(c.stdout, agents) })
}

// agentShowJSON is `agents show -o json`. Profile is null before the detector saved a
// baseline of the agent.
type agentShowJSON struct {
	Agent     store.Agent       `json:"agent"`
	Profile   *api.Profile      `json:"profile"`
	Anomalies []schemas.Anomaly `json:"anomalies"`
	// RecentRate is the agent's calls per minute over the last hour, with the profile's band.
	RecentRate *recentRate `json:"recent_rate,omitempty"`
}

// recentRate compares the last hour's rate with the band for the current hour of the week.
type recentRate struct {
	Since      time.Time `json:"since"`
	Calls      int       `json:"calls"`
	PerMinute  float64   `json:"per_minute"`
	HourOfWeek int       `json:"hour_of_week"`
	Expected   float64   `json:"expected"`
	Lower      float64   `json:"lower"`
	Upper      float64   `json:"upper"`
}

// agentAnomalies is how many of the agent's latest anomalies agents show prints.
const agentAnomalies = 5

func agentsShow(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch agents show ID [--since T] [--until T] [flags]"
	c.about = "One agent: activity and risk over [since, until) (the last 24 hours by default), its\nlearnt baseline (the request-rate band for the current hour of the week against\nthe last hour's rate, its top tools and transitions, size quantiles) and its five\nlatest anomalies. -o csv is not offered: use -o json, or agents list -o csv."
	var since, until queryTimeFlag
	c.fs.Var(&since, "since", "activity at or after `T` (default: 24h before --until, or now)")
	c.fs.Var(&until, "until", "activity before `T`")
	id, code, ok := c.parseID(args, "agent")
	if !ok {
		return code
	}
	if c.format == outputCSV {
		return c.usageError("-o csv: agents show prints a summary and a profile; use -o json, or agents list -o csv")
	}
	var q store.AgentQuery
	if q.Since, q.Until, code, ok = c.agentTimes(&since, &until); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	var out agentShowJSON
	var err error
	if out.Agent, err = cl.Agent(ctx, id, q); err != nil {
		return c.fail(err)
	}
	switch p, err := cl.AgentProfile(ctx, id); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return c.fail(err)
	default:
		out.Profile = &p
	}
	if out.Anomalies, err = cl.Anomalies(ctx, store.AnomalyQuery{AgentID: id, Limit: agentAnomalies}); err != nil {
		return c.fail(err)
	}
	out.Anomalies = nonNil(out.Anomalies)
	now := c.now().UTC()
	if out.Profile != nil && out.Profile.Rate != nil && out.Profile.Rate.Unit == "calls/min" {
		// The band is per minute: compare the last hour's calls per minute with it.
		from := now.Add(-time.Hour).Truncate(time.Minute)
		series, err := cl.TimeSeries(ctx, store.SeriesQuery{Metric: "calls", AgentID: id, Step: time.Minute, Since: from, Until: from.Add(time.Hour)})
		if err != nil {
			return c.fail(err)
		}
		r := &recentRate{Since: from, HourOfWeek: hourOfWeek(now)}
		for _, s := range series.Series {
			for _, p := range s.Points {
				r.Calls += int(p.Value)
			}
		}
		r.PerMinute = float64(r.Calls) / 60
		for _, b := range out.Profile.Rate.Band {
			if b.HourOfWeek == r.HourOfWeek {
				r.Expected, r.Lower, r.Upper = b.Expected, b.Lower, b.Upper
			}
		}
		out.RecentRate = r
	}
	if c.format == outputJSON {
		err = printJSON(c.stdout, out)
	} else {
		err = printAgent(c.stdout, out, now)
	}
	if err != nil {
		return c.fail(err)
	}
	return queryExitOK
}

// agentTimes reads --since and --until; without --since, the range is the 24 hours before
// --until (or now), as the API's default, but by this command's clock.
func (c *queryCmd) agentTimes(since, until *queryTimeFlag) (time.Time, time.Time, int, bool) {
	s, u, code, ok := c.times(since, until)
	if ok && s.IsZero() {
		s = u
		if s.IsZero() {
			s = c.now()
		}
		s = s.Add(-api.DefaultAgentsSince)
	}
	return s, u, code, ok
}

// hourOfWeek is the profile's index of t's hour: 0 is Monday 00:00–01:00 UTC.
func hourOfWeek(t time.Time) int {
	t = t.UTC()
	return (int(t.Weekday())+6)%7*24 + t.Hour()
}
