package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/collector/httptap"
	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/enricher"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Targets (roles) a process can run.
const (
	TargetCollector = "collector"
	TargetEnricher  = "enricher"
	TargetDetector  = "detector"
	TargetWriter    = "writer"
	TargetAlerting  = "alerting"
	TargetAPI       = "api"
	TargetAll       = "all"
)

// AllTargets in start order: consumers before the API, the tap last, so that by the time the
// tap accepts a call everything behind it is running. Shutdown runs in reverse.
var AllTargets = []string{TargetWriter, TargetDetector, TargetAlerting, TargetEnricher, TargetAPI, TargetCollector}

// ParseTargets turns "all" or a comma-separated list into targets in start order.
func ParseTargets(spec string) ([]string, error) {
	if spec == "" || spec == TargetAll {
		return slices.Clone(AllTargets), nil
	}
	var out []string
	for _, t := range strings.Split(spec, ",") {
		t = strings.TrimSpace(t)
		if t == TargetAll {
			return slices.Clone(AllTargets), nil
		}
		if !slices.Contains(AllTargets, t) {
			return nil, fmt.Errorf("-target: unknown target %q (want all or a list of %s)", t, strings.Join(AllTargets, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(AllTargets, a) - slices.Index(AllTargets, b) })
	return out, nil
}

// App is a running set of targets and what they depend on.
type App struct {
	cfg      Config
	targets  []string
	set      pipeline.Settings
	registry *prometheus.Registry

	broker  *bus.Embedded
	brokers []string
	st      store.Store
	lag     *bus.LagCollector
	started []namedComponent
	tap     *httptap.Tap
	apiSrv  *api.Server
	ready   atomic.Bool
}

type namedComponent struct {
	name string
	c    pipeline.Component
}

// New prepares an App; Start runs it.
func New(cfg Config, targets []string, logger *slog.Logger) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{
		cfg:      cfg,
		targets:  targets,
		set:      pipeline.Settings{Logger: logger, Registry: reg},
		registry: reg,
	}
}

func (a *App) runs(t string) bool { return slices.Contains(a.targets, t) }

// Start brings up dependencies and targets. On error, whatever started is shut down.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Shutdown(shutdownCtx)
		}
	}()
	log := a.set.Logger
	if err := EnsureDataDir(a.cfg.DataDir); err != nil {
		return err
	}

	a.brokers = a.cfg.Bus.Brokers
	if len(a.brokers) == 0 {
		a.broker, err = bus.StartEmbedded(a.cfg.Bus.Embedded.Port, filepath.Join(a.cfg.DataDir, "kafka"), log.With("component", "broker"))
		if err != nil {
			return err
		}
		a.brokers = a.broker.Brokers()
	}
	if err := bus.EnsureTopics(ctx, a.brokers, a.cfg.Bus); err != nil {
		return err
	}
	a.lag = bus.NewLagCollector(a.brokers, a.consumerGroups(), log.With("component", "lag"))
	a.registry.MustRegister(a.lag)

	if a.runs(TargetWriter) || a.runs(TargetDetector) || a.runs(TargetAPI) {
		if a.st, err = store.Open(ctx, a.cfg.Store, a.set); err != nil {
			return fmt.Errorf("cannot open store: %w", err)
		}
		if err := a.st.Migrate(ctx); err != nil {
			return fmt.Errorf("cannot migrate store: %w", err)
		}
	}

	for _, t := range a.targets {
		c, err := a.component(t)
		if err != nil {
			return fmt.Errorf("cannot set up %s: %w", t, err)
		}
		if c == nil {
			continue
		}
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("cannot start %s: %w", t, err)
		}
		a.started = append(a.started, namedComponent{t, c})
		log.Debug("started", "target", t)
	}
	a.ready.Store(true)
	log.Info("mcpwatch running", "targets", strings.Join(a.targets, ","), "brokers", a.brokers, "store", a.cfg.Store.Backend)
	return nil
}

func (a *App) component(target string) (pipeline.Component, error) {
	switch target {
	case TargetWriter:
		return store.NewWriter(a.cfg.Writer, a.st, a.brokers, a.cfg.Bus, a.set), nil
	case TargetDetector:
		return detector.New(a.cfg.Detector, a.st, a.brokers, a.cfg.Bus, a.set)
	case TargetAlerting:
		return alerting.New(a.cfg.Alerting, a.brokers, a.cfg.Bus, a.set)
	case TargetEnricher:
		return enricher.New(a.cfg.Enricher, a.brokers, a.cfg.Bus, a.set)
	case TargetAPI:
		srv, err := api.New(a.cfg.API, a.st, a.registry, a.readiness, a.set)
		a.apiSrv = srv
		return srv, err
	case TargetCollector:
		if len(a.cfg.Collector.HTTP.Upstreams) == 0 {
			a.set.Logger.Warn("no MCP upstreams configured: the HTTP tap is not started (pass --upstream URL or set collector.http.upstreams)")
			return nil, nil
		}
		em := bus.NewEventEmitter(a.brokers, a.cfg.Bus, a.set)
		if err := em.Start(context.Background()); err != nil {
			return nil, err
		}
		tap, err := httptap.New(a.cfg.Collector.HTTP, em, a.set)
		if err != nil {
			_ = em.Shutdown(context.Background())
			return nil, err
		}
		a.tap = tap
		return &tapWithEmitter{tap: tap, emitter: em}, nil
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

// tapWithEmitter shuts the tap down before its emitter, so every event the tap accepted is
// produced before the process exits.
type tapWithEmitter struct {
	tap     *httptap.Tap
	emitter *bus.EventEmitter
}

func (t *tapWithEmitter) Start(ctx context.Context) error { return t.tap.Start(ctx) }
func (t *tapWithEmitter) Shutdown(ctx context.Context) error {
	return errors.Join(t.tap.Shutdown(ctx), t.emitter.Shutdown(ctx))
}

func (a *App) consumerGroups() map[string][]string {
	groups := map[string][]string{}
	if a.runs(TargetEnricher) {
		groups[enricher.Group] = []string{bus.TopicEvents}
	}
	if a.runs(TargetDetector) {
		groups[detector.Group] = []string{bus.TopicEventsEnriched}
	}
	if a.runs(TargetWriter) {
		groups[store.WriterGroup] = []string{bus.TopicEventsEnriched, bus.TopicAnomalies}
	}
	if a.runs(TargetAlerting) {
		groups[alerting.Group] = []string{bus.TopicAnomalies}
	}
	return groups
}

func (a *App) readiness() error {
	if !a.ready.Load() {
		return errors.New("starting")
	}
	return nil
}

// Shutdown stops targets in reverse start order, then the store and the embedded broker.
// Safe to call twice.
func (a *App) Shutdown(ctx context.Context) error {
	a.ready.Store(false)
	var errs []error
	for i := len(a.started) - 1; i >= 0; i-- {
		n := a.started[i]
		if err := n.c.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
		}
	}
	a.started = nil
	if a.lag != nil {
		a.registry.Unregister(a.lag)
		a.lag.Close()
		a.lag = nil
	}
	if a.st != nil {
		errs = append(errs, a.st.Close())
		a.st = nil
	}
	a.broker.Close()
	a.broker = nil
	return errors.Join(errs...)
}

// Brokers are the bus addresses in use (the embedded broker's when it runs).
func (a *App) Brokers() []string { return a.brokers }

// TapAddr is the HTTP tap's listening address, or "" when it is not running.
func (a *App) TapAddr() string {
	if a.tap == nil {
		return ""
	}
	return a.tap.Addr()
}

// APIAddr is the API's listening address, or "" when it is not running.
func (a *App) APIAddr() string {
	if a.apiSrv == nil {
		return ""
	}
	return a.apiSrv.Addr()
}

// Registry is the process's metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.registry }
