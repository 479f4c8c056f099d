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
	"github.com/mcpwatch/mcpwatch/collector/ingest"
	"github.com/mcpwatch/mcpwatch/collector/otlp"
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

	// enricher reloads its policy and inventory on SIGHUP while stopSIGHUP is set.
	enricher   *enricher.Enricher
	stopSIGHUP func()

	// ingestAddr is the address of the listener serving event ingest, once it runs.
	ingestAddr func() string
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

	if a.runs(TargetWriter) || a.runs(TargetDetector) || a.runs(TargetAPI) || a.runs(TargetEnricher) || a.runs(TargetAlerting) {
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
	if a.enricher != nil && (a.cfg.Enricher.PolicyFile != "" || a.cfg.Enricher.InventoryFile != "") {
		a.stopSIGHUP = reloadOnSIGHUP(a.enricher.Reload, log)
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
		return alerting.New(a.cfg.Alerting, a.st, a.brokers, a.cfg.Bus, a.set)
	case TargetEnricher:
		e, err := enricher.New(a.cfg.Enricher, a.st, a.brokers, a.cfg.Bus, a.set)
		a.enricher = e
		return e, err
	case TargetAPI:
		// The detector's config decodes its baselines into agent profiles.
		srv, err := api.New(a.cfg.API, a.st, a.registry, a.readiness, a.set, api.WithDetectorConfig(a.cfg.Detector))
		a.apiSrv = srv
		return srv, err
	case TargetCollector:
		return a.collector()
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

// collector sets up the collector role: the event emitter (spooled under the data dir), the
// ingest endpoint, and the HTTP tap serving both MCP routes and ingest. Without upstreams the
// listener serves ingest alone, for `mcpwatch wrap`.
func (a *App) collector() (pipeline.Component, error) {
	em, err := bus.NewSpooledEventEmitter(a.brokers, a.cfg.Bus, a.cfg.Collector.Spool, a.set)
	if err != nil {
		return nil, err
	}
	if err := em.Start(context.Background()); err != nil {
		return nil, err
	}
	c := &collectorRole{emitter: em}
	fail := func(err error) (pipeline.Component, error) {
		_ = em.Shutdown(context.Background())
		return nil, err
	}
	var ing *ingest.Handler
	if !a.cfg.Collector.Ingest.Disabled {
		if ing, err = ingest.New(a.cfg.Collector.Ingest, em, a.set, ingest.WithCapture(a.cfg.Collector.captureConfig())); err != nil {
			return fail(err)
		}
	}
	switch {
	case len(a.cfg.Collector.HTTP.Upstreams) > 0:
		tap, err := httptap.New(a.cfg.Collector.TapConfig(), em, a.set)
		if err != nil {
			return fail(err)
		}
		if ing != nil {
			tap.Handle(ingest.Path, ing)
		}
		a.tap, a.ingestAddr = tap, tap.Addr
		c.listener = tap
	case ing != nil:
		a.set.Logger.Warn("no MCP upstreams configured: the collector listener serves only event ingest (pass --upstream URL or set collector.http.upstreams to tap an HTTP server)")
		listen := a.cfg.Collector.HTTP.Listen
		if listen == "" {
			listen = httptap.DefaultListen
		}
		// The same HTTPS and client certificates as the tap would have, so an operator's TLS
		// settings hold whether or not upstreams are configured.
		tc, err := httptap.ServerTLS(a.cfg.Collector.HTTP.TLS, a.set.WithComponent("ingest").Logger)
		if err != nil {
			return fail(err)
		}
		srv := ingest.NewServer(listen, ing, a.set, ingest.WithTLS(tc))
		a.ingestAddr = srv.Addr
		c.listener = srv
	default:
		a.set.Logger.Warn("no MCP upstreams configured and ingest disabled: the collector listens nowhere")
	}
	if a.cfg.Collector.OTLP.Enabled {
		if c.otlp, err = otlp.New(a.cfg.Collector.OTLPConfig(), em, a.set); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// collectorRole shuts its listener down before the emitter, so every event the collectors
// accepted is in the emitter's spool (and produced, if the broker takes it in time) before the
// process exits.
type collectorRole struct {
	listener pipeline.Component // the HTTP tap or the ingest-only server; may be nil
	otlp     *otlp.Receiver     // the OTLP receiver, when enabled; may be nil
	emitter  *bus.EventEmitter
}

func (c *collectorRole) Start(ctx context.Context) error {
	if c.listener != nil {
		if err := c.listener.Start(ctx); err != nil {
			return err
		}
	}
	if c.otlp != nil {
		if err := c.otlp.Start(ctx); err != nil {
			if c.listener != nil {
				_ = c.listener.Shutdown(ctx)
			}
			return err
		}
	}
	return nil
}

func (c *collectorRole) Shutdown(ctx context.Context) error {
	var errs []error
	if c.listener != nil {
		errs = append(errs, c.listener.Shutdown(ctx))
	}
	if c.otlp != nil {
		errs = append(errs, c.otlp.Shutdown(ctx))
	}
	return errors.Join(append(errs, c.emitter.Shutdown(ctx))...)
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
	if a.stopSIGHUP != nil {
		a.stopSIGHUP()
		a.stopSIGHUP = nil
	}
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

// IngestURL is the event ingest endpoint's URL (on the tap's listener, or on a listener of its
// own without upstreams; https when collector.http.tls has a certificate), or "" when it is
// not running.
func (a *App) IngestURL() string {
	if a.ingestAddr == nil || a.cfg.Collector.Ingest.Disabled {
		return ""
	}
	addr := a.ingestAddr()
	if addr == "" {
		return ""
	}
	scheme := "http://"
	if a.cfg.Collector.HTTP.TLS.CertFile != "" {
		scheme = "https://"
	}
	return scheme + addr + ingest.Path
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
