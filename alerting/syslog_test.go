package alerting

// The syslog sink against a real receiver: Debian's rsyslog, started by scripts/test.sh
// (scripts/rsyslog.sh) with UDP, TCP, TLS and mutual-TLS listeners on loopback; it writes
// what it parsed from each message (hostname, app-name, procid, msgid, structured data,
// message) as a JSON line, which the tests compare with what was meant.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting/format"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// rsyslog is a running rsyslog receiver.
type rsyslog struct {
	dir   string
	ports map[string]string // udp, tcp, tls, mtls → port
	// restart and stop are set for a test's own receiver (ownRsyslog); a restart keeps the ports.
	restart, stop func()
}

// sharedRsyslog is the receiver scripts/test.sh started (MCPWATCH_TEST_RSYSLOG_DIR). Without
// one the test is skipped, unless MCPWATCH_REQUIRE_RSYSLOG=1.
func sharedRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	dir := os.Getenv("MCPWATCH_TEST_RSYSLOG_DIR")
	if dir == "" {
		if os.Getenv("MCPWATCH_REQUIRE_RSYSLOG") == "1" {
			t.Fatal("MCPWATCH_REQUIRE_RSYSLOG=1 but MCPWATCH_TEST_RSYSLOG_DIR is not set")
		}
		t.Skip("no rsyslog: run scripts/test.sh, or RSYSLOG_DIR=DIR scripts/rsyslog.sh start and MCPWATCH_TEST_RSYSLOG_DIR=DIR")
	}
	return readRsyslog(t, dir)
}

func readRsyslog(t *testing.T, dir string) *rsyslog {
	t.Helper()
	env, err := os.ReadFile(filepath.Join(dir, "ports.env"))
	require.NoError(t, err, "rsyslog's ports.env")
	r := &rsyslog{dir: dir, ports: map[string]string{}}
	for _, line := range strings.Fields(string(env)) {
		k, v, _ := strings.Cut(line, "=")
		r.ports[strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(k, "RSYSLOG_"), "_PORT"))] = v
	}
	for _, l := range []string{"udp", "tcp", "tls", "mtls"} {
		require.NotEmpty(t, r.ports[l], "port of the %s listener", l)
	}
	return r
}

// ownRsyslog starts a private receiver that a test may stop and restart. It lives under the
// shared receiver's directory, so scripts/test.sh stops it even if this test binary dies.
func ownRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	shared := sharedRsyslog(t) // same skip rules: rsyslog is installed where the shared one runs
	require.NoError(t, os.MkdirAll(filepath.Join(shared.dir, "own"), 0o755))
	dir, err := os.MkdirTemp(filepath.Join(shared.dir, "own"), "rsyslog-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	script := filepath.Join("..", "scripts", "rsyslog.sh")
	run := func(cmd string, env ...string) {
		c := exec.Command("bash", script, cmd)
		c.Env = append(append(os.Environ(), "RSYSLOG_DIR="+dir), env...)
		out, err := c.CombinedOutput()
		require.NoError(t, err, "rsyslog.sh %s: %s", cmd, out)
	}
	run("start")
	t.Cleanup(func() { run("stop") })
	r := readRsyslog(t, dir)
	r.restart = func() {
		run("stop")
		run("start", "RSYSLOG_UDP_PORT="+r.ports["udp"], "RSYSLOG_TCP_PORT="+r.ports["tcp"], "RSYSLOG_TLS_PORT="+r.ports["tls"], "RSYSLOG_MTLS_PORT="+r.ports["mtls"])
	}
	r.stop = func() { run("stop") }
	return r
}

// received is one message as rsyslog parsed it.
type received struct {
	Input          string `json:"input"`
	PRI            string `json:"pri"`
	Hostname       string `json:"hostname"`
	AppName        string `json:"app_name"`
	ProcID         string `json:"procid"`
	MsgID          string `json:"msgid"`
	Timestamp      string `json:"timestamp"`
	StructuredData string `json:"structured_data"`
	SD             string `json:"sd"` // mmpstrucdata's JSON of the structured data
	Msg            string `json:"msg"`
}

// params returns the unescaped parameters of the SD element id, as rsyslog read them.
func (m received) params(t *testing.T, id string) map[string]string {
	t.Helper()
	var sd map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(m.SD), &sd), "rsyslog's parse of %s", m.StructuredData)
	return sd[id]
}

// wait returns the n messages rsyslog received from hostname (a test's own), in order.
func (r *rsyslog) wait(t *testing.T, hostname string, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r.from(t, hostname)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				// Everything rsyslog wrote, whoever it thinks sent it: a message lost tells apart
				// from one parsed with another hostname.
				all, _ := os.ReadFile(filepath.Join(r.dir, "messages.jsonl"))
				require.Len(t, got, n, "messages rsyslog received from %s; all it received:\n%s", hostname, all)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rsyslog) from(t *testing.T, hostname string) []received {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "messages.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []received
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m received
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s", sc.Bytes())
		if m.Hostname == hostname {
			out = append(out, m)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// uniqueHost names a test's messages so it finds them among everyone's.
func uniqueHost(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func (r *rsyslog) sinkConfig(t *testing.T, listener, formatName string) SyslogConfig {
	c := SyslogConfig{
		Name:     "siem",
		Address:  "127.0.0.1:" + r.ports[listener],
		Format:   formatName,
		Hostname: uniqueHost(t),
	}
	switch listener {
	case "udp", "tcp":
		c.Transport = listener
	case "tls":
		c.Transport = SyslogTLS
		c.TLS = ClientTLS{CAFile: filepath.Join(r.dir, "tls", "ca.pem"), ServerName: "localhost"}
	case "mtls":
		c.Transport = SyslogTLS
		c.TLS = ClientTLS{
			CAFile:   filepath.Join(r.dir, "tls", "ca.pem"),
			CertFile: filepath.Join(r.dir, "tls", "client.pem"),
			KeyFile:  filepath.Join(r.dir, "tls", "client-key.pem"),
		}
	}
	c.setDefaults(0)
	var errs config.Errors
	c.validate("alerting.syslog[0]", &errs)
	require.NoError(t, errs.Err())
	return c
}

func newTestSyslog(t *testing.T, c SyslogConfig) *syslogSink {
	t.Helper()
	s, err := newSyslogSink(c, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s.(*syslogSink)
}

// trickyAnomaly has every character the formats must escape or replace.
func trickyAnomaly(id string) schemas.Anomaly {
	ts := time.Date(2026, 11, 3, 2, 7, 11, 123456789, time.UTC)
	return schemas.Anomaly{
		ID:            "7d2f1c7e-0b1a-8c3e-9f00-" + id,
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          ts,
		AgentID:       `billing\bot|1 "q" [x] a=b é 日本 🚀`,
		SessionID:     "sess-42",
		ServerID:      "payments]",
		Kind:          "new_tool",
		Subject:       "delete_all",
		Score:         72.5,
		Severity:      schemas.SeverityHigh,
		Title:         `Agent called "delete_all" | first time = news`,
		Explanation: schemas.Explanation{
			Summary: "line one\nline two with a=b, a|b, a\\b, a^b and ]",
			Model:   "first_seen_tool",
		},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        ts.Add(-time.Minute),
		LastSeen:         ts,
		Count:            3,
		Tags:             []string{"finance", "prod"},
	}
}

// sendConnecting is s.Send, tried once more when it could not connect. rsyslog's TLS listener
// has reset a handshake on a loaded machine (once in dozens of CI runs: "cannot connect to syslog
// siem: … connection reset by peer"), a failure alerting retries in production; what arrives
// is checked all the same.
func sendConnecting(s *syslogSink, a Alert) error {
	err := s.Send(context.Background(), a)
	if err != nil && strings.Contains(err.Error(), "cannot connect") && !IsPermanent(err) {
		time.Sleep(100 * time.Millisecond)
		err = s.Send(context.Background(), a)
	}
	return err
}

func alertOf(t *testing.T, an schemas.Anomaly, sink string) Alert {
	raw, err := json.Marshal(an)
	require.NoError(t, err)
	return Alert{Anomaly: an, JSON: raw, DeliveryID: DeliveryID(an, sink), Time: time.Now()}
}

// TestSyslogToRsyslog sends an alert in each format over each transport and checks what
// rsyslog parsed: header fields, structured data (unescaped) and the message, byte for byte.
func TestSyslogToRsyslog(t *testing.T) {
	rs := sharedRsyslog(t)
	for _, tc := range []struct{ listener, format string }{
		{"udp", "json"}, {"udp", FormatCEF}, {"udp", FormatLEEF},
		{"tcp", "json"}, {"tcp", FormatCEF}, {"tcp", FormatLEEF},
		{"tls", "json"}, {"tls", FormatCEF}, {"tls", FormatLEEF},
		{"mtls", "json"}, {"mtls", FormatLEEF},
	} {
		t.Run(tc.listener+"/"+tc.format, func(t *testing.T) {
			c := rs.sinkConfig(t, tc.listener, tc.format)
			s := newTestSyslog(t, c)
			an := trickyAnomaly("000000000001")
			a := alertOf(t, an, c.Name)
			require.NoError(t, sendConnecting(s, a))
			second := trickyAnomaly("000000000002")
			second.Severity, second.Score, second.Kind = schemas.SeverityCritical, 95, "rate_spike"
			require.NoError(t, s.Send(context.Background(), alertOf(t, second, c.Name)), "the connection is reused")

			got := rs.wait(t, c.Hostname, 2)
			m := got[0]
			require.Equal(t, tc.listener, m.Input)
			require.Equal(t, strconv.Itoa(16*8+3), m.PRI, "local0.err for high")
			require.Equal(t, strconv.Itoa(16*8+2), got[1].PRI, "local0.crit for critical")
			require.Equal(t, "mcpwatch", m.AppName)
			require.Equal(t, strconv.Itoa(os.Getpid()), m.ProcID)
			require.Equal(t, "new_tool", m.MsgID)
			require.Equal(t, "rate_spike", got[1].MsgID)
			require.Equal(t, "2026-11-03T02:07:11.123456Z", m.Timestamp)
			require.Equal(t, map[string]string{
				"anomaly_id": an.ID, "delivery_id": a.DeliveryID, "agent": an.AgentID, "server": an.ServerID,
				"session": an.SessionID, "kind": "new_tool", "score": "72.5", "severity": "high", "count": "3",
			}, m.params(t, format.DefaultSDID))

			dev := format.Device{Vendor: "mcpwatch", Product: "mcpwatch", Version: buildVersion(), Host: c.Hostname}
			switch tc.format {
			case "json":
				var back schemas.Anomaly
				require.NoError(t, json.Unmarshal([]byte(m.Msg), &back))
				require.Equal(t, an.AgentID, back.AgentID)
				require.Equal(t, an.Explanation.Summary, back.Explanation.Summary)
				require.Equal(t, string(a.JSON), m.Msg, "the bus's compact JSON, unchanged")
			case FormatCEF:
				require.Equal(t, string(format.CEF(an, a.DeliveryID, dev)), m.Msg)
				require.Contains(t, m.Msg, `suser=billing\\bot|1 "q" [x] a\=b é 日本 🚀 `)
				require.Contains(t, m.Msg, `msg=line one\nline two with a\=b, a|b, a\\b, a^b and ] `)
			case FormatLEEF:
				require.Equal(t, string(format.LEEF(an, a.DeliveryID, dev, '^')), m.Msg)
				require.Contains(t, m.Msg, "^summary=line one line two with a=b, a|b, a\\b, a b and ]^")
			}
		})
	}
}

// TestSyslogOctetCounting proves the framing: a message with newlines inside arrives whole,
// and the message after it arrives on its own.
func TestSyslogOctetCounting(t *testing.T) {
	rs := sharedRsyslog(t)
	for _, listener := range []string{"tcp", "tls"} {
		t.Run(listener, func(t *testing.T) {
			c := rs.sinkConfig(t, listener, "json")
			s := newTestSyslog(t, c)
			m := format.Message{Facility: 16, Severity: 6, Hostname: c.Hostname, AppName: "mcpwatch", MsgID: "framing",
				Msg: []byte("first line\nsecond line\n<14>1 - fake-host - - - - not a message\nlast line")}
			require.NoError(t, s.write(context.Background(), m.Bytes()))
			m.Msg = []byte("next")
			require.NoError(t, s.write(context.Background(), m.Bytes()))
			got := rs.wait(t, c.Hostname, 2)
			require.Equal(t, "first line\nsecond line\n<14>1 - fake-host - - - - not a message\nlast line", got[0].Msg)
			require.Equal(t, "next", got[1].Msg)
			require.Empty(t, rs.from(t, "fake-host"))
		})
	}
}

// TestSyslogReceiverRestart: an alert sent while the receiver is down fails (so alerting
// retries it), and the first alert after a restart reaches the new receiver process instead
// of vanishing into the old connection.
func TestSyslogReceiverRestart(t *testing.T) {
	rs := ownRsyslog(t)
	for _, listener := range []string{"tcp", "tls"} {
		t.Run(listener, func(t *testing.T) {
			c := rs.sinkConfig(t, listener, FormatCEF)
			c.Timeout = 2 * time.Second
			s := newTestSyslog(t, c)
			ctx := context.Background()
			require.NoError(t, s.Send(ctx, alertOf(t, trickyAnomaly("000000000001"), c.Name)))
			rs.wait(t, c.Hostname, 1)

			rs.restart()
			require.NoError(t, s.Send(ctx, alertOf(t, trickyAnomaly("000000000002"), c.Name)), "reconnects to the restarted receiver")
			got := rs.wait(t, c.Hostname, 2)
			require.Contains(t, got[1].Msg, "cs3=7d2f1c7e-0b1a-8c3e-9f00-000000000002")

			rs.stop()
			err := s.Send(ctx, alertOf(t, trickyAnomaly("000000000003"), c.Name))
			require.Error(t, err, "nobody listens")
			require.False(t, IsPermanent(err), "retried, not dead-lettered at once")
			var ne net.Error
			require.True(t, errors.As(err, &ne), "a network error: alerting waits for the receiver (%v)", err)

			rs.restart()
			require.NoError(t, s.Send(ctx, alertOf(t, trickyAnomaly("000000000003"), c.Name)))
			got = rs.wait(t, c.Hostname, 3)
			require.Contains(t, got[2].Msg, "cs3=7d2f1c7e-0b1a-8c3e-9f00-000000000003")
		})
	}
}

func TestSyslogTLSFailures(t *testing.T) {
	rs := sharedRsyslog(t)
	ctx := context.Background()

	t.Run("client certificate required", func(t *testing.T) {
		c := rs.sinkConfig(t, "mtls", "json")
		c.TLS.CertFile, c.TLS.KeyFile = "", ""
		s := newTestSyslog(t, c)
		err := s.Send(ctx, alertOf(t, trickyAnomaly("000000000001"), c.Name))
		require.ErrorContains(t, err, "refused the TLS client certificate", "not silently written into a closing connection")
		time.Sleep(100 * time.Millisecond)
		require.Empty(t, rs.from(t, c.Hostname))
	})
	t.Run("unknown CA", func(t *testing.T) {
		c := rs.sinkConfig(t, "tls", "json")
		c.TLS.CAFile = "" // the system roots do not know the test CA
		s := newTestSyslog(t, c)
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, s.Send(ctx, alertOf(t, trickyAnomaly("000000000001"), c.Name)), &verr)
	})
	t.Run("wrong server name", func(t *testing.T) {
		c := rs.sinkConfig(t, "tls", "json")
		c.TLS.ServerName = "siem.example.com"
		s := newTestSyslog(t, c)
		require.ErrorContains(t, s.Send(ctx, alertOf(t, trickyAnomaly("000000000001"), c.Name)), "siem.example.com")
	})
}

// TestSyslogUDPHasNoAcknowledgement documents UDP: a datagram to a port nobody listens on is
// "sent" without an error.
func TestSyslogUDPHasNoAcknowledgement(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	c := SyslogConfig{Address: addr, Transport: SyslogUDP}
	c.setDefaults(0)
	s := newTestSyslog(t, c)
	require.NoError(t, s.Send(context.Background(), alertOf(t, trickyAnomaly("000000000001"), "syslog-1")))
}

func TestSyslogMessageTooLarge(t *testing.T) {
	c := SyslogConfig{Address: "127.0.0.1:1", Transport: SyslogTCP, MaxMessageSize: 600}
	c.setDefaults(0)
	s := newTestSyslog(t, c)
	an := trickyAnomaly("000000000001")
	an.Explanation.Summary = strings.Repeat("long ", 200)
	err := s.Send(context.Background(), alertOf(t, an, c.Name))
	require.True(t, IsPermanent(err), "dead-lettered, not truncated by the receiver: %v", err)
	require.ErrorContains(t, err, "over max_message_size 600")
}

func TestSyslogConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    SyslogConfig
		want []string
	}{
		{name: "defaults", c: SyslogConfig{Address: "siem.example.com:6514"}},
		{name: "udp cef", c: SyslogConfig{Address: "[::1]:514", Transport: "udp", Format: "cef", Facility: "auth", MaxMessageSize: 65507}},
		{name: "no address", want: []string{"alerting.syslog[0].address: must be host:port"}},
		{name: "no port", c: SyslogConfig{Address: "siem.example.com"}, want: []string{"alerting.syslog[0].address: must be host:port"}},
		{name: "bad port", c: SyslogConfig{Address: "siem:99999"}, want: []string{"alerting.syslog[0].address"}},
		{name: "no host", c: SyslogConfig{Address: ":514"}, want: []string{"alerting.syslog[0].address"}},
		{name: "transport", c: SyslogConfig{Address: "a:1", Transport: "relp"}, want: []string{`alerting.syslog[0].transport: unknown transport "relp"`}},
		{name: "format", c: SyslogConfig{Address: "a:1", Format: "ocsf"}, want: []string{`alerting.syslog[0].format: unknown format "ocsf"`}},
		{name: "facility", c: SyslogConfig{Address: "a:1", Facility: "local8"}, want: []string{`alerting.syslog[0].facility: unknown facility "local8"`}},
		{name: "hostname", c: SyslogConfig{Address: "a:1", Hostname: "my host"}, want: []string{"alerting.syslog[0].hostname"}},
		{name: "app name", c: SyslogConfig{Address: "a:1", AppName: strings.Repeat("a", 49)}, want: []string{"alerting.syslog[0].app_name"}},
		{name: "sd id", c: SyslogConfig{Address: "a:1", SDID: "origin"}, want: []string{"alerting.syslog[0].sd_id: must be name@<private enterprise number>"}},
		{name: "leef delimiter", c: SyslogConfig{Address: "a:1", LEEFDelimiter: "="}, want: []string{"alerting.syslog[0].leef_delimiter"}},
		{name: "small", c: SyslogConfig{Address: "a:1", MaxMessageSize: 100}, want: []string{"alerting.syslog[0].max_message_size: must be at least 480"}},
		{name: "udp too large", c: SyslogConfig{Address: "a:1", Transport: "udp", MaxMessageSize: 70000}, want: []string{"alerting.syslog[0].max_message_size: must be at most 65507"}},
		{name: "timeout", c: SyslogConfig{Address: "a:1", Timeout: -time.Second}, want: []string{"alerting.syslog[0].timeout: must be positive"}},
		{name: "tls over tcp", c: SyslogConfig{Address: "a:1", Transport: "tcp", TLS: ClientTLS{CAFile: "ca.pem"}}, want: []string{"alerting.syslog[0].tls: is for transport tls only"}},
		{name: "half a client cert", c: SyslogConfig{Address: "a:1", TLS: ClientTLS{CertFile: "c.pem"}}, want: []string{"alerting.syslog[0].tls: cert_file and key_file go together"}},
		{name: "routing", c: SyslogConfig{Address: "a:1", Route: Route{MinSeverity: "loud"}}, want: []string{"alerting.syslog[0].min_severity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.setDefaults(0)
			var errs config.Errors
			c.validate("alerting.syslog[0]", &errs)
			if len(tc.want) == 0 {
				require.NoError(t, errs.Err())
				return
			}
			for _, w := range tc.want {
				require.ErrorContains(t, errs.Err(), w)
			}
		})
	}

	var d SyslogConfig
	d.setDefaults(1)
	require.Equal(t, SyslogConfig{
		Name: "syslog-2", Route: Route{MinSeverity: schemas.SeverityInfo}, Transport: "tls", Format: "json",
		Facility: "local0", AppName: "mcpwatch", SDID: "mcpwatch@32473", LEEFDelimiter: "^",
		MaxMessageSize: 8096, Timeout: 5 * time.Second,
	}, d)

	c := SyslogConfig{Address: "a:1", TLS: ClientTLS{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}
	c.setDefaults(0)
	_, err := newSyslogSink(c, pipeline.Settings{})
	require.ErrorContains(t, err, "ca_file", "a missing CA file fails at start, not at the first alert")
}

// BenchmarkSyslogSend measures one alert rendered as CEF and written over TCP to a loopback
// reader.
func BenchmarkSyslogSend(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	done := make(chan int64)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := bytes.NewBuffer(nil).ReadFrom(conn)
		done <- n
	}()
	for _, f := range []string{FormatCEF} {
		c := SyslogConfig{Address: ln.Addr().String(), Transport: SyslogTCP, Format: f, Hostname: "bench"}
		c.setDefaults(0)
		s, err := newSyslogSink(c, pipeline.Settings{})
		require.NoError(b, err)
		a := Alert{Anomaly: trickyAnomaly("000000000001"), DeliveryID: "4f1c2a9be07d4d55a1f0c3b2e6d7a8c9"}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := s.Send(context.Background(), a); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		require.NoError(b, s.Close())
	}
	<-done
}

// memDeliveries records delivery outcomes in memory.
type memDeliveries struct {
	mu sync.Mutex
	ds []store.Delivery
}

func (m *memDeliveries) RecordDeliveries(_ context.Context, ds []store.Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ds = append(m.ds, ds...)
	return nil
}

func (m *memDeliveries) all() []store.Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ds)
}

// TestSyslogPipeline runs alerting end to end: anomalies produced on mcp.anomalies reach
// rsyslog through two syslog sinks (CEF over TLS for everything, LEEF over UDP for high and
// above), carrying the delivery ids alerting recorded.
func TestSyslogPipeline(t *testing.T) {
	rs := sharedRsyslog(t)
	var busCfg bus.Config
	busCfg.SetDefaults()
	busCfg.Partitions = 1
	b, err := bus.StartEmbedded(0, t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), busCfg))

	all := rs.sinkConfig(t, "tls", FormatCEF)
	all.Name = "arcsight"
	high := rs.sinkConfig(t, "udp", FormatLEEF)
	high.Name, high.MinSeverity = "qradar", schemas.SeverityHigh
	zero := time.Duration(0)
	cfg := Config{Syslog: []SyslogConfig{all, high}, Noise: NoiseConfig{ReAlertWindow: &zero, DigestInterval: &zero}}
	cfg.SetDefaults()
	st := &memDeliveries{}
	a, err := New(cfg, st, b.Brokers(), busCfg, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, a.Shutdown(context.Background())) })

	medium := trickyAnomaly("000000000001")
	medium.Severity, medium.Score = schemas.SeverityMedium, 45
	crit := trickyAnomaly("000000000002")
	crit.Severity, crit.Score = schemas.SeverityCritical, 97
	p := bus.NewProducer(b.Brokers(), bus.TopicAnomalies, busCfg)
	defer p.Close()
	for _, an := range []schemas.Anomaly{medium, crit} {
		v, err := json.Marshal(an)
		require.NoError(t, err)
		require.NoError(t, p.Produce(context.Background(), kafka.Message{Key: []byte(an.AgentID), Value: v}))
	}

	cef := rs.wait(t, all.Hostname, 2)
	leef := rs.wait(t, high.Hostname, 1)
	require.Equal(t, DeliveryID(medium, "arcsight"), cef[0].params(t, format.DefaultSDID)["delivery_id"])
	require.Equal(t, DeliveryID(crit, "arcsight"), cef[1].params(t, format.DefaultSDID)["delivery_id"])
	require.Contains(t, cef[1].Msg, "|9|rt=", "critical, score 97: CEF severity 9")
	require.Contains(t, cef[1].Msg, " externalId="+DeliveryID(crit, "arcsight")+" ")
	require.Equal(t, DeliveryID(crit, "qradar"), leef[0].params(t, format.DefaultSDID)["delivery_id"])
	require.Contains(t, leef[0].Msg, "^sev=9^")
	require.Equal(t, "tls", cef[0].Input)
	require.Equal(t, "udp", leef[0].Input)

	require.Eventually(t, func() bool { return len(st.all()) == 3 }, 10*time.Second, 10*time.Millisecond)
	for _, d := range st.all() {
		require.Equal(t, "delivered", d.Status, "%+v", d)
	}
}

// TestSyslogConfigPaths: alerting's Config names syslog fields by their path, and a syslog
// sink's name must differ from every other sink's.
func TestSyslogConfigPaths(t *testing.T) {
	cfg := Config{
		Webhooks: []WebhookConfig{{Name: "siem", URL: "https://siem.example.com/hook"}},
		Syslog:   []SyslogConfig{{Address: "siem.example.com:6514"}, {Name: "siem", Address: "siem.example.com", Format: "xml"}},
	}
	cfg.SetDefaults()
	require.Equal(t, "syslog-1", cfg.Syslog[0].Name)
	err := cfg.Validate()
	require.ErrorContains(t, err, `alerting.syslog[1].name: "siem" is used by another sink`)
	require.ErrorContains(t, err, "alerting.syslog[1].address: must be host:port")
	require.ErrorContains(t, err, `alerting.syslog[1].format: unknown format "xml"`)
	require.NotContains(t, err.Error(), "alerting.syslog[0]")
}
