package httptap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// withHeaders adds headers to every request of an MCP client.
type withHeaders struct {
	base http.RoundTripper
	h    map[string]string
}

func (w withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range w.h {
		r.Header.Set(k, v)
	}
	return w.base.RoundTrip(r)
}

// connectClient connects a real go-sdk client named name to endpoint over tr, with headers.
func connectClient(t testing.TB, endpoint, name string, tr *http.Transport, headers map[string]string) (*mcp.ClientSession, error) {
	t.Helper()
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: withHeaders{base: tr, h: headers}},
		MaxRetries: -1,
	}, nil)
}

// callEcho calls the echo tool and checks its answer.
func callEcho(t testing.TB, cs *mcp.ClientSession, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
	require.NoError(t, err)
	require.Equal(t, "Echo: "+msg, res.Content[0].(*mcp.TextContent).Text)
}

func echoEvent(t *testing.T, rec *recorder) schemas.Event {
	t.Helper()
	return rec.waitFor(t, "tools/call echo", func(e schemas.Event) bool { return e.Target == "echo" })
}

// TestMTLSAttribution serves the tap over TLS with client certificates verified against a
// test CA: a real go-sdk client with a SPIFFE certificate is attributed by it, on every event of
// its session.
func TestMTLSAttribution(t *testing.T) {
	dir := t.TempDir()
	ca := identitytest.NewCA(t, "agents-ca")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "tap")
	caFile := ca.WriteFile(t, dir, "ca")
	up := startMCPUpstream(t, nil)

	tests := []struct {
		name       string
		clientAuth string
		cert       *identitytest.Leaf
		wantAgent  string
		wantSource string
		wantRefuse bool
	}{
		{name: "spiffe id", cert: ptr(ca.Client(t, "cn-ignored", "spiffe://corp.example/ns/prod/sa/billing-bot")),
			wantAgent: "spiffe://corp.example/ns/prod/sa/billing-bot", wantSource: identity.SourceMTLS},
		{name: "common name", cert: ptr(ca.Client(t, "ops-agent", "")), wantAgent: "ops-agent", wantSource: identity.SourceMTLS},
		{name: "required but absent", wantRefuse: true},
		{name: "verify if given, absent", clientAuth: ClientAuthVerifyIfGiven, wantAgent: "tls-client", wantSource: identity.SourceClientInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, tapURL := startTap(t, Config{
				Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}},
				TLS:       ListenerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: tt.clientAuth},
			})
			tapURL = strings.Replace(tapURL, "http://", "https://", 1)
			tc := &tls.Config{RootCAs: ca.Pool()}
			if tt.cert != nil {
				tc.Certificates = []tls.Certificate{tt.cert.TLS}
			}
			cs, err := connectClient(t, tapURL+"/mcp", "tls-client", &http.Transport{TLSClientConfig: tc}, map[string]string{DefaultAgentHeader: "claimed"})
			if tt.wantRefuse {
				require.Error(t, err, "the handshake requires a client certificate")
				require.Empty(t, rec.all())
				return
			}
			require.NoError(t, err)
			callEcho(t, cs, "over mtls")
			require.NoError(t, cs.Close())
			if tt.wantSource == identity.SourceClientInfo {
				tt.wantAgent, tt.wantSource = "claimed", identity.SourceHeader // the header comes before clientInfo
			}
			ev := echoEvent(t, rec)
			require.Equal(t, tt.wantAgent, ev.AgentID)
			require.Equal(t, tt.wantSource, ev.AgentSource)
			require.Equal(t, "claimed", ev.DeclaredAgent, "the declared agent is kept beside the attribution")
			for _, e := range rec.all() {
				require.Equal(t, tt.wantAgent, e.AgentID, "%s", e.Method)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestJWTAttribution: a go-sdk client sending a bearer JWT is attributed by its claim when the
// tap can verify it, as jwt_unverified when it cannot, and the token is in no event.
func TestJWTAttribution(t *testing.T) {
	const secret = "a-test-secret-of-at-least-32-bytes!"
	rsaKey := identitytest.NewRSA(t, "k1")
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(identitytest.JWKS(t, rsaKey))
	}))
	defer jwks.Close()
	up := startMCPUpstream(t, nil)
	exp := time.Now().Add(time.Hour).Unix()

	tests := []struct {
		name       string
		idCfg      identity.Config
		token      string
		wantAgent  string
		wantSource string
	}{
		{"hmac", identity.Config{JWT: identity.JWTConfig{HMACSecret: secret, Claim: "client_id"}},
			identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "user-1", "client_id": "billing-bot", "exp": exp}), "billing-bot", identity.SourceJWT},
		{"rsa from a jwks url", identity.Config{JWT: identity.JWTConfig{JWKSURL: jwks.URL, Claim: "azp"}},
			rsaKey.Sign(t, jwt.MapClaims{"azp": "ops-agent", "exp": exp}), "ops-agent", identity.SourceJWT},
		{"bad signature", identity.Config{JWT: identity.JWTConfig{HMACSecret: secret}},
			identitytest.SignHMAC(t, strings.Repeat("x", 40), jwt.MapClaims{"sub": "intruder", "exp": exp}), "intruder", identity.SourceJWTUnverified},
		{"expired", identity.Config{JWT: identity.JWTConfig{HMACSecret: secret}},
			identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "late", "exp": time.Now().Add(-time.Hour).Unix()}), "late", identity.SourceJWTUnverified},
		{"precedence puts the header first", identity.Config{Precedence: []string{"header", "jwt"}, JWT: identity.JWTConfig{HMACSecret: secret}},
			identitytest.SignHMAC(t, secret, jwt.MapClaims{"sub": "billing-bot", "exp": exp}), "claimed", identity.SourceHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}}, Identity: tt.idCfg})
			if tt.idCfg.JWT.JWKSURL != "" {
				require.Eventually(t, func() bool {
					req := httptest.NewRequest(http.MethodPost, "/", nil)
					req.Header.Set("Authorization", "Bearer "+tt.token)
					_, src := tap.ident.Resolve(req, "")
					return src == identity.SourceJWT
				}, 5*time.Second, 10*time.Millisecond, "the JWKS is fetched at start")
			}
			cs, err := connectClient(t, tapURL+"/mcp", "jwt-client", nil, map[string]string{
				"Authorization": "Bearer " + tt.token, DefaultAgentHeader: "claimed",
			})
			require.NoError(t, err)
			callEcho(t, cs, "with a token")
			require.NoError(t, cs.Close())
			ev := echoEvent(t, rec)
			require.Equal(t, tt.wantAgent, ev.AgentID)
			require.Equal(t, tt.wantSource, ev.AgentSource)
			for _, e := range rec.all() {
				data, err := json.Marshal(e)
				require.NoError(t, err)
				require.NotContains(t, string(data), tt.token, "the token is never stored")
				require.NotContains(t, string(data), strings.Split(tt.token, ".")[2], "nor its signature")
			}
		})
	}
}

// TestBaggageAttribution: the agent id in the W3C baggage header, or in params._meta.baggage.
func TestBaggageAttribution(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	_, rec, tapURL := startTap(t, Config{
		Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}},
		Identity:  identity.Config{BaggageKey: "agent.id"},
	})
	cs, err := connectClient(t, tapURL+"/mcp", "bag-client", nil, map[string]string{"Baggage": "team=ops,agent.id=triage%20bot"})
	require.NoError(t, err)
	callEcho(t, cs, "baggage")
	require.NoError(t, cs.Close())
	ev := echoEvent(t, rec)
	require.Equal(t, "triage bot", ev.AgentID)
	require.Equal(t, identity.SourceBaggage, ev.AgentSource)

	// The same in params._meta, as MCP carries trace context.
	body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"},` +
		`"_meta":{"baggage":"agent.id=meta-bot","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	resp := send(t, http.MethodPost, tapURL+"/mcp", body, map[string]string{
		"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo",
	})
	_ = readAll(t, resp.Body)
	meta := rec.waitFor(t, "the raw call", func(e schemas.Event) bool { return e.JSONRPCID == "9" })
	require.Equal(t, "meta-bot", meta.AgentID, "%+v", meta)
	require.Equal(t, identity.SourceBaggage, meta.AgentSource)
}

// TestStitchedSessions: a stateless go-sdk client's operations share one stitched session; an
// idle gap longer than the configured one starts a new session; a restarted tap with the same
// state file continues the session in progress.
func TestStitchedSessions(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{Stateless: true})
	state := filepath.Join(t.TempDir(), "sessions.json")
	const gap = 400 * time.Millisecond
	cfg := Config{
		Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}},
		Sessions:  identity.SessionsConfig{IdleGap: gap, StateFile: state},
	}
	session := func(rec *recorder, msg string) string {
		t.Helper()
		return rec.waitFor(t, msg, func(e schemas.Event) bool {
			return e.Target == "echo" && strings.Contains(e.Content.Arguments, msg)
		}).SessionID
	}

	tap, rec, tapURL := startTap(t, cfg)
	cs, err := connectClient(t, tapURL+"/mcp", "stateless-agent", nil, nil)
	require.NoError(t, err)
	require.Empty(t, cs.ID(), "the 2026-07-28 revision has no session id")
	callEcho(t, cs, "first")
	callEcho(t, cs, "second")
	first := session(rec, "first")
	require.NotEmpty(t, first)
	require.Equal(t, first, session(rec, "second"))
	for _, e := range rec.all() {
		require.Equal(t, first, e.SessionID, "every operation of the client: %s", e.Method)
	}

	// Another agent (by header) from the same client gets its own session.
	other, err := connectClient(t, tapURL+"/mcp", "stateless-agent", nil, map[string]string{DefaultAgentHeader: "other"})
	require.NoError(t, err)
	callEcho(t, other, "other agent")
	require.NotEqual(t, first, session(rec, "other agent"))
	require.NoError(t, other.Close())

	time.Sleep(gap + 100*time.Millisecond)
	callEcho(t, cs, "after the gap")
	second := session(rec, "after the gap")
	require.NotEqual(t, first, second, "a gap longer than idle_gap starts a new session")
	require.NoError(t, cs.Close())

	// Restart: the open session is saved at shutdown and continued by the next tap.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, tap.Shutdown(ctx))
	_, err = os.Stat(state)
	require.NoError(t, err)
	_, rec2, tapURL2 := startTap(t, cfg)
	cs2, err := connectClient(t, tapURL2+"/mcp", "stateless-agent", nil, nil)
	require.NoError(t, err)
	callEcho(t, cs2, "after the restart")
	require.Equal(t, second, session(rec2, "after the restart"), "the session in progress keeps its id across a restart")
	require.NoError(t, cs2.Close())
}

// TestCaptureAndInspectionContent: events carry masked, size-capped content; it is marked
// captured only for the servers and tools an operator opted in.
func TestCaptureAndInspectionContent(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{JSONResponse: true})
	zero := 0
	tests := []struct {
		name     string
		capture  capture.Config
		wantArgs string
		wantRes  string
		captured bool
		cut      bool
		none     bool
	}{
		{name: "inspection by default", wantArgs: `{"message":"key is *** ok"}`,
			wantRes: `{"content":[{"type":"text","text":"Echo: key is *** ok"}]}`},
		{name: "captured tool, cut", capture: capture.Config{Rules: []capture.Rule{{Server: "default", Tools: capture.Tools{Names: []string{"echo"}}, MaxBytes: 20}}},
			wantArgs: `{"message":"key is *`, wantRes: `{"content":[{"type":`, captured: true, cut: true},
		{name: "another tool captured", capture: capture.Config{Rules: []capture.Rule{{Server: "default", Tools: capture.Tools{Names: []string{"fail"}}}}},
			wantArgs: `{"message":"key is *** ok"}`, wantRes: `{"content":[{"type":"text","text":"Echo: key is *** ok"}]}`},
		{name: "inspection off", capture: capture.Config{InspectionMaxBytes: &zero}, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}}, Capture: tt.capture})
			cs, err := connectClient(t, tapURL+"/mcp", "c", nil, nil)
			require.NoError(t, err)
			callEcho(t, cs, "key is AKIAIOSFODNN7EXAMPLE ok")
			require.NoError(t, cs.Close())
			ev := echoEvent(t, rec)
			if tt.none {
				require.Nil(t, ev.Content)
				return
			}
			require.Equal(t, &schemas.Content{Arguments: tt.wantArgs, Result: tt.wantRes, Captured: tt.captured, Truncated: tt.cut}, ev.Content)
			for _, e := range rec.all() {
				data, err := json.Marshal(e)
				require.NoError(t, err)
				require.NotContains(t, string(data), "AKIAIOSFODNN7EXAMPLE", "secrets never leave the tap")
			}
		})
	}
}
