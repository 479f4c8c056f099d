package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// fileSink appends one JSON line per alert to a file (synced, so an accepted alert is on
// disk) or to stdout.
type fileSink struct {
	cfg FileConfig
	f   *os.File
}

func newFileSink(cfg FileConfig, _ pipeline.Settings) (Sink, error) {
	if cfg.Path == "-" {
		return &fileSink{cfg: cfg, f: os.Stdout}, nil
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", cfg.Path, err)
	}
	return &fileSink{cfg: cfg, f: f}, nil
}

// FileLine is one line of a file sink.
type FileLine struct {
	// Time is when the line was written.
	Time       time.Time `json:"time"`
	Sink       string    `json:"sink"`
	DeliveryID string    `json:"delivery_id"`
	// Type is "anomaly" or "digest".
	Type string `json:"type"`
	// Payload is the alert in the sink's format (Anomaly v1, the digest document, or OCSF).
	Payload json.RawMessage `json:"payload"`
}

// Name implements Sink.
func (s *fileSink) Name() string { return s.cfg.Name }

// Send writes one line.
func (s *fileSink) Send(_ context.Context, a Alert) error {
	payload, err := render(s.cfg.Format, a)
	if err != nil {
		return Permanent(err)
	}
	// Marshal compacts the payload, so the line holds no newline but its last.
	line, err := json.Marshal(FileLine{Time: a.Time.UTC(), Sink: s.cfg.Name, DeliveryID: a.DeliveryID, Type: eventType(a), Payload: payload})
	if err != nil {
		return Permanent(fmt.Errorf("cannot encode line: %w", err))
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("cannot write to %s: %w", s.cfg.Name, err)
	}
	if s.f != os.Stdout {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("cannot sync %s: %w", s.cfg.Name, err)
		}
	}
	return nil
}

// Close closes the file (never stdout).
func (s *fileSink) Close() error {
	if s.f == os.Stdout {
		return nil
	}
	return s.f.Close()
}
