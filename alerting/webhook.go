package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Webhook request headers.
const (
	HeaderDelivery  = "X-Mcpwatch-Delivery"  // stable per (anomaly version, sink): receivers drop duplicates by it
	HeaderTimestamp = "X-Mcpwatch-Timestamp" // Unix seconds, signed with the body
	HeaderSignature = "X-Mcpwatch-Signature" // "sha256=" + hex HMAC, when a secret is set
)

// webhook posts alerts to one URL.
type webhook struct {
	cfg       WebhookConfig
	client    *http.Client
	transport *http.Transport
}

func newWebhookSink(cfg WebhookConfig, _ pipeline.Settings) (Sink, error) {
	// An own transport, so close can drop its keep-alive connections at shutdown.
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &webhook{cfg: cfg, transport: t, client: &http.Client{
		Timeout:   cfg.Timeout,
		Transport: t,
		// Following a 301/302/303 would turn the POST into a body-less GET that the new
		// location may answer with 200: the alert would count as delivered and be lost.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Name implements Sink.
func (w *webhook) Name() string { return w.cfg.Name }

// Close drops idle connections to the receiver.
func (w *webhook) Close() error {
	w.transport.CloseIdleConnections()
	return nil
}

// Send posts the alert once. A 2xx answer is success; a redirect, or a 4xx other than
// 408/429, is permanent.
func (w *webhook) Send(ctx context.Context, a Alert) error {
	body, deliveryID, now := a.JSON, a.DeliveryID, a.Time
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("cannot build request: %w", err))
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcpwatch")
	req.Header.Set(HeaderDelivery, deliveryID)
	req.Header.Set(HeaderTimestamp, ts)
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, ts, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// Drop the URL from the error: its query may carry a token, and this text reaches logs
		// and dead-letter headers.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("cannot post to webhook %s: %w", w.cfg.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return Permanent(fmt.Errorf("webhook %s answered %s; redirects are not followed, configure the final URL", w.cfg.Name, resp.Status))
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("webhook %s rejected the alert: %s", w.cfg.Name, resp.Status))
	default:
		return fmt.Errorf("webhook %s answered %s", w.cfg.Name, resp.Status)
	}
}

// Sign returns the X-Mcpwatch-Signature value for a timestamp and body. A receiver recomputes it
// with the shared secret and compares in constant time (hmac.Equal).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
