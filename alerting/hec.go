package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// HECPath is where a Splunk HTTP Event Collector takes JSON events.
const HECPath = "/services/collector/event"

// hec sends alerts to a Splunk HTTP Event Collector, one event per request, in the HEC JSON
// envelope: {"time","host","source","sourcetype","index","event","fields"}.
type hec struct {
	cfg       HECConfig
	url       string
	host      string
	client    *http.Client
	transport *http.Transport
}

func newHECSink(cfg HECConfig, _ pipeline.Settings) (Sink, error) {
	t, client, err := newHTTPClient(cfg.TLS, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot parse url: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = HECPath
	}
	host := cfg.Host
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			host = "mcpwatch"
		}
	}
	return &hec{cfg: cfg, url: u.String(), host: host, transport: t, client: client}, nil
}

// Name implements Sink.
func (h *hec) Name() string { return h.cfg.Name }

// Close drops idle connections.
func (h *hec) Close() error {
	h.transport.CloseIdleConnections()
	return nil
}

// hecEvent is HEC's JSON event envelope.
type hecEvent struct {
	// Time is the event time in epoch seconds, with milliseconds as decimals.
	Time       json.Number       `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	SourceType string            `json:"sourcetype"`
	Index      string            `json:"index,omitempty"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

// hecResponse is HEC's answer body, e.g. {"text":"Success","code":0}.
type hecResponse struct {
	Text string `json:"text"`
	Code int    `json:"code"`
}

// Send posts one event. HEC answers 200 {"code":0} on success; 503 (code 9, server busy) and
// 500 are retried; 400/401/403 (bad data, token missing, invalid or disabled, wrong index)
// are permanent.
func (h *hec) Send(ctx context.Context, a Alert) error {
	payload, err := render(h.cfg.Format, a)
	if err != nil {
		return Permanent(err)
	}
	t := a.Anomaly.Time
	body, err := json.Marshal(hecEvent{
		Time:       json.Number(fmt.Sprintf("%d.%03d", t.Unix(), t.Nanosecond()/1e6)),
		Host:       h.host,
		Source:     h.cfg.Source,
		SourceType: h.cfg.SourceType,
		Index:      h.cfg.Index,
		Event:      payload,
		Fields: map[string]string{
			"delivery_id": a.DeliveryID,
			"event_type":  eventType(a),
			"anomaly_id":  a.Anomaly.ID,
			"agent_id":    a.Anomaly.AgentID,
			"kind":        a.Anomaly.Kind,
			"severity":    string(a.Anomaly.Severity),
		},
	})
	if err != nil {
		return Permanent(fmt.Errorf("cannot encode hec event: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("cannot build request: %w", err))
	}
	req.Header.Set("Authorization", "Splunk "+h.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcpwatch")
	req.Header.Set(HeaderDelivery, a.DeliveryID)
	resp, err := h.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("cannot post to hec %s: %w", h.cfg.Name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	what := "hec " + h.cfg.Name
	status := resp.Status
	var hr hecResponse
	if json.Unmarshal(raw, &hr) == nil && hr.Text != "" {
		// HEC's own words, e.g. "403 Forbidden: Invalid token (code 4)"; never the token.
		status = fmt.Sprintf("%s: %s (code %d)", resp.Status, strings.ReplaceAll(hr.Text, h.cfg.Token, "…"), hr.Code)
	}
	return statusError(what, resp.StatusCode, status)
}
