package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

const (
	// maxAgentBytes bounds an agent id; longer declarations are ignored.
	maxAgentBytes = 256
	// minRefreshInterval rate-limits JWKS reloads asked for by unknown key ids (or by tokens
	// arriving while no set could be loaded).
	minRefreshInterval = 30 * time.Second
	jwksFetchTimeout   = 10 * time.Second
)

// Request is what one HTTP request says about who sent it, each method's answer separately;
// FromRequest computes it once per request and Attribute picks from it per event.
type Request struct {
	// MTLS is the SPIFFE ID (URI SAN spiffe://…) of the verified client certificate, else its
	// subject common name.
	MTLS string
	// JWT is the configured claim of the bearer JWT; JWTVerified says whether the token's
	// signature, expiry, issuer and audience were verified.
	JWT         string
	JWTVerified bool
	// Header is the agent id declared in the agent-id header.
	Header string
	// Baggage is the agent id in the W3C baggage header.
	Baggage string
	// Instance hints which client instance sent the request: its IP address.
	Instance string
	// TraceID is the trace id of the request's traceparent header.
	TraceID string
}

// HasAgent reports whether any request-level method named an agent.
func (q Request) HasAgent() bool {
	return q.MTLS != "" || q.JWT != "" || q.Header != "" || q.Baggage != ""
}

// Resolver attributes requests to agents. It is safe for concurrent use. With a JWKS it is a
// component: Start begins reloading the key set, Shutdown stops it.
type Resolver struct {
	cfg       Config
	log       *slog.Logger
	jwt       *jwtVerifier
	useJWT    bool
	client    *http.Client
	refreshes *prometheus.CounterVec
	// minRefresh rate-limits reloads asked for by unknown key ids (minRefreshInterval); tests
	// shorten it before Start.
	minRefresh time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a resolver for cfg. A JWKS file is read now, so a bad one fails here.
func New(cfg Config, settings pipeline.Settings) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid identity config: %w", err)
	}
	cfg = cfg.WithDefaults()
	settings = settings.WithComponent("identity")
	r := &Resolver{
		cfg:        cfg,
		log:        settings.Logger,
		jwt:        newJWTVerifier(cfg.JWT),
		useJWT:     slices.Contains(cfg.Precedence, MethodJWT),
		minRefresh: minRefreshInterval,
		refreshes: pipeline.Register(settings.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_identity_jwks_loads_total",
			Help: "JWKS loads by result (ok, error).",
		}, []string{"result"})),
	}
	if cfg.JWT.JWKSFile != "" {
		ks, err := loadJWKS(context.Background(), nil, cfg.JWT.JWKSFile, "")
		if err != nil {
			return nil, fmt.Errorf("collector.identity.jwt.jwks_file: %w", err)
		}
		r.jwt.setKeys(ks)
	}
	if cfg.JWT.JWKSURL != "" {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		r.client = &http.Client{Transport: tr, Timeout: jwksFetchTimeout}
	}
	return r, nil
}

// Config is the resolver's configuration with defaults applied.
func (r *Resolver) Config() Config { return r.cfg }

// Start reloads the JWKS in the background (a URL is fetched at once). It returns at once.
func (r *Resolver) Start(_ context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("cannot start identity resolver: already started or shut down")
	}
	r.started = true
	if r.cfg.JWT.JWKSFile == "" && r.cfg.JWT.JWKSURL == "" {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.refreshLoop(ctx, r.done)
	return nil
}

// Shutdown stops reloading the JWKS. It is safe to call twice and without Start.
func (r *Resolver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("cannot stop JWKS refresh: %w", ctx.Err())
	}
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
	return nil
}

func (r *Resolver) refreshLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	var last time.Time
	if r.cfg.JWT.JWKSURL != "" {
		r.reload(ctx)
		last = time.Now()
	}
	tick := time.NewTicker(r.cfg.JWT.JWKSRefresh)
	defer tick.Stop()
	// pending fires when a reload asked for within the rate limit is allowed, so a new key is
	// fetched as soon as it may be, not only when a token asks again after the limit.
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-pending:
		case <-r.jwt.unknownKID:
			if wait := r.minRefresh - time.Since(last); wait > 0 {
				if pending == nil {
					pending = time.After(wait)
				}
				continue
			}
		}
		pending = nil // whatever reloads now answers it
		r.reload(ctx)
		last = time.Now()
	}
}

// reload replaces the key set; on failure the old one stays in use.
func (r *Resolver) reload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	ks, err := loadJWKS(ctx, r.client, r.cfg.JWT.JWKSFile, r.cfg.JWT.JWKSURL)
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.refreshes.WithLabelValues("error").Inc()
			r.log.Warn("cannot load JWKS; keeping the previous keys", "err", err)
		}
		return
	}
	r.refreshes.WithLabelValues("ok").Inc()
	r.jwt.setKeys(ks)
}

// Resolve attributes one HTTP request, given the clientInfo name the MCP client declared (""
// when unknown), and says which method did.
func (r *Resolver) Resolve(req *http.Request, clientInfoName string) (agentID, source string) {
	return r.Attribute(r.FromRequest(req), clientInfoName)
}

// FromRequest reads what every method says about an HTTP request. The bearer token is verified
// here (or found in the cache) and then forgotten; only the claim is kept.
func (r *Resolver) FromRequest(req *http.Request) Request {
	var q Request
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 && len(req.TLS.VerifiedChains[0]) > 0 {
		q.MTLS = CleanAgent(CertIdentity(req.TLS.VerifiedChains[0][0]))
	}
	if r.useJWT {
		if tok := bearerToken(req.Header.Get("Authorization")); tok != "" {
			q.JWT, q.JWTVerified = r.jwt.attribute(tok, time.Now())
			if !q.JWTVerified && r.cfg.JWT.IgnoreUnverified {
				q.JWT = ""
			}
		}
	}
	q.Header = CleanAgent(req.Header.Get(r.cfg.Header))
	if b := req.Header.Values("Baggage"); len(b) > 0 {
		q.Baggage = r.BaggageAgent(strings.Join(b, ","))
	}
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		q.Instance = host
	}
	q.TraceID, _ = jsonrpc.ParseTraceparent(req.Header.Get("Traceparent"))
	return q
}

// BaggageAgent returns the agent id in a W3C baggage value (from the header or from
// params._meta.baggage), or "".
func (r *Resolver) BaggageAgent(baggage string) string {
	return CleanAgent(BaggageValue(baggage, r.cfg.BaggageKey))
}

// Attribute picks the agent of a request by the configured precedence.
func (r *Resolver) Attribute(q Request, clientInfoName string) (agentID, source string) {
	for _, m := range r.cfg.Precedence {
		switch m {
		case MethodMTLS:
			if q.MTLS != "" {
				return q.MTLS, SourceMTLS
			}
		case MethodJWT:
			if q.JWT != "" {
				if q.JWTVerified {
					return q.JWT, SourceJWT
				}
				return q.JWT, SourceJWTUnverified
			}
		case MethodHeader:
			if q.Header != "" {
				return q.Header, SourceHeader
			}
		case MethodBaggage:
			if q.Baggage != "" {
				return q.Baggage, SourceBaggage
			}
		case MethodClientInfo:
			if name := CleanAgent(clientInfoName); name != "" {
				return name, SourceClientInfo
			}
		}
	}
	return UnknownAgent, SourceUnknown
}

// CertIdentity names a client certificate: its SPIFFE ID (a spiffe:// URI SAN), else its
// subject common name.
func CertIdentity(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") {
			return u.String()
		}
	}
	return cert.Subject.CommonName
}

// CleanAgent trims an agent id and rejects ("") one that is too long or not printable UTF-8:
// what any collector applies to an agent id a client declared.
func CleanAgent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxAgentBytes || !utf8.ValidString(s) {
		return ""
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return ""
	}
	return s
}
