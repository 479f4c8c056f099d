package identity

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Methods of attribution, as listed in Config.Precedence.
const (
	MethodMTLS       = "mtls"        // the verified client certificate of the TLS connection
	MethodJWT        = "jwt"         // a claim of the bearer JWT in Authorization
	MethodHeader     = "header"      // the agent-id request header
	MethodBaggage    = "baggage"     // an entry of the W3C baggage header (or params._meta.baggage)
	MethodClientInfo = "client_info" // the clientInfo name the MCP client declared
)

// Sources, as recorded in Event.AgentSource: the method that attributed the event, with a JWT
// whose signature, expiry, issuer or audience could not be verified recorded as jwt_unverified.
const (
	SourceMTLS          = MethodMTLS
	SourceJWT           = MethodJWT
	SourceJWTUnverified = "jwt_unverified"
	SourceHeader        = MethodHeader
	SourceBaggage       = MethodBaggage
	SourceClientInfo    = MethodClientInfo
	SourceUnknown       = "unknown"
)

// UnknownAgent is the agent id of events no method could attribute.
const UnknownAgent = "unknown"

// Defaults for Config fields left empty.
const (
	DefaultHeader      = "X-Mcpwatch-Agent"
	DefaultBaggageKey  = "agent.id"
	DefaultJWTClaim    = "sub"
	DefaultJWKSRefresh = 15 * time.Minute
	DefaultJWTLeeway   = 30 * time.Second
)

// DefaultPrecedence puts what a client can prove before what it merely declares.
var DefaultPrecedence = []string{MethodMTLS, MethodJWT, MethodHeader, MethodBaggage, MethodClientInfo}

var allMethods = []string{MethodMTLS, MethodJWT, MethodHeader, MethodBaggage, MethodClientInfo}

// Config configures agent attribution (the collector.identity section).
type Config struct {
	// Precedence orders the methods; the first that yields an agent id names the agent. Methods
	// left out are not used. Default [mtls, jwt, header, baggage, client_info].
	Precedence []string `yaml:"precedence"`
	// Header is the request header a client may use to declare its agent id.
	// Default X-Mcpwatch-Agent.
	Header string `yaml:"header"`
	// BaggageKey is the W3C baggage entry holding the agent id. Default agent.id.
	BaggageKey string `yaml:"baggage_key"`
	// JWT configures attribution by the bearer token in Authorization.
	JWT JWTConfig `yaml:"jwt"`
}

// JWTConfig configures bearer JWT attribution. Without a key source every token attributes as
// jwt_unverified.
type JWTConfig struct {
	// Claim names the agent: sub, azp, client_id or another string claim. Default sub.
	Claim string `yaml:"claim"`
	// JWKSFile is a JSON Web Key Set file (RSA, EC P-256/384/521 and Ed25519 keys) verifying
	// RS*, PS*, ES* and EdDSA tokens; it is re-read every JWKSRefresh.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is a JWKS endpoint, fetched at start, every JWKSRefresh, and when a token names a
	// key id it does not know or no set could be loaded yet (at most every 30s). It must be https:
	// anyone on the path of plain http could publish keys; http is accepted only to a loopback
	// host. Set JWKSFile or JWKSURL, not both.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is how often the key set is reloaded. Default 15m.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// HMACSecret verifies HS256/384/512 tokens; at least 32 bytes. Keep it out of the file:
	// hmac_secret: ${MCPWATCH_JWT_SECRET}.
	HMACSecret string `yaml:"hmac_secret"`
	// Issuer and Audience, when set, must match the token's iss and aud for it to be verified.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Leeway tolerates clock skew when checking exp, nbf and iat. Default 30s.
	Leeway time.Duration `yaml:"leeway"`
	// IgnoreUnverified skips tokens that cannot be verified, so the next method in the
	// precedence attributes the event, instead of attributing it as jwt_unverified.
	IgnoreUnverified bool `yaml:"ignore_unverified"`
}

var (
	headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// A baggage key is an RFC 7230 token, like a header name.
	baggageKeyToken = headerToken
)

// Validate reports every invalid field by its path under collector.identity. Empty fields are
// valid: they take their defaults.
func (c Config) Validate() error {
	const p = "collector.identity."
	var errs config.Errors
	for i, m := range c.Precedence {
		path := fmt.Sprintf(p+"precedence[%d]", i)
		switch {
		case !slices.Contains(allMethods, m):
			errs.Addf(path, "unknown method %q (want mtls, jwt, header, baggage or client_info)", m)
		case slices.Index(c.Precedence, m) != i:
			errs.Addf(path, "%q is listed twice", m)
		}
	}
	if c.Header != "" && !headerToken.MatchString(c.Header) {
		errs.Addf(p+"header", "must be a valid HTTP header name, got %q", c.Header)
	}
	if c.BaggageKey != "" && !baggageKeyToken.MatchString(c.BaggageKey) {
		errs.Addf(p+"baggage_key", "must be a valid baggage key (an RFC 7230 token), got %q", c.BaggageKey)
	}
	j := c.JWT
	if j.JWKSFile != "" && j.JWKSURL != "" {
		errs.Add(p+"jwt.jwks_url", "set jwks_file or jwks_url, not both")
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs.Add(p+"jwt.jwks_url", "must be an absolute https URL")
		case u.Scheme == "http" && !config.IsLoopbackHost(u.Hostname()):
			errs.Add(p+"jwt.jwks_url", "must be https (http only to localhost or a loopback IP): anyone on the network path could replace the keys")
		}
	}
	if j.HMACSecret != "" && len(j.HMACSecret) < 32 {
		errs.Add(p+"jwt.hmac_secret", "must be at least 32 bytes")
	}
	if j.JWKSRefresh < 0 {
		errs.Add(p+"jwt.jwks_refresh", "must not be negative")
	}
	if j.Leeway < 0 {
		errs.Add(p+"jwt.leeway", "must not be negative")
	}
	return errs.Err()
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.Precedence) == 0 {
		c.Precedence = slices.Clone(DefaultPrecedence)
	}
	if c.Header == "" {
		c.Header = DefaultHeader
	}
	if c.BaggageKey == "" {
		c.BaggageKey = DefaultBaggageKey
	}
	if c.JWT.Claim == "" {
		c.JWT.Claim = DefaultJWTClaim
	}
	if c.JWT.JWKSRefresh == 0 {
		c.JWT.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.JWT.Leeway == 0 {
		c.JWT.Leeway = DefaultJWTLeeway
	}
	return c
}

// Defaults for SessionsConfig fields left empty.
const (
	DefaultIdleGap = 15 * time.Minute
	DefaultMaxOpen = 10000
)

// SessionsConfig configures session stitching (the collector.sessions section).
type SessionsConfig struct {
	// IdleGap ends a stitched session: an operation more than IdleGap after the session's last
	// one starts a new session (unless it continues a trace seen in it). Default 15m.
	IdleGap time.Duration `yaml:"idle_gap"`
	// MaxOpen bounds the stitched sessions remembered at once; the least recently active is
	// forgotten first. Default 10000.
	MaxOpen int `yaml:"max_open"`
	// StateFile keeps open sessions across restarts: saved at shutdown, loaded at start.
	// Default data_dir/collector-sessions.json; with no data dir (a tap used as a library),
	// empty means not kept.
	StateFile string `yaml:"state_file"`
}

// Validate reports every invalid field by its path under collector.sessions.
func (c SessionsConfig) Validate() error {
	var errs config.Errors
	if c.IdleGap < 0 {
		errs.Add("collector.sessions.idle_gap", "must not be negative")
	}
	if c.MaxOpen < 0 {
		errs.Add("collector.sessions.max_open", "must not be negative")
	}
	return errs.Err()
}

// WithDefaults returns c with empty fields set to their defaults.
func (c SessionsConfig) WithDefaults() SessionsConfig {
	if c.IdleGap == 0 {
		c.IdleGap = DefaultIdleGap
	}
	if c.MaxOpen == 0 {
		c.MaxOpen = DefaultMaxOpen
	}
	return c
}
