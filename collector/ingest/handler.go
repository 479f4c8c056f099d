package ingest

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TryEmitter is an emitter that says when it could not take an event (bus.EventEmitter is one).
// With a plain pipeline.EventEmitter every event counts as taken.
type TryEmitter interface {
	TryEmit(schemas.Event) error
}

// Handler serves the ingest endpoint.
type Handler struct {
	cfg     Config
	emitter pipeline.EventEmitter
	log     *slog.Logger
	capture *capture.Policy // nil: content passes as the sender built it

	requests *prometheus.CounterVec
	events   prometheus.Counter
	badLines prometheus.Counter
}

// Option configures a Handler.
type Option func(*Handler) error

// WithCapture holds the content of ingested events to the operator's capture policy (the
// collector's capture rules and caps) rather than to whatever the sender decided: `mcpwatch
// wrap` and other collectors build content by their own, default, policy.
func WithCapture(cfg capture.Config) Option {
	return func(h *Handler) error {
		p, err := capture.New(cfg)
		h.capture = p
		return err
	}
}

// New returns the ingest handler for cfg, handing events to emitter.
func New(cfg Config, emitter pipeline.EventEmitter, set pipeline.Settings, opts ...Option) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid ingest config: %w", err)
	}
	if emitter == nil {
		return nil, errors.New("cannot create ingest handler: no event emitter")
	}
	cfg.SetDefaults()
	set = set.WithComponent("ingest")
	h := &Handler{
		cfg:     cfg,
		emitter: emitter,
		log:     set.Logger,
		requests: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_ingest_requests_total", Help: "Requests to the ingest endpoint, by HTTP status.",
		}, []string{"code"})),
		events: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_ingest_events_total", Help: "Events accepted by the ingest endpoint.",
		})),
		badLines: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_ingest_rejected_lines_total", Help: "Lines of ingest requests that were not valid Event v1.",
		})),
	}
	for _, opt := range opts {
		if err := opt(h); err != nil {
			return nil, fmt.Errorf("invalid ingest config: %w", err)
		}
	}
	return h, nil
}

// LineError names a rejected line of a request (1-based).
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Response is the JSON body of every answer.
type Response struct {
	Accepted int         `json:"accepted"`
	Error    string      `json:"error,omitempty"`
	Lines    []LineError `json:"lines,omitempty"`
}

// maxLineErrors bounds the line errors one answer lists.
const maxLineErrors = 100

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, resp := h.serve(w, r)
	h.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, Response) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, Response{Error: "use POST"}
	}
	if h.cfg.Token != "" {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(h.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch ingest"`)
			return http.StatusUnauthorized, Response{Error: "missing or wrong bearer token"}
		}
	}
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/x-ndjson", "application/jsonl", "application/json":
	default:
		return http.StatusUnsupportedMediaType, Response{Error: "Content-Type must be application/x-ndjson"}
	}

	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), int(h.cfg.MaxBodyBytes))
	var (
		events []schemas.Event
		bad    []LineError
	)
	for line := 1; sc.Scan(); line++ {
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		ev, err := parseEvent(data)
		if err != nil {
			h.badLines.Inc()
			if len(bad) < maxLineErrors {
				bad = append(bad, LineError{Line: line, Error: err.Error()})
			}
			continue
		}
		if h.capture != nil && ev.Content != nil {
			ev.Content = h.capture.Decide(ev.ServerID, ev.Method, ev.Target).Reapply(ev.Content)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		// A line longer than the scanner's buffer, MaxBodyBytes, makes the body too large too.
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, bufio.ErrTooLong) {
			return http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)}
		}
		return http.StatusBadRequest, Response{Error: "cannot read body: " + err.Error()}
	}
	if len(bad) > 0 {
		h.log.Debug("ingest batch rejected", "bad_lines", len(bad), "good_lines", len(events))
		return http.StatusBadRequest, Response{
			Error: fmt.Sprintf("%d line(s) are not valid Event v1; nothing was accepted", len(bad)),
			Lines: bad,
		}
	}

	try, canTry := h.emitter.(TryEmitter)
	for i, ev := range events {
		if !canTry {
			h.emitter.Emit(ev)
			continue
		}
		if err := try.TryEmit(ev); err != nil {
			h.events.Add(float64(i))
			w.Header().Set("Retry-After", "1")
			return http.StatusServiceUnavailable, Response{Accepted: i, Error: "cannot take events now: " + err.Error()}
		}
	}
	h.events.Add(float64(len(events)))
	return http.StatusOK, Response{Accepted: len(events)}
}

// parseEvent checks one line against the Event v1 schema and decodes it.
func parseEvent(data []byte) (schemas.Event, error) {
	if err := schemas.ValidateEventJSON(data); err != nil {
		return schemas.Event{}, err
	}
	var ev schemas.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return schemas.Event{}, fmt.Errorf("invalid event v1: %w", err)
	}
	return ev, nil
}
