package detector

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// KindCampaign links the same kind of anomaly on the same subject in several agents.
const KindCampaign = "campaign"

// ModelCampaign names the campaign correlation in explanations.
const ModelCampaign = "campaign"

// maxCampaignAgents bounds the agents a campaign lists.
const maxCampaignAgents = 64

// CampaignConfig configures the correlation of anomalies across agents.
type CampaignConfig struct {
	// Disabled turns campaigns off.
	Disabled bool `yaml:"disabled"`
	// MinAgents is how many agents must raise the same kind of anomaly on the same subject
	// (tool, transition, call; the server for scans and sessions) within Window (default 3).
	MinAgents int `yaml:"min_agents"`
	// Window is how close in event time their anomalies must be (default 1h).
	Window time.Duration `yaml:"window"`
}

func (c *CampaignConfig) setDefaults() {
	if c.MinAgents == 0 {
		c.MinAgents = 3
	}
	if c.Window == 0 {
		c.Window = time.Hour
	}
}

func (c CampaignConfig) validate(errs interface{ Addf(string, string, ...any) }) {
	if c.MinAgents < 2 || c.MinAgents > maxCampaignAgents {
		errs.Addf("detector.campaign.min_agents", "must be from 2 to %d, got %d", maxCampaignAgents, c.MinAgents)
	}
	if c.Window <= 0 {
		errs.Addf("detector.campaign.window", "must be positive, got %s", c.Window)
	}
}

type campaignAgent struct {
	name string
	last time.Time
}

// campaign is the agents that raised one kind of anomaly on one subject lately.
type campaign struct {
	agents []campaignAgent
	first  string  // the agent the campaign anomaly is filed under, once raised
	score  float64 // the highest score of the linked anomalies
}

// campaignSubject is what anomalies of several agents must share to be one campaign.
func campaignSubject(a *schemas.Anomaly) string {
	subject := a.Subject
	switch a.Kind {
	case KindScan, KindUnusualSession:
		subject = "" // their subject is the session
	}
	on := ""
	if a.ServerID != "" {
		on = " on " + a.ServerID
	}
	return strings.TrimSpace(a.Kind + " " + subject + on)
}

// noteCampaign records a newly opened anomaly and raises (or updates) a campaign when enough
// agents raised the same thing within the window. The campaign's score is the highest of its
// anomalies', plus ten points per doubling of the agents beyond MinAgents.
func (d *Detector) noteCampaign(out []schemas.Anomaly, a *schemas.Anomaly, ev []string, now time.Time) []schemas.Anomaly {
	cfg := d.cfg.Campaign
	if cfg.Disabled || a.Learning || a.Kind == KindCampaign {
		return out
	}
	key := campaignSubject(a)
	c := d.campaigns[key]
	if c == nil {
		c = &campaign{}
		d.campaigns[key] = c
	}
	c.agents = slices.DeleteFunc(c.agents, func(x campaignAgent) bool { return a.FirstSeen.Sub(x.last) > cfg.Window })
	if i := slices.IndexFunc(c.agents, func(x campaignAgent) bool { return x.name == a.AgentID }); i >= 0 {
		c.agents[i].last = a.FirstSeen
	} else if len(c.agents) < maxCampaignAgents {
		c.agents = append(c.agents, campaignAgent{a.AgentID, a.FirstSeen})
	}
	c.score = max(c.score, a.Score)
	n := len(c.agents)
	if n < cfg.MinAgents {
		return out
	}
	if c.first == "" {
		c.first = c.agents[0].name
	}
	names := make([]string, n)
	for i, x := range c.agents {
		names[i] = x.name
	}
	score := min(100, c.score+10*math.Log2(float64(n)/float64(cfg.MinAgents)))
	observed := fmt.Sprintf("%d agents within %s: %s", n, shortDuration(cfg.Window), strings.Join(names, ", "))
	return d.raise(out, schemas.Anomaly{
		AgentID:  c.first,
		ServerID: a.ServerID,
		Kind:     KindCampaign,
		Subject:  key,
		Score:    score,
		Title:    fmt.Sprintf("Campaign: %s in %d agents", key, n),
		Explanation: schemas.Explanation{
			Summary:  fmt.Sprintf("%s raised by %s; one agent at a time is what the models expect.", key, observed),
			Observed: observed,
			Typical:  "one agent at a time",
			Model:    ModelCampaign,
		},
		FirstSeen: a.FirstSeen,
	}, ev, now, cfg.Window)
}

// expireCampaigns forgets campaigns without an agent within the window of t.
func (d *Detector) expireCampaigns(t time.Time) {
	for k, c := range d.campaigns {
		if !slices.ContainsFunc(c.agents, func(x campaignAgent) bool { return t.Sub(x.last) <= d.cfg.Campaign.Window }) {
			delete(d.campaigns, k)
		}
	}
}

func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return s
}
