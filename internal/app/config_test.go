package app_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/httptap"
	"github.com/mcpwatch/mcpwatch/collector/otlp"
	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestLoadConfigGood(t *testing.T) {
	t.Setenv("MCPWATCH_TEST_LOG_LEVEL", "warn")
	t.Setenv("MCPWATCH_TEST_SECRET", "from-the-env")
	t.Setenv("MCPWATCH_TEST_DATA_DIR", "") // empty: the default applies
	checks := map[string]func(t *testing.T, c app.Config){
		"empty.good.yml": func(t *testing.T, c app.Config) {
			defaults, err := app.LoadConfig("", nil)
			require.NoError(t, err)
			require.Equal(t, defaults, c, "an empty file is the defaults")
			require.Equal(t, app.DefaultDataDir, c.DataDir)
			require.Equal(t, filepath.Join(app.DefaultDataDir, "mcpwatch.db"), c.Store.SQLite.Path)
			require.Equal(t, 7492, c.Bus.Embedded.Port)
			require.Equal(t, "127.0.0.1:7410", c.API.Listen)
		},
		"full.good.yml": func(t *testing.T, c app.Config) {
			require.Equal(t, "/var/lib/mcpwatch", c.DataDir)
			require.Equal(t, "json", c.Log.Format)
			require.Equal(t, []string{"kafka-1:9092", "kafka-2:9092"}, c.Bus.Brokers)
			require.Zero(t, c.Bus.Embedded.Port, "no embedded broker when brokers are set")
			require.Equal(t, 12, c.Bus.Partitions)
			require.Equal(t, 72*time.Hour, c.Bus.Retention)
			require.Equal(t, 5*time.Millisecond, c.Bus.BatchTimeout, "unset fields keep their defaults")
			require.Equal(t, store.BackendClickHouse, c.Store.Backend)
			require.Equal(t, []string{"clickhouse-1:9000"}, c.Store.ClickHouse.Addr)
			require.Equal(t, 5*time.Second, c.Store.ClickHouse.DialTimeout)
			require.Equal(t, 90, c.Store.RetentionDays)
			require.Equal(t, time.Second, c.Writer.FlushInterval)
			require.Equal(t, time.Hour, c.Writer.RetentionInterval)
			require.Equal(t, []httptap.Upstream{
				{Name: "default", URL: "http://127.0.0.1:3001/mcp"},
				{Name: "github", URL: "https://mcp.github.example/mcp?tenant=a=b", TLS: httptap.UpstreamTLS{
					CAFile: "/etc/mcpwatch/github-ca.pem", ServerName: "mcp.github.internal",
				}},
			}, c.Collector.HTTP.Upstreams)
			require.Equal(t, httptap.ListenerTLS{
				CertFile: "/etc/mcpwatch/tap.crt", KeyFile: "/etc/mcpwatch/tap.key",
				ClientCAFile: "/etc/mcpwatch/agents-ca.pem", ClientAuth: httptap.ClientAuthVerifyIfGiven,
			}, c.Collector.HTTP.TLS)
			require.Equal(t, "ingest-token", c.Collector.Ingest.Token, "required: the listener is public and lets clients without a certificate in")
			require.Equal(t, []string{"mtls", "jwt", "client_info"}, c.Collector.Identity.Precedence)
			require.Equal(t, "azp", c.Collector.Identity.JWT.Claim)
			require.Equal(t, "X-Mcpwatch-Agent", c.Collector.Identity.Header, "unset fields keep their defaults")
			require.Equal(t, 5*time.Minute, c.Collector.Sessions.IdleGap)
			require.Equal(t, "/var/lib/mcpwatch/collector-sessions.json", c.Collector.Sessions.StateFile, "under the data dir")
			require.Equal(t, []capture.Rule{
				{Server: "github", Tools: capture.Tools{Names: []string{"create_issue"}}, MaxBytes: 1024},
				{Server: "default", Tools: capture.Tools{All: true}},
			}, c.Collector.Capture)
			require.Equal(t, 0, *c.Collector.InspectionMaxBytes, "0 turns inspection content off")
			tap := c.Collector.TapConfig()
			require.Equal(t, c.Collector.Identity, tap.Identity)
			require.Equal(t, c.Collector.Sessions, tap.Sessions)
			require.Equal(t, c.Collector.Sessions, c.Collector.OTLPConfig().Sessions, "the OTLP receiver stitches by the same rule")
			require.Equal(t, capture.DefaultDefinitionsMaxBytes, *c.Collector.DefinitionsMaxBytes)
			require.Equal(t, capture.Config{Rules: c.Collector.Capture, InspectionMaxBytes: c.Collector.InspectionMaxBytes, DefinitionsMaxBytes: c.Collector.DefinitionsMaxBytes}, tap.Capture)
			require.Equal(t, map[string]string{"env": "prod"}, c.Enricher.Labels)
			require.Equal(t, 75.0, c.Detector.NewTool.Score)
			require.Equal(t, 30*time.Second, c.Detector.SnapshotInterval)
			require.Len(t, c.Alerting.Webhooks, 2)
			require.Equal(t, "webhook-1", c.Alerting.Webhooks[0].Name)
			require.Equal(t, schemas.SeverityHigh, c.Alerting.Webhooks[0].MinSeverity)
			require.Equal(t, "pager", c.Alerting.Webhooks[1].Name)
			require.Equal(t, schemas.SeverityInfo, c.Alerting.Webhooks[1].MinSeverity)
			require.Equal(t, 5*time.Second, c.Alerting.Webhooks[1].Timeout)
			require.Equal(t, 3, c.Alerting.Retry.MaxAttempts)
			require.Equal(t, 200*time.Millisecond, c.Alerting.Retry.InitialBackoff)
			require.Equal(t, []string{"s3cret-token"}, c.API.Tokens)
		},
		"env.good.yml": func(t *testing.T, c app.Config) {
			require.Equal(t, "/var/lib/mcpwatch", c.DataDir, "${VAR:-default} with VAR empty")
			require.Equal(t, "warn", c.Log.Level, "${VAR}")
			require.Equal(t, "json", c.Log.Format, "${VAR:-default} with VAR unset")
			require.Equal(t, "from-the-env", c.Alerting.Webhooks[0].Secret)
		},
	}
	files, err := filepath.Glob("testdata/*.good.yml")
	require.NoError(t, err)
	require.Len(t, files, len(checks), "every good file has checks")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := app.LoadConfig(f, nil)
			require.NoError(t, err)
			check, ok := checks[filepath.Base(f)]
			require.True(t, ok, "no checks for %s", f)
			check(t, c)
		})
	}
}

func TestLoadConfigBad(t *testing.T) {
	want := map[string][]string{
		"unknown_key.bad.yml":   {"testdata/unknown_key.bad.yml:4: field listne not found in type httptap.Config"},
		"wrong_type.bad.yml":    {"testdata/wrong_type.bad.yml:2: cannot unmarshal !!str `many` into int"},
		"bus_broker.bad.yml":    {"testdata/bus_broker.bad.yml:", `bus.brokers[1]: "kafka-2" is not host:port`},
		"webhook_url.bad.yml":   {"alerting.webhooks[0].url: must be an absolute http(s) URL"},
		"store_backend.bad.yml": {`store.backend: must be "sqlite" or "clickhouse", got "postgres"`},
		"log_level.bad.yml":     {`log.level: must be debug, info, warn or error, got "verbose"`},
		"upstream_url.bad.yml":  {`collector.http.upstreams[0].url: must be an absolute http(s) URL, got "localhost:3001/mcp"`},
		"ingest_listener.bad.yml": {
			`collector.http.listen: must be host:port, got "7400"`,
			"collector.http.tls.client_ca_file: needs cert_file and key_file: mTLS needs HTTPS",
			`collector.http.tls.client_auth: must be require or verify_if_given, got "requir"`,
		},
		"env_unset.bad.yml": {"testdata/env_unset.bad.yml:6: environment variable MCPWATCH_TEST_UNSET_SECRET is not set"},
		"exposed.bad.yml": {
			"collector.ingest.token: required when collector.http.listen (0.0.0.0:7400) is not loopback",
			"collector.otlp.bearer_tokens: required when collector.otlp.grpc.listen (:4317) is not loopback",
		},
		"several.bad.yml": {
			`log.format: must be text or json, got "xml"`,
			`collector.identity.precedence[1]: unknown method "ip" (want mtls, jwt, header, baggage or client_info)`,
			"detector.new_tool.score: must be between 0 and 100, got 150",
			"api.tokens: required when api.listen (0.0.0.0:7410) is not a loopback address",
		},
	}
	files, err := filepath.Glob("testdata/*.bad.yml")
	require.NoError(t, err)
	require.Len(t, files, len(want), "every bad file has an expected error")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := app.LoadConfig(f, nil)
			require.Error(t, err)
			subs, ok := want[filepath.Base(f)]
			require.True(t, ok, "no expected error for %s: %v", f, err)
			for _, s := range subs {
				require.ErrorContains(t, err, s)
			}
		})
	}
	_, err = app.LoadConfig("testdata/missing.yml", nil)
	require.ErrorContains(t, err, "cannot read config")
}

func TestLoadConfigFlagsOverrideTheFile(t *testing.T) {
	c, err := app.LoadConfig("testdata/full.good.yml", func(c *app.Config) error {
		c.DataDir = "/srv/other"
		c.Store.Backend = store.BackendSQLite
		c.Log.Level = "error"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "error", c.Log.Level)
	require.Equal(t, filepath.Join("/srv/other", "mcpwatch.db"), c.Store.SQLite.Path, "the store file follows a data dir given by flag")

	_, err = app.LoadConfig("testdata/full.good.yml", func(c *app.Config) error { c.Bus.Partitions = -3; return nil })
	require.ErrorContains(t, err, "bus.partitions: must be at least 1", "flags are validated too")
}

// TestCollectorListenersNeedAuth: event ingest and the OTLP receiver take events from whoever
// reaches them, so a listener other than loopback needs their token, or client certificates.
func TestCollectorListenersNeedAuth(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem") // the OTLP receiver checks its files exist; New reads them
	require.NoError(t, os.WriteFile(pem, []byte("x"), 0o600))
	tap := func(listen string, tls httptap.ListenerTLS) func(*app.Config) {
		return func(c *app.Config) {
			c.Collector.HTTP.Listen, c.Collector.HTTP.TLS = listen, tls
			c.Collector.HTTP.Upstreams = []httptap.Upstream{{Name: "default", URL: "http://127.0.0.1:3001/mcp"}}
		}
	}
	mtls := func(auth string) httptap.ListenerTLS {
		return httptap.ListenerTLS{CertFile: pem, KeyFile: pem, ClientCAFile: pem, ClientAuth: auth}
	}
	otlpOn := func(grpc, http string) func(*app.Config) {
		return func(c *app.Config) {
			c.Collector.OTLP.Enabled = true
			c.Collector.OTLP.GRPC.Listen, c.Collector.OTLP.HTTP.Listen = grpc, http
		}
	}
	const (
		ingestErr = "collector.ingest.token: required when collector.http.listen (0.0.0.0:7400) is not loopback"
		grpcErr   = "collector.otlp.bearer_tokens: required when collector.otlp.grpc.listen (10.0.0.5:4317) is not loopback"
		httpErr   = "collector.otlp.bearer_tokens: required when collector.otlp.http.listen ([::]:4318) is not loopback"
	)
	for _, tc := range []struct {
		name    string
		set     []func(*app.Config)
		wantErr []string
	}{
		{name: "defaults are loopback", set: nil},
		{name: "loopback needs nothing", set: []func(*app.Config){tap("127.0.0.1:7400", httptap.ListenerTLS{}), otlpOn("[::1]:4317", "localhost:4318")}},
		{name: "public tap without token", set: []func(*app.Config){tap("0.0.0.0:7400", httptap.ListenerTLS{})}, wantErr: []string{ingestErr}},
		{name: "public ingest-only listener without token", set: []func(*app.Config){func(c *app.Config) { c.Collector.HTTP.Listen = "0.0.0.0:7400" }}, wantErr: []string{ingestErr}},
		{name: "all interfaces without token", set: []func(*app.Config){tap(":7400", httptap.ListenerTLS{})}, wantErr: []string{"collector.ingest.token: required when collector.http.listen (:7400)"}},
		{name: "public tap with token", set: []func(*app.Config){tap("0.0.0.0:7400", httptap.ListenerTLS{}), func(c *app.Config) { c.Collector.Ingest.Token = "t0ken" }}},
		{name: "public tap requiring client certificates", set: []func(*app.Config){tap("0.0.0.0:7400", mtls(httptap.ClientAuthRequire))}},
		{name: "public tap requiring client certificates by default", set: []func(*app.Config){tap("0.0.0.0:7400", mtls(""))}},
		{name: "public tap with optional client certificates", set: []func(*app.Config){tap("0.0.0.0:7400", mtls(httptap.ClientAuthVerifyIfGiven))}, wantErr: []string{ingestErr}},
		{name: "public ingest-only listener requiring client certificates", set: []func(*app.Config){func(c *app.Config) {
			c.Collector.HTTP.Listen, c.Collector.HTTP.TLS = "0.0.0.0:7400", mtls(httptap.ClientAuthRequire)
		}}},
		{name: "public ingest-only listener with optional client certificates", set: []func(*app.Config){func(c *app.Config) {
			c.Collector.HTTP.Listen, c.Collector.HTTP.TLS = "0.0.0.0:7400", mtls(httptap.ClientAuthVerifyIfGiven)
		}}, wantErr: []string{ingestErr}},
		{name: "public listener, ingest disabled", set: []func(*app.Config){tap("0.0.0.0:7400", httptap.ListenerTLS{}), func(c *app.Config) { c.Collector.Ingest.Disabled = true }}},
		{name: "public otlp without tokens", set: []func(*app.Config){otlpOn("10.0.0.5:4317", "[::]:4318")}, wantErr: []string{grpcErr, httpErr}},
		{name: "public otlp, that transport disabled", set: []func(*app.Config){otlpOn("127.0.0.1:4317", "[::]:4318"), func(c *app.Config) { c.Collector.OTLP.HTTP.Disabled = true }}},
		{name: "public otlp with tokens", set: []func(*app.Config){otlpOn("10.0.0.5:4317", "[::]:4318"), func(c *app.Config) { c.Collector.OTLP.BearerTokens = []string{"t0ken"} }}},
		{name: "public otlp requiring client certificates", set: []func(*app.Config){otlpOn("10.0.0.5:4317", "[::]:4318"), func(c *app.Config) {
			c.Collector.OTLP.TLS = otlp.TLSConfig{CertFile: pem, KeyFile: pem, ClientCAFile: pem}
		}}},
		{name: "public otlp with TLS but no client certificates", set: []func(*app.Config){otlpOn("10.0.0.5:4317", "127.0.0.1:4318"), func(c *app.Config) {
			c.Collector.OTLP.TLS = otlp.TLSConfig{CertFile: pem, KeyFile: pem}
		}}, wantErr: []string{grpcErr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := app.LoadConfig("", func(c *app.Config) error {
				for _, set := range tc.set {
					set(c)
				}
				return nil
			})
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.wantErr), err.Error())
			for _, want := range tc.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestAddUpstream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []string
		want  []httptap.Upstream
	}{
		{
			name:  "first unnamed is default",
			specs: []string{"http://127.0.0.1:3001/mcp"},
			want:  []httptap.Upstream{{Name: "default", URL: "http://127.0.0.1:3001/mcp"}},
		},
		{
			name:  "later unnamed ones are numbered",
			specs: []string{"http://a/mcp", "http://b/mcp", "http://c/mcp"},
			want:  []httptap.Upstream{{Name: "default", URL: "http://a/mcp"}, {Name: "upstream-2", URL: "http://b/mcp"}, {Name: "upstream-3", URL: "http://c/mcp"}},
		},
		{
			name:  "NAME=URL keeps the name",
			specs: []string{"github=https://mcp.example/mcp", "http://a/mcp"},
			want:  []httptap.Upstream{{Name: "github", URL: "https://mcp.example/mcp"}, {Name: "default", URL: "http://a/mcp"}},
		},
		{
			name:  "an = in the query stays part of the URL",
			specs: []string{"http://a/mcp?token=abc&x=y"},
			want:  []httptap.Upstream{{Name: "default", URL: "http://a/mcp?token=abc&x=y"}},
		},
		{
			name:  "a named URL with = in its query",
			specs: []string{"fs=http://a/mcp?root=/tmp"},
			want:  []httptap.Upstream{{Name: "fs", URL: "http://a/mcp?root=/tmp"}},
		},
		{
			name:  "scheme-less URL with = in its query",
			specs: []string{"127.0.0.1:3001/mcp?a=b"},
			want:  []httptap.Upstream{{Name: "default", URL: "127.0.0.1:3001/mcp?a=b"}},
		},
		{
			name:  "a generated name skips one already taken",
			specs: []string{"http://a/mcp", "upstream-3=http://c/mcp", "http://b/mcp"},
			want:  []httptap.Upstream{{Name: "default", URL: "http://a/mcp"}, {Name: "upstream-3", URL: "http://c/mcp"}, {Name: "upstream-4", URL: "http://b/mcp"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c app.Config
			for _, s := range tc.specs {
				require.NoError(t, c.AddUpstream(s))
			}
			require.Equal(t, tc.want, c.Collector.HTTP.Upstreams)
		})
	}

	// Through LoadConfig, as the --upstream flag does: the result is validated.
	_, err := app.LoadConfig("", func(c *app.Config) error { return c.AddUpstream("127.0.0.1:3001/mcp") })
	require.ErrorContains(t, err, "collector.http.upstreams[0].url: must be an absolute http(s) URL")
	c, err := app.LoadConfig("testdata/empty.good.yml", func(c *app.Config) error {
		for _, s := range []string{"http://127.0.0.1:3001/mcp", "gh=http://127.0.0.1:3002/mcp", "http://127.0.0.1:3003/mcp"} {
			if err := c.AddUpstream(s); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"default", "gh", "upstream-3"}, []string{
		c.Collector.HTTP.Upstreams[0].Name, c.Collector.HTTP.Upstreams[1].Name, c.Collector.HTTP.Upstreams[2].Name,
	})
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    []string
		wantErr string
	}{
		{spec: "", want: app.AllTargets},
		{spec: "all", want: app.AllTargets},
		{spec: "api,writer", want: []string{app.TargetWriter, app.TargetAPI}},
		{spec: "collector, enricher ,detector", want: []string{app.TargetDetector, app.TargetEnricher, app.TargetCollector}},
		{spec: "alerting,alerting,writer", want: []string{app.TargetWriter, app.TargetAlerting}},
		{spec: "writer,all", want: app.AllTargets},
		{spec: "detector", want: []string{app.TargetDetector}},
		{spec: "writer,ingester", wantErr: `-target: unknown target "ingester" (want all or a list of writer, detector, alerting, enricher, api, collector)`},
		{spec: "writer,,api", wantErr: `unknown target ""`},
		{spec: "Writer", wantErr: `unknown target "Writer"`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := app.ParseTargets(tc.spec)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestExampleConfig checks that deploy/mcpwatch.example.yml loads, documents every field, and
// shows the defaults mcpwatch really uses.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/mcpwatch.example.yml"
	t.Setenv("MCPWATCH_CLICKHOUSE_PASSWORD", "")
	got, err := app.LoadConfig(path, nil)
	require.NoError(t, err)

	want, err := app.LoadConfig("", nil)
	require.NoError(t, err)
	// The tap applies its defaults itself; the example writes them out.
	want.Collector.HTTP = httptap.Config{
		Listen:             httptap.DefaultListen,
		RequestTimeout:     httptap.DefaultRequestTimeout,
		MaxMessageBytes:    httptap.DefaultMaxMessageBytes,
		SessionIdleTimeout: httptap.DefaultSessionIdleTimeout,
		MaxSessions:        httptap.DefaultMaxSessions,
		MaxPending:         httptap.DefaultMaxPending,
		Upstreams:          []httptap.Upstream{},
	}
	// Empty lists and maps written as [] and {} decode as empty rather than nil.
	want.Bus.Brokers = []string{}
	want.Store.ClickHouse.Addr = []string{}
	want.Enricher.Labels = map[string]string{}
	want.Collector.Capture = []capture.Rule{}
	want.Alerting.Webhooks = []alerting.WebhookConfig{}
	want.API.Tokens = []string{}
	require.Equal(t, want, got, "the example shows the defaults")

	// Every key of the config structs appears in the example.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, key := range yamlKeys(reflect.TypeFor[app.Config]()) {
		require.Contains(t, string(raw), key+":", "the example documents %s", key)
	}
	require.NotContains(t, string(raw), "0.0.0.0", "the example binds loopback only")
}

// yamlKeys lists the yaml tag names of t's fields, recursively.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		ft := f.Type
		for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			out = append(out, yamlKeys(ft)...)
		}
	}
	return out
}
