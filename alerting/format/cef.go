package format

import (
	"strconv"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// CEF header field limits (ArcSight CEF implementation standard, header field definitions).
const (
	cefMaxVendor  = 63
	cefMaxProduct = 63
	cefMaxVersion = 31
	cefMaxClassID = 1023
	cefMaxName    = 512
)

// cefField is one extension key with its ArcSight dictionary length limit (0: none).
type cefField struct {
	key string
	max int
}

// CEF extension keys used, with their dictionary limits.
var (
	cefRT        = cefField{"rt", 0}
	cefStart     = cefField{"start", 0}
	cefEnd       = cefField{"end", 0}
	cefCnt       = cefField{"cnt", 0}
	cefExtID     = cefField{"externalId", 40}
	cefSuser     = cefField{"suser", 1023}
	cefDvchost   = cefField{"dvchost", 100}
	cefMsg       = cefField{"msg", 1023}
	cefCfp1      = cefField{"cfp1", 0}
	cefCfp1Label = cefField{"cfp1Label", 1023}
)

// cefCustom is a deviceCustomString pair: csN carries the value (up to 4000), csNLabel names it.
var cefCustom = []struct{ key, label string }{
	{"cs1", "mcpServer"},
	{"cs2", "mcpSession"},
	{"cs3", "anomalyId"},
	{"cs4", "subject"},
	{"cs5", "tags"},
	{"cs6", "model"},
}

// CEF returns an anomaly as an ArcSight CEF:0 event:
//
//	CEF:0|Vendor|Product|Version|<kind>|<title>|<Severity10>|<extension>
//
// Header fields escape '\' and '|'; extension values escape '\', '=', and newlines as \n and
// \r, but not '|'. Other control characters become spaces (CEF defines no escape for them and
// syslog receivers mangle them). Every field is cut to its documented length at a UTF-8
// boundary, before escaping. Empty values are left out. The extension carries
//
//	rt (anomaly time), start/end (first/last seen), all in ms since the epoch; cnt (count);
//	externalId (delivery id, for dropping duplicates); suser (agent id); dvchost (the
//	sending host); msg (the explanation's summary); cs1 mcpServer, cs2 mcpSession,
//	cs3 anomalyId, cs4 subject, cs5 tags (comma-separated), cs6 model, each with its
//	csNLabel; cfp1 score with cfp1Label.
func CEF(an schemas.Anomaly, deliveryID string, d Device) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "CEF:0|"...)
	b = appendCEFHeader(b, d.Vendor, cefMaxVendor)
	b = appendCEFHeader(b, d.Product, cefMaxProduct)
	b = appendCEFHeader(b, d.Version, cefMaxVersion)
	b = appendCEFHeader(b, an.Kind, cefMaxClassID)
	b = appendCEFHeader(b, name(an), cefMaxName)
	b = strconv.AppendInt(b, int64(Severity10(an)), 10)
	b = append(b, '|')

	e := cefExt{b: b}
	if !an.Time.IsZero() {
		e.add(cefRT, millis(an.Time))
	}
	if !an.FirstSeen.IsZero() {
		e.add(cefStart, millis(an.FirstSeen))
	}
	if !an.LastSeen.IsZero() {
		e.add(cefEnd, millis(an.LastSeen))
	}
	if an.Count > 0 {
		e.add(cefCnt, strconv.Itoa(an.Count))
	}
	e.add(cefExtID, deliveryID)
	e.add(cefSuser, an.AgentID)
	e.add(cefDvchost, d.Host)
	e.add(cefMsg, an.Explanation.Summary)
	for i, v := range []string{an.ServerID, an.SessionID, an.ID, an.Subject, strings.Join(an.Tags, ","), an.Explanation.Model} {
		if v != "" {
			c := cefCustom[i]
			e.add(cefField{c.key + "Label", 1023}, c.label)
			e.add(cefField{c.key, 4000}, v)
		}
	}
	e.add(cefCfp1Label, "score")
	e.add(cefCfp1, score(an.Score))
	return e.b
}

// appendCEFHeader writes one header field and its closing '|'.
func appendCEFHeader(dst []byte, s string, max int) []byte {
	s = clean(s, max)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '|':
			dst = append(dst, '\\', c)
		case isControl(c):
			dst = append(dst, ' ') // newlines are allowed only in extension values
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '|')
}

// cefExt builds the extension: key=value pairs separated by single spaces.
type cefExt struct {
	b    []byte
	some bool // a pair was written
}

func (e *cefExt) add(f cefField, v string) {
	if v == "" {
		return
	}
	if e.some {
		e.b = append(e.b, ' ')
	}
	e.some = true
	e.b = append(e.b, f.key...)
	e.b = append(e.b, '=')
	if f.max > 0 {
		v = clean(v, f.max)
	} else {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' || c == '=':
			e.b = append(e.b, '\\', c)
		case c == '\n':
			e.b = append(e.b, '\\', 'n')
		case c == '\r':
			e.b = append(e.b, '\\', 'r')
		case isControl(c):
			e.b = append(e.b, ' ')
		default:
			e.b = append(e.b, c)
		}
	}
}
