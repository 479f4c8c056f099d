package alerting

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/alerting/format"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/sockpeek"
)

// Syslog transports.
const (
	SyslogUDP = "udp" // RFC 5426: one datagram per message, no acknowledgement
	SyslogTCP = "tcp" // RFC 6587 with octet counting
	SyslogTLS = "tls" // RFC 5425: octet counting over TLS
)

// Formats of a syslog message's MSG besides json (compact Anomaly v1).
const (
	FormatCEF  = "cef"  // ArcSight CEF:0
	FormatLEEF = "leef" // QRadar LEEF 2.0
)

// Syslog defaults.
const (
	// DefaultSyslogMaxMessageSize is rsyslog's default maxMessageSize: a longer message is
	// truncated by it (and the rest arrives as a second, broken message).
	DefaultSyslogMaxMessageSize = 8096
	maxUDPMessageSize           = 65507 // the largest UDP payload over IPv4
	minSyslogMessageSize        = 480   // RFC 5424 §6.1: every receiver accepts this much
)

// SyslogConfig is one syslog sink: each alert is one RFC 5424 message whose MSG is the anomaly
// as JSON, CEF or LEEF, and whose structured data carries the delivery id.
type SyslogConfig struct {
	// Name identifies the sink in metrics, logs, delivery ids and dead letters (default
	// syslog-N). Renaming a sink changes its delivery ids.
	Name string `yaml:"name"`
	// Route selects the anomalies this sink receives and its noise control.
	Route `yaml:",inline"`
	// Address is the receiver's host:port (e.g. siem.example.com:6514).
	Address string `yaml:"address"`
	// Transport is tls (RFC 5425, the default), tcp (RFC 6587 octet counting) or udp
	// (RFC 5426). UDP has no acknowledgement: a message sent while the receiver is down, or
	// dropped on the way, is lost without an error. TCP and TLS report a refused or broken
	// connection, so the alert is retried; they confirm that the bytes left, not that the
	// receiver stored them.
	Transport string `yaml:"transport"`
	// Format of the message: json (compact Anomaly v1, the default), cef or leef.
	Format string `yaml:"format"`
	// Facility is the syslog facility by name: kern, user, mail, daemon, auth, syslog, lpr,
	// news, uucp, cron, authpriv, ftp, ntp, audit, alert, clock or local0–local7 (default
	// local0, which receivers leave to local routing rather than mixing into system logs).
	Facility string `yaml:"facility"`
	// Hostname is the HOSTNAME field and CEF dvchost (default: this machine's host name).
	Hostname string `yaml:"hostname"`
	// AppName is the APP-NAME field (default mcpwatch).
	AppName string `yaml:"app_name"`
	// SDID is the id of the structured-data element, name@<private enterprise number>
	// (default mcpwatch@32473; 32473 is the number RFC 5612 reserves for documentation: use
	// your organisation's own if your SIEM keys on it).
	SDID string `yaml:"sd_id"`
	// BOM puts a UTF-8 byte order mark before the message, as RFC 5424 §6.4 asks for UTF-8
	// text. Off by default: receivers such as rsyslog keep it as part of the message, so a
	// SIEM reading JSON or "CEF:0|…" from it would find an invisible character first.
	BOM bool `yaml:"bom"`
	// LEEFDelimiter separates LEEF attributes: one character, or its hex code as x09 or
	// 0x5E (default ^; a tab is mangled to #011 by relays that escape control characters).
	LEEFDelimiter string `yaml:"leef_delimiter"`
	// MaxMessageSize is the largest message sent, in bytes (default 8096, rsyslog's default
	// limit). A larger alert is dead-lettered rather than truncated by the receiver; raise it
	// together with the receiver's limit.
	MaxMessageSize int `yaml:"max_message_size"`
	// Timeout bounds connecting and writing one message (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures the CAs trusted for the receiver and an optional client certificate;
	// for transport tls only.
	TLS ClientTLS `yaml:"tls"`
}

func (c *SyslogConfig) setDefaults(i int) {
	if c.Name == "" {
		c.Name = fmt.Sprintf("syslog-%d", i+1)
	}
	if c.Transport == "" {
		c.Transport = SyslogTLS
	}
	if c.Format == "" {
		c.Format = "json"
	}
	if c.Facility == "" {
		c.Facility = "local0"
	}
	if c.AppName == "" {
		c.AppName = "mcpwatch"
	}
	if c.SDID == "" {
		c.SDID = format.DefaultSDID
	}
	if c.LEEFDelimiter == "" {
		c.LEEFDelimiter = string(format.DefaultLEEFDelimiter)
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultSyslogMaxMessageSize
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	c.Route.setDefaults()
}

func (c SyslogConfig) validate(p string, errs *config.Errors) {
	if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || !validPort(port) {
		errs.Add(p+".address", "must be host:port")
	}
	switch c.Transport {
	case SyslogUDP, SyslogTCP, SyslogTLS:
	default:
		errs.Addf(p+".transport", "unknown transport %q (want tls, tcp or udp)", c.Transport)
	}
	switch c.Format {
	case "json", FormatCEF, FormatLEEF:
	default:
		errs.Addf(p+".format", "unknown format %q (want json, cef or leef)", c.Format)
	}
	if _, ok := format.Facilities[c.Facility]; !ok {
		errs.Addf(p+".facility", "unknown facility %q (want e.g. local0–local7, auth, daemon)", c.Facility)
	}
	if c.Hostname != "" && !printableASCII(c.Hostname, format.MaxHostname) {
		errs.Addf(p+".hostname", "must be 1 to %d printable US-ASCII characters without spaces", format.MaxHostname)
	}
	if !printableASCII(c.AppName, format.MaxAppName) {
		errs.Addf(p+".app_name", "must be 1 to %d printable US-ASCII characters without spaces", format.MaxAppName)
	}
	if err := format.ValidEnterpriseSDID(c.SDID); err != nil {
		errs.Add(p+".sd_id", err.Error())
	}
	if _, err := format.ParseLEEFDelimiter(c.LEEFDelimiter); err != nil {
		errs.Add(p+".leef_delimiter", err.Error())
	}
	switch {
	case c.MaxMessageSize < minSyslogMessageSize:
		errs.Addf(p+".max_message_size", "must be at least %d (what every receiver accepts)", minSyslogMessageSize)
	case c.Transport == SyslogUDP && c.MaxMessageSize > maxUDPMessageSize:
		errs.Addf(p+".max_message_size", "must be at most %d over udp (the largest datagram)", maxUDPMessageSize)
	}
	if c.Timeout <= 0 {
		errs.Add(p+".timeout", "must be positive")
	}
	if c.Transport != SyslogTLS && c.TLS != (ClientTLS{}) {
		errs.Add(p+".tls", "is for transport tls only")
	}
	c.TLS.validate(p+".tls", errs)
	c.Route.validate(p, errs)
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

func printableASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// syslogSink sends each alert as one RFC 5424 message over one long-lived connection (UDP:
// one connected socket), dialled again after any failure.
type syslogSink struct {
	cfg    SyslogConfig
	header format.Header
	device format.Device
	delim  rune
	tls    *tls.Config // transport tls only
	logger *slog.Logger

	mu    sync.Mutex // guards conn and frame
	conn  *syslogConn
	frame []byte
}

// syslogConn is a connection to the receiver. Over TCP and TLS a goroutine keeps reading
// from it: syslog receivers send nothing, so when that read returns the receiver has closed
// or reset the connection. TCP would otherwise accept the next write into the socket buffer
// and report the reset only afterwards, so the first alert after a receiver restart would be
// counted as delivered and lost. (Over TLS the read also consumes session tickets.)
type syslogConn struct {
	net.Conn
	gone chan struct{} // closed when the read returned; nil over UDP
}

func watch(conn net.Conn, stream bool) *syslogConn {
	c := &syslogConn{Conn: conn}
	if !stream {
		return c
	}
	c.gone = make(chan struct{})
	go func() {
		defer close(c.gone)
		var b [512]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	return c
}

// alive reports whether the receiver still holds the connection open, as far as is known:
// the reading goroutine may not have run yet since the receiver closed it, so the socket is
// asked too (peerClosed).
func (c *syslogConn) alive() bool {
	if c.gone == nil {
		return true
	}
	select {
	case <-c.gone:
		return false
	default:
	}
	raw := c.Conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	return !peerClosed(raw)
}

// peerClosed reports whether the other end of a TCP connection has closed or reset it.
func peerClosed(c net.Conn) bool { return sockpeek.Peek(c) == sockpeek.Closed }

// close closes the connection and waits for its reader to end.
func (c *syslogConn) close() {
	_ = c.Conn.Close()
	if c.gone != nil {
		<-c.gone
	}
}

func newSyslogSink(cfg SyslogConfig, set pipeline.Settings) (Sink, error) {
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname() // empty is written as the NILVALUE
	}
	delim, err := format.ParseLEEFDelimiter(cfg.LEEFDelimiter)
	if err != nil {
		return nil, fmt.Errorf("cannot use leef_delimiter: %w", err)
	}
	s := &syslogSink{
		cfg: cfg,
		header: format.Header{
			Facility: format.Facilities[cfg.Facility],
			Hostname: host,
			AppName:  cfg.AppName,
			ProcID:   strconv.Itoa(os.Getpid()),
			SDID:     cfg.SDID,
			BOM:      cfg.BOM,
		},
		device: format.Device{Vendor: "mcpwatch", Product: "mcpwatch", Version: buildVersion(), Host: host},
		delim:  delim,
		logger: set.Logger,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == SyslogTLS {
		if s.tls, err = cfg.TLS.Config(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// buildVersion is mcpwatch's module version for CEF and LEEF headers ("dev" when built
// from a work tree without one).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Name implements Sink.
func (s *syslogSink) Name() string { return s.cfg.Name }

// Send writes the alert as one message. A message over max_message_size is a permanent
// failure; a failed connect or write is returned (the connection is dropped and dialled
// again on the next attempt), so the alert is retried.
func (s *syslogSink) Send(ctx context.Context, a Alert) error {
	msg, err := s.message(a)
	if err != nil {
		return Permanent(err)
	}
	if len(msg) > s.cfg.MaxMessageSize {
		return Permanent(fmt.Errorf("syslog %s: the %s message is %d bytes, over max_message_size %d", s.cfg.Name, s.cfg.Format, len(msg), s.cfg.MaxMessageSize))
	}
	return s.write(ctx, msg)
}

// message renders the alert as an RFC 5424 message carrying it in the sink's format.
func (s *syslogSink) message(a Alert) ([]byte, error) {
	var body []byte
	switch s.cfg.Format {
	case FormatCEF:
		body = format.CEF(a.Anomaly, a.DeliveryID, s.device)
	case FormatLEEF:
		body = format.LEEF(a.Anomaly, a.DeliveryID, s.device, s.delim)
	default:
		var err error
		if body, err = format.JSON(a.JSON, a.Anomaly); err != nil {
			return nil, err
		}
	}
	return format.RFC5424(a.Anomaly, a.DeliveryID, s.header, body), nil
}

// write sends one message, connecting first if needed.
func (s *syslogSink) write(ctx context.Context, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.alive() {
		s.logger.Warn("syslog receiver closed the connection; reconnecting", "sink", s.cfg.Name)
		s.dropConn()
	}
	if s.conn == nil {
		conn, err := s.dial(ctx)
		if err != nil {
			return fmt.Errorf("cannot connect to syslog %s: %w", s.cfg.Name, err)
		}
		s.conn = watch(conn, s.cfg.Transport != SyslogUDP)
	}
	frame := msg
	if s.cfg.Transport != SyslogUDP {
		s.frame = format.AppendOctetCounted(s.frame[:0], msg)
		frame = s.frame
	}
	conn := s.conn
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	_, err := conn.Write(frame)
	stop()
	if err != nil {
		// A partial write leaves the stream mid-frame: only a new connection is usable.
		s.dropConn()
		return fmt.Errorf("cannot write to syslog %s: %w", s.cfg.Name, err)
	}
	return nil
}

func (s *syslogSink) dropConn() {
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
}

// dial connects to the receiver within the timeout.
func (s *syslogSink) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	if s.cfg.Transport == SyslogUDP {
		return d.DialContext(ctx, "udp", s.cfg.Address)
	}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil || s.cfg.Transport == SyslogTCP {
		return raw, err
	}
	cfg := s.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(s.cfg.Address)
	}
	asked := false // the receiver asked for a client certificate
	get := cfg.GetClientCertificate
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		if get != nil {
			return get(cri)
		}
		return &tls.Certificate{}, nil // none configured: send none
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	if asked && conn.ConnectionState().Version == tls.VersionTLS13 {
		// In TLS 1.3 the client's handshake ends before the server has judged its certificate;
		// a rejection arrives as an alert just after. Wait briefly for it, or the first message
		// would be written into a connection the receiver is closing.
		_ = conn.SetReadDeadline(time.Now().Add(min(s.cfg.Timeout, clientCertVerdictWait)))
		var b [64]byte
		_, err := conn.Read(b[:])
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			_ = conn.Close()
			return nil, fmt.Errorf("the receiver refused the TLS client certificate: %w", err)
		}
		_ = conn.SetReadDeadline(time.Time{}) // the watching read (see syslogConn) has none
	}
	return conn, nil
}

// clientCertVerdictWait is how long a new TLS 1.3 connection waits for the receiver to refuse
// its client certificate: once per connection, not per message.
const clientCertVerdictWait = 250 * time.Millisecond

// Close closes the connection.
func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropConn()
	return nil
}
