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
	"time"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Webhook request headers.
const (
	HeaderDelivery  = "X-Mcpwatch-Delivery"  // stable per (anomaly version, sink): receivers drop duplicates by it
	HeaderTimestamp = "X-Mcpwatch-Timestamp" // Unix seconds, signed with the body
	HeaderSignature = "X-Mcpwatch-Signature" // "sha256=" + hex HMAC, when a secret is set
	HeaderEvent     = "X-Mcpwatch-Event"     // "anomaly", or "digest" for a digest of suppressed repeats
)

// webhook posts alerts to one URL.
type webhook struct {
	cfg       WebhookConfig
	client    *http.Client
	transport *http.Transport
}

func newWebhookSink(cfg WebhookConfig, _ pipeline.Settings) (Sink, error) {
	t, client, err := newHTTPClient(cfg.TLS, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &webhook{cfg: cfg, transport: t, client: client}, nil
}

// newHTTPClient returns a client of its own (so Close can drop its keep-alive connections)
// that does not follow redirects.
func newHTTPClient(tlsCfg ClientTLS, timeout time.Duration) (*http.Transport, *http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	c, err := tlsCfg.Config()
	if err != nil {
		return nil, nil, err
	}
	t.TLSClientConfig = c
	return t, &http.Client{
		Timeout:   timeout,
		Transport: t,
		// Following a 301/302/303 would turn the POST into a body-less GET that the new
		// location may answer with 200: the alert would count as delivered and be lost.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// Name implements Sink.
func (w *webhook) Name() string { return w.cfg.Name }

// Close drops idle connections to the receiver.
func (w *webhook) Close() error {
	w.transport.CloseIdleConnections()
	return nil
}

// Send posts the alert once.
func (w *webhook) Send(ctx context.Context, a Alert) error {
	body, err := render(w.cfg.Format, a)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("cannot build request: %w", err))
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	ts := strconv.FormatInt(a.Time.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcpwatch")
	req.Header.Set(HeaderDelivery, a.DeliveryID)
	req.Header.Set(HeaderEvent, eventType(a))
	req.Header.Set(HeaderTimestamp, ts)
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, ts, body))
	}
	return postResult("webhook "+w.cfg.Name, w.client, req)
}

// postResult does req and classifies the answer: 2xx is success; a redirect, or a 4xx other
// than 408/429, is permanent; 408, 429, 502, 503, 504 and network errors are unavailable;
// other answers are retried within the budget.
func postResult(what string, client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		// Drop the URL from the error: its query may carry a token, and this text reaches logs,
		// the store and dead-letter headers.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("cannot post to %s: %w", what, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return statusError(what, resp.StatusCode, resp.Status)
}

// statusError classifies an HTTP answer (see postResult); nil for 2xx.
func statusError(what string, code int, status string) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return Permanent(fmt.Errorf("%s answered %s; redirects are not followed, configure the final URL", what, status))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return Unavailable(fmt.Errorf("%s answered %s", what, status))
	case code >= 400 && code < 500:
		return Permanent(fmt.Errorf("%s rejected the alert: %s", what, status))
	default:
		return fmt.Errorf("%s answered %s", what, status)
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
