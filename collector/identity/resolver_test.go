package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "0123456789abcdef0123456789abcdef-test"

// logBuffer collects a resolver's logs so tests can check no token reaches them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newResolver(t *testing.T, cfg Config) (*Resolver, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	r, err := New(cfg, pipeline.Settings{
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, r.Shutdown(context.Background()))
	})
	return r, logs
}

func request(headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestAttributePrecedence(t *testing.T) {
	all := Request{MTLS: "spiffe://corp/agent/a", JWT: "jwt-agent", JWTVerified: true, Header: "hdr-agent", Baggage: "bag-agent"}
	tests := []struct {
		name       string
		precedence []string
		req        Request
		clientInfo string
		wantAgent  string
		wantSource string
	}{
		{"mtls first by default", nil, all, "cli", "spiffe://corp/agent/a", SourceMTLS},
		{"jwt after mtls", nil, Request{JWT: "jwt-agent", JWTVerified: true, Header: "h"}, "cli", "jwt-agent", SourceJWT},
		{"unverified jwt is marked", nil, Request{JWT: "jwt-agent", Header: "h"}, "cli", "jwt-agent", SourceJWTUnverified},
		{"header before baggage", nil, Request{Header: "h", Baggage: "b"}, "cli", "h", SourceHeader},
		{"baggage before client info", nil, Request{Baggage: "b"}, "cli", "b", SourceBaggage},
		{"client info last", nil, Request{}, "cli", "cli", SourceClientInfo},
		{"nothing", nil, Request{}, "", UnknownAgent, SourceUnknown},
		{"configured order", []string{MethodClientInfo, MethodHeader}, all, "cli", "cli", SourceClientInfo},
		{"methods left out are not used", []string{MethodHeader}, Request{MTLS: "m", JWT: "j", Baggage: "b"}, "cli", UnknownAgent, SourceUnknown},
		{"bad client info is ignored", nil, Request{}, "bad\x00name", UnknownAgent, SourceUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newResolver(t, Config{Precedence: tt.precedence})
			agent, source := r.Attribute(tt.req, tt.clientInfo)
			require.Equal(t, tt.wantAgent, agent)
			require.Equal(t, tt.wantSource, source)
		})
	}
}

func TestFromRequestHeadersAndBaggage(t *testing.T) {
	r, _ := newResolver(t, Config{Header: "X-Agent", BaggageKey: "agent.id"})
	req := request(map[string]string{
		"X-Agent":     "  billing-bot ",
		"Baggage":     "userId=alice, agent.id=ops%20bot;prop=1,other=x",
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})
	req.RemoteAddr = "10.1.2.3:5555"
	q := r.FromRequest(req)
	require.Equal(t, Request{Header: "billing-bot", Baggage: "ops bot", Instance: "10.1.2.3", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}, q)
	require.True(t, q.HasAgent())

	agent, source := r.Resolve(req, "cli")
	require.Equal(t, "billing-bot", agent)
	require.Equal(t, SourceHeader, source)

	// Several baggage headers are one list; an over-long agent id is ignored.
	req = request(map[string]string{"X-Agent": strings.Repeat("a", 300)})
	req.Header.Add("Baggage", "a=1")
	req.Header.Add("Baggage", "agent.id=second")
	q = r.FromRequest(req)
	require.Empty(t, q.Header)
	require.Equal(t, "second", q.Baggage)
}

func TestBaggageValue(t *testing.T) {
	tests := []struct{ baggage, key, want string }{
		{"agent.id=a", "agent.id", "a"},
		{" k = v ; p , agent.id = b%2Fc ", "agent.id", "b/c"},
		{"agent.idx=a", "agent.id", ""},
		{"agent.id=%zz", "agent.id", ""},
		{"agent.id", "agent.id", ""},
		{"", "agent.id", ""},
		{"agent.id=" + strings.Repeat("x", maxBaggageBytes), "agent.id", ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, BaggageValue(tt.baggage, tt.key), tt.baggage)
	}
}

// TestMTLS attributes requests over real TLS connections by their verified client certificate.
func TestMTLS(t *testing.T) {
	ca := identitytest.NewCA(t, "agents-ca")
	other := identitytest.NewCA(t, "other-ca")
	r, _ := newResolver(t, Config{})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		agent, source := r.Resolve(req, "cli")
		_ = json.NewEncoder(w).Encode([]string{agent, source})
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t).TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	srv.StartTLS()
	defer srv.Close()

	tests := []struct {
		name       string
		cert       *identitytest.Leaf
		wantAgent  string
		wantSource string
		force      bool // send the certificate even when the server does not ask for its CA
		wantErr    bool
	}{
		{name: "spiffe id", cert: ptr(ca.Client(t, "ignored-cn", "spiffe://corp.example/ns/prod/sa/billing")), wantAgent: "spiffe://corp.example/ns/prod/sa/billing", wantSource: SourceMTLS},
		{name: "common name", cert: ptr(ca.Client(t, "billing-bot", "")), wantAgent: "billing-bot", wantSource: SourceMTLS},
		{name: "no certificate", wantAgent: "cli", wantSource: SourceClientInfo},
		// The client does not offer a certificate the server's CA list excludes…
		{name: "certificate from another CA", cert: ptr(other.Client(t, "intruder", "")), wantAgent: "cli", wantSource: SourceClientInfo},
		// …and when it insists, the handshake fails.
		{name: "certificate from another CA forced", cert: ptr(other.Client(t, "intruder", "")), force: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: ca.Pool()}
			if tt.cert != nil {
				cfg.Certificates = []tls.Certificate{tt.cert.TLS}
				if tt.force {
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tt.cert.TLS, nil }
				}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			defer client.CloseIdleConnections()
			resp, err := client.Get(srv.URL)
			if tt.wantErr {
				require.Error(t, err, "the TLS handshake refuses an unknown CA")
				return
			}
			require.NoError(t, err)
			defer resp.Body.Close()
			var got []string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			require.Equal(t, []string{tt.wantAgent, tt.wantSource}, got)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestJWT(t *testing.T) {
	rsaKey := identitytest.NewRSA(t, "rsa-1")
	ecKey := identitytest.NewES256(t, "ec-1")
	edKey := identitytest.NewEd25519(t, "ed-1")
	noKID := identitytest.NewRSA(t, "")
	stranger := identitytest.NewRSA(t, "rsa-1") // same kid, different key: a forged token

	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, identitytest.JWKS(t, rsaKey, ecKey, edKey, noKID), 0o600))
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(identitytest.JWKS(t, rsaKey, ecKey, edKey, noKID))
	}))
	defer jwksSrv.Close()

	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()
	claims := func(extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "agent-sub", "azp": "agent-azp", "client_id": "agent-cid", "exp": future, "iss": "https://idp.example", "aud": "mcp"}
		for i := 0; i < len(extra); i += 2 {
			if extra[i+1] == nil {
				delete(c, extra[i].(string))
			} else {
				c[extra[i].(string)] = extra[i+1]
			}
		}
		return c
	}
	hmacCfg := JWTConfig{HMACSecret: secret}
	fileCfg := JWTConfig{JWKSFile: jwksFile}
	urlCfg := JWTConfig{JWKSURL: jwksSrv.URL}

	tests := []struct {
		name       string
		cfg        JWTConfig
		token      string
		wantAgent  string
		wantSource string
	}{
		{"hmac", hmacCfg, identitytest.SignHMAC(t, secret, claims()), "agent-sub", SourceJWT},
		{"hmac azp claim", JWTConfig{HMACSecret: secret, Claim: "azp"}, identitytest.SignHMAC(t, secret, claims()), "agent-azp", SourceJWT},
		{"hmac client_id claim", JWTConfig{HMACSecret: secret, Claim: "client_id"}, identitytest.SignHMAC(t, secret, claims()), "agent-cid", SourceJWT},
		{"hmac wrong secret", hmacCfg, identitytest.SignHMAC(t, strings.Repeat("x", 40), claims()), "agent-sub", SourceJWTUnverified},
		{"hmac expired", hmacCfg, identitytest.SignHMAC(t, secret, claims("exp", past)), "agent-sub", SourceJWTUnverified},
		{"hmac not yet valid", hmacCfg, identitytest.SignHMAC(t, secret, claims("nbf", future)), "agent-sub", SourceJWTUnverified},
		{"hmac issued in the future", hmacCfg, identitytest.SignHMAC(t, secret, claims("iat", future)), "agent-sub", SourceJWTUnverified},
		{"hmac issued within the leeway", hmacCfg, identitytest.SignHMAC(t, secret, claims("iat", time.Now().Add(10*time.Second).Unix())), "agent-sub", SourceJWT},
		{"hmac issued in the past", hmacCfg, identitytest.SignHMAC(t, secret, claims("iat", past)), "agent-sub", SourceJWT},
		{"hmac without exp", hmacCfg, identitytest.SignHMAC(t, secret, claims("exp", nil)), "agent-sub", SourceJWT},
		{"rs256 from file", fileCfg, rsaKey.Sign(t, claims()), "agent-sub", SourceJWT},
		{"es256 from file", fileCfg, ecKey.Sign(t, claims()), "agent-sub", SourceJWT},
		{"eddsa from file", fileCfg, edKey.Sign(t, claims()), "agent-sub", SourceJWT},
		{"no kid tries every key", fileCfg, noKID.Sign(t, claims()), "agent-sub", SourceJWT},
		{"rs256 from url", urlCfg, rsaKey.Sign(t, claims()), "agent-sub", SourceJWT},
		{"es256 from url", urlCfg, ecKey.Sign(t, claims()), "agent-sub", SourceJWT},
		{"forged signature", urlCfg, stranger.Sign(t, claims()), "agent-sub", SourceJWTUnverified},
		{"rsa expired", urlCfg, rsaKey.Sign(t, claims("exp", past)), "agent-sub", SourceJWTUnverified},
		{"hmac token with only a JWKS", fileCfg, identitytest.SignHMAC(t, secret, claims()), "agent-sub", SourceJWTUnverified},
		{"rsa token with only a secret", hmacCfg, rsaKey.Sign(t, claims()), "agent-sub", SourceJWTUnverified},
		{"issuer matches", JWTConfig{HMACSecret: secret, Issuer: "https://idp.example", Audience: "mcp"}, identitytest.SignHMAC(t, secret, claims()), "agent-sub", SourceJWT},
		{"issuer differs", JWTConfig{HMACSecret: secret, Issuer: "https://other"}, identitytest.SignHMAC(t, secret, claims()), "agent-sub", SourceJWTUnverified},
		{"audience differs", JWTConfig{HMACSecret: secret, Audience: "other"}, identitytest.SignHMAC(t, secret, claims()), "agent-sub", SourceJWTUnverified},
		{"nothing to verify with", JWTConfig{}, rsaKey.Sign(t, claims()), "agent-sub", SourceJWTUnverified},
		{"claim missing", hmacCfg, identitytest.SignHMAC(t, secret, claims("sub", nil)), "hdr", SourceHeader},
		{"claim not a string", hmacCfg, identitytest.SignHMAC(t, secret, claims("sub", 42)), "hdr", SourceHeader},
		{"unverified ignored", JWTConfig{HMACSecret: secret, IgnoreUnverified: true}, identitytest.SignHMAC(t, "wrong-secret-wrong-secret-wrong-secret", claims()), "hdr", SourceHeader},
		{"not a jwt", hmacCfg, "opaque-token", "hdr", SourceHeader},
		{"garbage jwt", hmacCfg, "a.b.c", "hdr", SourceHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, logs := newResolver(t, Config{JWT: tt.cfg})
			if tt.cfg.JWKSURL != "" {
				require.Eventually(t, func() bool { return r.jwt.keys.Load() != nil }, 5*time.Second, 5*time.Millisecond)
			}
			h := bearer(tt.token)
			h[DefaultHeader] = "hdr"
			for range 2 { // the second time from the cache
				agent, source := r.Resolve(request(h), "cli")
				require.Equal(t, tt.wantAgent, agent)
				require.Equal(t, tt.wantSource, source)
			}
			require.NotContains(t, logs.String(), tt.token)
		})
	}
}

func TestJWTCachedTokenExpires(t *testing.T) {
	r, _ := newResolver(t, Config{JWT: JWTConfig{HMACSecret: secret, Leeway: time.Second}})
	tok := identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(2 * time.Second).Unix()})
	agent, verified := r.jwt.attribute(tok, time.Now())
	require.Equal(t, "a", agent)
	require.True(t, verified)
	_, verified = r.jwt.attribute(tok, time.Now().Add(4*time.Second))
	require.False(t, verified, "the cached verification does not outlive the token")
	require.Len(t, r.jwt.cache, 1)
	for k := range r.jwt.cache {
		require.NotContains(t, string(k[:]), tok)
	}
}

// TestJWTEarlyTokenVerifiedOnceValid: a genuine token presented before its nbf (or iat) is unverified,
// but that failure is not cached past the nbf (with an HMAC secret nothing else empties the
// cache), and the verification then cached still ends at the token's exp.
func TestJWTEarlyTokenVerifiedOnceValid(t *testing.T) {
	r, _ := newResolver(t, Config{JWT: JWTConfig{HMACSecret: secret, Leeway: time.Second}})
	t0 := time.Now().Truncate(time.Second)
	nbf, exp := t0.Add(time.Hour), t0.Add(2*time.Hour)
	tok := identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "a", "nbf": nbf.Unix(), "exp": exp.Unix()})
	for _, step := range []struct {
		at   time.Time
		want bool
	}{
		{t0, false},
		{nbf.Add(-2 * time.Second), false}, // still early, from the cache
		{nbf.Add(-time.Second), true},      // within the leeway
		{nbf.Add(time.Minute), true},
		{exp.Add(time.Second), true},
		{exp.Add(2 * time.Second), false},
	} {
		agent, verified := r.jwt.attribute(tok, step.at)
		require.Equal(t, "a", agent)
		require.Equal(t, step.want, verified, "at %s", step.at.Sub(t0))
	}

	// The same for a token issued in the future; with nbf and iat both ahead, the later counts.
	for name, c := range map[string]jwt.MapClaims{
		"iat":       {"sub": "a", "iat": nbf.Unix(), "exp": exp.Unix()},
		"nbf < iat": {"sub": "a", "nbf": nbf.Add(-time.Minute).Unix(), "iat": nbf.Unix(), "exp": exp.Unix()},
		"iat < nbf": {"sub": "a", "iat": nbf.Add(-time.Minute).Unix(), "nbf": nbf.Unix(), "exp": exp.Unix()},
	} {
		r, _ := newResolver(t, Config{JWT: JWTConfig{HMACSecret: secret, Leeway: time.Second}})
		tok := identitytest.SignHMAC(t, secret, c)
		for _, step := range []struct {
			at   time.Time
			want bool
		}{
			{t0, false},
			{nbf.Add(-2 * time.Minute), false},
			{nbf.Add(-2 * time.Second), false},
			{nbf.Add(-time.Second), true},
		} {
			_, verified := r.jwt.attribute(tok, step.at)
			require.Equal(t, step.want, verified, "%s: at %s", name, step.at.Sub(t0))
		}
	}

	// A token also failing otherwise stays unverified once it is no longer early.
	r, _ = newResolver(t, Config{JWT: JWTConfig{HMACSecret: secret, Issuer: "https://idp.example"}})
	tok = identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "a", "nbf": nbf.Unix(), "iss": "https://other"})
	for _, at := range []time.Time{t0, nbf, nbf.Add(time.Minute)} {
		_, verified := r.jwt.attribute(tok, at)
		require.False(t, verified)
	}
	require.Len(t, r.jwt.cache, 1)
	for _, res := range r.jwt.cache {
		require.True(t, res.recheckAt.IsZero(), "a failure that no longer depends on the time is kept")
	}
}

// TestJWKSRotation: a token signed by a key the set does not know yet is unverified, makes the
// resolver fetch the set again, and is verified once the new key is published.
func TestJWKSRotation(t *testing.T) {
	oldKey, newKey := identitytest.NewRSA(t, "old"), identitytest.NewES256(t, "new")
	var mu sync.Mutex
	published := identitytest.JWKS(t, oldKey)
	fetches := 0
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		_, _ = w.Write(published)
	}))
	defer jwksSrv.Close()

	r, err := New(Config{JWT: JWTConfig{JWKSURL: jwksSrv.URL}}, pipeline.Settings{})
	require.NoError(t, err)
	r.minRefresh = 0
	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return r.jwt.keys.Load() != nil }, 5*time.Second, 5*time.Millisecond)

	_, source := r.Resolve(request(bearer(oldKey.Sign(t, jwt.MapClaims{"sub": "a"}))), "")
	require.Equal(t, SourceJWT, source)
	tok := newKey.Sign(t, jwt.MapClaims{"sub": "b"})
	_, source = r.Resolve(request(bearer(tok)), "")
	require.Equal(t, SourceJWTUnverified, source)

	mu.Lock()
	published = identitytest.JWKS(t, oldKey, newKey)
	mu.Unlock()
	require.Eventually(t, func() bool {
		_, source = r.Resolve(request(bearer(tok)), "")
		return source == SourceJWT
	}, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.GreaterOrEqual(t, fetches, 2)
	mu.Unlock()
}

// jwksServer serves the key set published, or HTTP 503 while it is nil, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu        sync.Mutex
	published []byte
	fetches   int
}

func newJWKSServer(t *testing.T, published []byte) *jwksServer {
	s := &jwksServer{published: published}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		if s.published == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(s.published)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(keys []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = keys
}

func (s *jwksServer) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// startRateLimited starts a resolver on the JWKS URL whose reloads asked for by tokens are at
// most every 200ms (instead of 30s); the periodic refresh is left at 15m, out of the way.
func startRateLimited(t *testing.T, url string, reg *prometheus.Registry) *Resolver {
	r, err := New(Config{JWT: JWTConfig{JWKSURL: url}}, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	r.minRefresh = 200 * time.Millisecond
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

// TestJWKSRotationRateLimited: a token with a new key id seen within the rate limit is not
// dropped: the set is fetched again as soon as the limit allows, without another token asking,
// and the token's unverified result was not cached, so it verifies then.
func TestJWKSRotationRateLimited(t *testing.T) {
	oldKey, newKey := identitytest.NewRSA(t, "old"), identitytest.NewES256(t, "new")
	srv := newJWKSServer(t, identitytest.JWKS(t, oldKey))
	r := startRateLimited(t, srv.URL, prometheus.NewRegistry())
	require.Eventually(t, func() bool { return r.jwt.keys.Load() != nil }, 5*time.Second, time.Millisecond)

	srv.publish(identitytest.JWKS(t, oldKey, newKey))
	tok := newKey.Sign(t, jwt.MapClaims{"sub": "b"})
	_, source := r.Resolve(request(bearer(tok)), "") // within 200ms of the first fetch
	require.Equal(t, SourceJWTUnverified, source)
	r.jwt.mu.Lock()
	require.Empty(t, r.jwt.cache, "an unknown key id is not a final answer")
	r.jwt.mu.Unlock()

	require.Eventually(t, func() bool { return srv.fetchCount() == 2 }, 5*time.Second, 5*time.Millisecond,
		"the refetch asked for within the rate limit happens once it is allowed")
	require.Eventually(t, func() bool { return len(r.jwt.keys.Load().byKID) == 2 }, 5*time.Second, time.Millisecond)
	_, source = r.Resolve(request(bearer(tok)), "")
	require.Equal(t, SourceJWT, source)
}

// TestJWKSURLDownAtStart: tokens arriving while no key set could be loaded ask for it again
// (rate-limited), so once the endpoint recovers tokens verify without waiting for jwks_refresh.
func TestJWKSURLDownAtStart(t *testing.T) {
	key := identitytest.NewRSA(t, "k")
	srv := newJWKSServer(t, nil)
	reg := prometheus.NewRegistry()
	r := startRateLimited(t, srv.URL, reg)
	require.Eventually(t, func() bool {
		return testCounter(t, reg, "mcpwatch_identity_jwks_loads_total", "error") == 1
	}, 5*time.Second, time.Millisecond)

	tok := key.Sign(t, jwt.MapClaims{"sub": "a"})
	_, source := r.Resolve(request(bearer(tok)), "")
	require.Equal(t, SourceJWTUnverified, source)
	// The refetch it asked for fails too: the result is still not cached.
	require.Eventually(t, func() bool {
		return testCounter(t, reg, "mcpwatch_identity_jwks_loads_total", "error") == 2
	}, 5*time.Second, time.Millisecond)

	srv.publish(identitytest.JWKS(t, key))
	require.Eventually(t, func() bool {
		_, source = r.Resolve(request(bearer(tok)), "")
		return source == SourceJWT
	}, 5*time.Second, 10*time.Millisecond)
}

// TestJWKAlg: a key whose JWK states an alg verifies only tokens of that alg (here RS256, not
// PS256 made with the same RSA key), with or without a kid; a JWK without alg verifies any
// alg of its key type.
func TestJWKAlg(t *testing.T) {
	rs := identitytest.NewRSA(t, "r")
	ps := identitytest.Signer{KID: rs.KID, Method: jwt.SigningMethodPS256, Key: rs.Key}
	noKID := identitytest.Signer{Method: jwt.SigningMethodPS256, Key: rs.Key}
	stated := identitytest.JWKS(t, rs) // alg RS256
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(stated, &doc))
	delete(doc.Keys[0], "alg")
	unstated, err := json.Marshal(doc)
	require.NoError(t, err)

	dir := t.TempDir()
	for name, jwks := range map[string][]byte{"stated": stated, "unstated": unstated} {
		file := filepath.Join(dir, name+".json")
		require.NoError(t, os.WriteFile(file, jwks, 0o600))
		r, _ := newResolver(t, Config{JWT: JWTConfig{JWKSFile: file}})
		for _, s := range []identitytest.Signer{rs, ps, noKID} {
			_, source := r.Resolve(request(bearer(s.Sign(t, jwt.MapClaims{"sub": "a"}))), "")
			want := SourceJWT
			if name == "stated" && s.Method != jwt.SigningMethodRS256 {
				want = SourceJWTUnverified
			}
			require.Equal(t, want, source, "%s alg, %s token with kid %q", name, s.Method.Alg(), s.KID)
		}
	}
}

// A JWKS URL that fails keeps the resolver working (tokens unverified) and is counted.
func TestJWKSURLDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	reg := prometheus.NewRegistry()
	r, err := New(Config{JWT: JWTConfig{JWKSURL: srv.URL}}, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	require.Eventually(t, func() bool {
		return testCounter(t, reg, "mcpwatch_identity_jwks_loads_total", "error") == 1
	}, 5*time.Second, 5*time.Millisecond)
	_, source := r.Resolve(request(bearer(identitytest.NewRSA(t, "k").Sign(t, jwt.MapClaims{"sub": "a"}))), "")
	require.Equal(t, SourceJWTUnverified, source)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()), "a second Shutdown is a no-op")
	require.Error(t, r.Start(context.Background()), "no Start after Shutdown")
}

func testCounter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestNewRejectsBadJWKSFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`), 0o600))
	tests := map[string]string{
		filepath.Join(dir, "missing.json"): "cannot read JWKS file",
		bad:                                "RSA key of 17 bits is too short",
	}
	for file, want := range tests {
		_, err := New(Config{JWT: JWTConfig{JWKSFile: file}}, pipeline.Settings{})
		require.ErrorContains(t, err, "collector.identity.jwt.jwks_file")
		require.ErrorContains(t, err, want)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	rsaKey := identitytest.NewRSA(t, "r")
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(identitytest.JWKS(t, rsaKey), &doc))
	doc.Keys = append(doc.Keys,
		json.RawMessage(`{"kty":"oct","k":"c2VjcmV0"}`),
		json.RawMessage(`{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}`))
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	ks, err := parseJWKS(data)
	require.NoError(t, err)
	require.Len(t, ks.all, 1)
	require.Contains(t, ks.byKID, "r")

	_, err = parseJWKS([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	require.ErrorContains(t, err, "no usable signing key")
	_, err = parseJWKS([]byte(`[]`))
	require.ErrorContains(t, err, "cannot parse JWKS")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "empty", cfg: Config{}},
		{name: "everything", cfg: Config{
			Precedence: []string{"jwt", "mtls"}, Header: "X-Agent", BaggageKey: "agent",
			JWT: JWTConfig{Claim: "azp", JWKSURL: "https://idp.example/jwks", HMACSecret: secret, JWKSRefresh: time.Minute, Leeway: time.Second},
		}},
		{name: "http jwks_url to loopback", cfg: Config{JWT: JWTConfig{JWKSURL: "http://127.0.0.1:8080/jwks"}}},
		{name: "http jwks_url to localhost", cfg: Config{JWT: JWTConfig{JWKSURL: "http://LOCALHOST/jwks"}}},
		{name: "http jwks_url to ::1", cfg: Config{JWT: JWTConfig{JWKSURL: "http://[::1]:8080/jwks"}}},
		{name: "http jwks_url elsewhere", cfg: Config{JWT: JWTConfig{JWKSURL: "http://idp.example/jwks"}}, want: []string{
			"collector.identity.jwt.jwks_url: must be https (http only to localhost or a loopback IP): anyone on the network path could replace the keys",
		}},
		{name: "http jwks_url to a LAN address", cfg: Config{JWT: JWTConfig{JWKSURL: "http://10.0.0.5/jwks"}}, want: []string{
			"collector.identity.jwt.jwks_url: must be https (http only to localhost or a loopback IP): anyone on the network path could replace the keys",
		}},
		{name: "all wrong", cfg: Config{
			Precedence: []string{"jwt", "ip", "jwt"}, Header: "X Agent", BaggageKey: "a b",
			JWT: JWTConfig{JWKSFile: "f", JWKSURL: "ftp://x", HMACSecret: "short", JWKSRefresh: -1, Leeway: -1},
		}, want: []string{
			`collector.identity.precedence[1]: unknown method "ip" (want mtls, jwt, header, baggage or client_info)`,
			`collector.identity.precedence[2]: "jwt" is listed twice`,
			`collector.identity.header: must be a valid HTTP header name, got "X Agent"`,
			`collector.identity.baggage_key: must be a valid baggage key (an RFC 7230 token), got "a b"`,
			"collector.identity.jwt.jwks_url: set jwks_file or jwks_url, not both",
			"collector.identity.jwt.jwks_url: must be an absolute https URL",
			"collector.identity.jwt.hmac_secret: must be at least 32 bytes",
			"collector.identity.jwt.jwks_refresh: must not be negative",
			"collector.identity.jwt.leeway: must not be negative",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
			require.NotContains(t, err.Error(), "short", "the secret is not echoed")
		})
	}
	d := Config{}.WithDefaults()
	require.Equal(t, DefaultPrecedence, d.Precedence)
	require.Equal(t, "X-Mcpwatch-Agent", d.Header)
	require.Equal(t, "agent.id", d.BaggageKey)
	require.Equal(t, "sub", d.JWT.Claim)
	require.Equal(t, 15*time.Minute, d.JWT.JWKSRefresh)

	require.ErrorContains(t, SessionsConfig{IdleGap: -1, MaxOpen: -1}.Validate(), "collector.sessions.idle_gap: must not be negative\ncollector.sessions.max_open: must not be negative")
	require.Equal(t, 15*time.Minute, SessionsConfig{}.WithDefaults().IdleGap)
}

// A reload that fetched the same document keeps the verified tokens' cached results: tokens
// whose key the set lacks ask for a reload every 30 s for as long as they come, and must not
// cost every other token its cache each time. A changed document drops them.
func TestUnchangedJWKSKeepsTheCache(t *testing.T) {
	a, b := identitytest.NewRSA(t, "a"), identitytest.NewRSA(t, "b")
	v := newJWTVerifier(JWTConfig{Claim: "sub", JWKSFile: "set"})
	load := func(signers ...identitytest.Signer) {
		ks, err := parseJWKS(identitytest.JWKS(t, signers...))
		require.NoError(t, err)
		v.setKeys(ks)
	}
	load(a)
	agent, verified := v.attribute(a.Sign(t, jwt.MapClaims{"sub": "agent-a"}), time.Now())
	require.Equal(t, "agent-a", agent)
	require.True(t, verified)
	gen := v.gen.Load()

	load(a)
	require.Equal(t, gen, v.gen.Load(), "the same document changes nothing")
	v.mu.Lock()
	require.Len(t, v.cache, 1, "the verified token is still cached")
	v.mu.Unlock()

	load(a, b)
	require.NotEqual(t, gen, v.gen.Load())
	v.mu.Lock()
	require.Empty(t, v.cache, "a new key set: results are checked again")
	v.mu.Unlock()
}
