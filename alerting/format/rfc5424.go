package format

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// RFC 5424 §6 header field limits, in octets of printable US-ASCII.
const (
	MaxHostname = 255
	MaxAppName  = 48
	MaxProcID   = 128
	MaxMsgID    = 32
	MaxSDName   = 32 // SD-ID and PARAM-NAME
	// MaxSDValue bounds each of mcpwatch's structured-data values (RFC 5424 sets no limit).
	// The full values travel in the message; the structured data is for filtering, and a
	// bound keeps an oversized agent id from crowding the message out of the receiver's limit.
	MaxSDValue = 255
)

// DefaultSDID is the SD-ID of mcpwatch's structured-data element. 32473 is the Private
// Enterprise Number that RFC 5612 reserves for documentation examples: an organisation
// with its own PEN should configure name@<its PEN>.
const DefaultSDID = "mcpwatch@32473"

// bom is the UTF-8 byte order mark RFC 5424 §6.4 puts before a UTF-8 MSG.
var bom = []byte{0xEF, 0xBB, 0xBF}

// Message is one RFC 5424 syslog message.
type Message struct {
	// Facility is 0–23 (Facilities); Severity is 0 (emergency) – 7 (debug).
	Facility int
	Severity int
	// Timestamp is written in UTC with at most 6 fraction digits; the zero time is written as
	// the NILVALUE "-".
	Timestamp time.Time
	// Hostname, AppName, ProcID and MsgID are written as printable US-ASCII (each other
	// character becomes '_'), cut to their RFC 5424 limits; empty is written as "-".
	Hostname string
	AppName  string
	ProcID   string
	MsgID    string
	// StructuredData is written in order; none is written as "-". Element ids and parameter
	// names must be valid SD-NAMEs (see ValidSDName): they come from code or validated config.
	StructuredData []SDElement
	// BOM puts the UTF-8 byte order mark before Msg, as RFC 5424 §6.4 asks for a UTF-8 MSG.
	// Off by default in mcpwatch: receivers such as rsyslog keep the BOM as part of the message,
	// so a SIEM reading "CEF:0|…" or a JSON object from it would find U+FEFF in front.
	BOM bool
	// Msg is the free-form message, written as is (no escaping: its length is known to the
	// framing, and mcpwatch's formats produce single-line text anyway).
	Msg []byte
}

// SDElement is one structured-data element: [ID name="value" …].
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one structured-data parameter. Its value is escaped (", \ and ]), made valid
// UTF-8, stripped of control characters (each becomes a space) and cut to MaxSDValue bytes.
type SDParam struct {
	Name  string
	Value string
}

// AppendTo appends the message to dst.
func (m *Message) AppendTo(dst []byte) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(m.Facility*8+m.Severity), 10)
	dst = append(dst, ">1 "...)
	if m.Timestamp.IsZero() {
		dst = append(dst, '-')
	} else {
		dst = m.Timestamp.UTC().AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
	}
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, m.Hostname, MaxHostname)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, m.AppName, MaxAppName)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, m.ProcID, MaxProcID)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, m.MsgID, MaxMsgID)
	dst = append(dst, ' ')
	if len(m.StructuredData) == 0 {
		dst = append(dst, '-')
	}
	for _, e := range m.StructuredData {
		dst = append(dst, '[')
		dst = append(dst, e.ID...)
		for _, p := range e.Params {
			dst = append(dst, ' ')
			dst = append(dst, p.Name...)
			dst = append(dst, '=', '"')
			dst = appendSDValue(dst, p.Value)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	if m.BOM || len(m.Msg) > 0 {
		dst = append(dst, ' ')
	}
	if m.BOM {
		dst = append(dst, bom...)
	}
	return append(dst, m.Msg...)
}

// Bytes returns the message.
func (m *Message) Bytes() []byte { return m.AppendTo(nil) }

// appendHeaderField writes s as PRINTUSASCII (33–126): any other character, a space
// included, becomes '_'; the result is cut to max octets; empty becomes the NILVALUE "-".
func appendHeaderField(dst []byte, s string, max int) []byte {
	n := 0
	for _, r := range s {
		if n == max {
			break
		}
		if r < 33 || r > 126 {
			r = '_'
		}
		dst = append(dst, byte(r))
		n++
	}
	if n == 0 {
		dst = append(dst, '-')
	}
	return dst
}

// appendSDValue escapes a PARAM-VALUE: '"', '\' and ']' get a backslash (RFC 5424 §6.3.3).
// Control characters become spaces: they are legal there, but line-oriented receivers and
// rsyslog's default escaping (#012) mangle them.
func appendSDValue(dst []byte, s string) []byte {
	s = clean(s, MaxSDValue)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == ']':
			dst = append(dst, '\\', c)
		case isControl(c):
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// ValidSDName reports whether s can be an SD-ID or PARAM-NAME: 1–32 printable US-ASCII
// characters other than '=', ' ', ']' and '"' (RFC 5424 §6.3.2).
func ValidSDName(s string) error {
	if s == "" || len(s) > MaxSDName {
		return fmt.Errorf("must be 1 to %d characters", MaxSDName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			return fmt.Errorf("must be printable US-ASCII without '=', ']', '\"' or spaces")
		}
	}
	return nil
}

// ValidEnterpriseSDID reports whether s is an SD-ID of the name@<private enterprise number>
// form that RFC 5424 §7.2 asks of ids not registered with IANA.
func ValidEnterpriseSDID(s string) error {
	if err := ValidSDName(s); err != nil {
		return err
	}
	at := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '@' {
			if at >= 0 {
				return fmt.Errorf("must contain one '@'")
			}
			at = i
		}
	}
	if at <= 0 || at == len(s)-1 {
		return fmt.Errorf("must be name@<private enterprise number>, e.g. %s", DefaultSDID)
	}
	for _, c := range s[at+1:] {
		if c != '.' && (c < '0' || c > '9') {
			return fmt.Errorf("must be name@<private enterprise number>, e.g. %s", DefaultSDID)
		}
	}
	return nil
}

// Facilities are the syslog facility codes of RFC 5424 §6.2.1 by the names syslog
// implementations use for them.
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14,
	"clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
	"local5": 21, "local6": 22, "local7": 23,
}

// SyslogSeverity maps an anomaly severity to a syslog severity: critical → 2 (critical),
// high → 3 (error), medium → 4 (warning), low → 5 (notice), info and anything else → 6
// (informational). Emergency and alert (0, 1) are left to systems that are down.
func SyslogSeverity(s schemas.Severity) int {
	switch s {
	case schemas.SeverityCritical:
		return 2
	case schemas.SeverityHigh:
		return 3
	case schemas.SeverityMedium:
		return 4
	case schemas.SeverityLow:
		return 5
	}
	return 6
}

// Header is how a sender fills an RFC 5424 header for an anomaly.
type Header struct {
	// Facility is 0–23 (default in mcpwatch's config: local0 = 16).
	Facility int
	// Hostname, AppName and ProcID are the sender's; empty is written as "-".
	Hostname string
	AppName  string
	ProcID   string
	// SDID is the structured-data element's id (DefaultSDID when empty).
	SDID string
	// BOM puts a byte order mark before the message (see Message.BOM).
	BOM bool
}

// RFC5424 returns the syslog message for one delivery of an anomaly, carrying msg (the
// anomaly in JSON, CEF or LEEF). The timestamp is the anomaly's time, so every retry of a
// delivery sends the same bytes; MSGID is the anomaly's kind; the structured-data element
// carries anomaly_id, delivery_id, agent, server and session (when set), kind, score,
// severity and count for filtering without parsing the message.
func RFC5424(an schemas.Anomaly, deliveryID string, h Header, msg []byte) []byte {
	m := Message{
		Facility:  h.Facility,
		Severity:  SyslogSeverity(an.Severity),
		Timestamp: an.Time,
		Hostname:  h.Hostname,
		AppName:   h.AppName,
		ProcID:    h.ProcID,
		MsgID:     an.Kind,
		BOM:       h.BOM,
		Msg:       msg,
	}
	id := h.SDID
	if id == "" {
		id = DefaultSDID
	}
	params := []SDParam{{"anomaly_id", an.ID}, {"delivery_id", deliveryID}, {"agent", an.AgentID}}
	if an.ServerID != "" {
		params = append(params, SDParam{"server", an.ServerID})
	}
	if an.SessionID != "" {
		params = append(params, SDParam{"session", an.SessionID})
	}
	params = append(params,
		SDParam{"kind", an.Kind},
		SDParam{"score", score(an.Score)},
		SDParam{"severity", string(an.Severity)},
		SDParam{"count", strconv.Itoa(an.Count)},
	)
	m.StructuredData = []SDElement{{ID: id, Params: params}}
	return m.Bytes()
}

// AppendOctetCounted appends msg framed by octet counting (RFC 6587 §3.4.1, and RFC 5425 §4.3
// for TLS): its length in decimal, a space, then msg. The receiver reads exactly that many
// octets, so a newline inside msg cannot split it.
func AppendOctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
