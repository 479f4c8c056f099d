package sse

import (
	"bytes"
)

// Event is one dispatched server-sent event.
type Event struct {
	// Type is the event field ("" when absent, which means "message").
	Type string
	// ID is the last event id seen on the stream so far.
	ID string
	// Data is the event's data lines joined with "\n". It is only valid during the callback.
	Data []byte
	// Size is the number of data bytes the event carried, even when Oversized.
	Size int
	// Oversized is true when the data exceeded the parser's limit; Data is then empty.
	Oversized bool
}

// Parser splits a byte stream into events. It is not safe for concurrent use.
type Parser struct {
	maxEvent int
	onEvent  func(Event)

	started  bool // the optional leading byte-order mark has been handled
	bomSeen  int
	afterCR  bool // the previous chunk ended in CR: a leading LF belongs to that line ending
	line     []byte
	lineLen  int // bytes of the current line, including those dropped past maxEvent
	data     []byte
	hasData  bool
	size     int
	over     bool
	evType   string
	lastID   string
	comments int
}

const bom = "\xef\xbb\xbf"

// headKeep is the room a line has beyond maxEvent bytes: enough for the "data: " in front.
const headKeep = 8

// NewParser returns a parser calling onEvent for each event. maxEventBytes bounds the data kept
// for one event (and the length of any line); larger events are dispatched as Oversized.
func NewParser(maxEventBytes int, onEvent func(Event)) *Parser {
	if maxEventBytes < 1 {
		maxEventBytes = 1
	}
	return &Parser{maxEvent: maxEventBytes, onEvent: onEvent}
}

// Comments returns the number of comment lines (keepalives) seen so far.
func (p *Parser) Comments() int { return p.comments }

// Write feeds the next bytes of the stream; it never fails.
func (p *Parser) Write(b []byte) (int, error) {
	n := len(b)
	if !p.started {
		// Strip one leading byte-order mark, which may arrive split across writes.
		for len(b) > 0 && p.bomSeen < len(bom) && b[0] == bom[p.bomSeen] {
			p.bomSeen++
			b = b[1:]
		}
		switch {
		case p.bomSeen == len(bom):
			p.started = true
		case len(b) > 0:
			p.appendLine([]byte(bom[:p.bomSeen])) // not a BOM after all: those bytes are content
			p.started = true
		default:
			return n, nil
		}
	}
	for len(b) > 0 {
		if p.afterCR {
			p.afterCR = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.appendLine(b)
			break
		}
		p.appendLine(b[:i])
		p.afterCR = b[i] == '\r'
		b = b[i+1:]
		p.processLine()
	}
	return n, nil
}

func (p *Parser) appendLine(b []byte) {
	p.lineLen += len(b)
	if room := p.maxEvent + headKeep - len(p.line); room > 0 {
		p.line = append(p.line, b[:min(room, len(b))]...)
	}
}

func (p *Parser) processLine() {
	line, lineLen := p.line, p.lineLen
	truncated := lineLen > len(line)
	defer func() {
		p.line, p.lineLen = shrink(p.line), 0
	}()
	if lineLen == 0 {
		p.dispatch()
		return
	}
	if line[0] == ':' {
		p.comments++
		return
	}
	field, value := line, []byte(nil)
	valueLen := 0
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		valueLen = lineLen - i - 1
		if len(value) > 0 && value[0] == ' ' {
			value, valueLen = value[1:], valueLen-1
		}
	} else if truncated {
		field = nil // a field name this long is none we know
	}
	switch string(field) {
	case "data":
		first := !p.hasData
		p.hasData = true
		if !first {
			p.size++ // the "\n" joining data lines
		}
		p.size += valueLen
		if truncated || p.over || p.size > p.maxEvent {
			p.over = true
			p.data = p.data[:0]
			return
		}
		if !first {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
	case "event":
		if !truncated {
			p.evType = string(value)
		}
	case "id":
		if !truncated && bytes.IndexByte(value, 0) < 0 {
			p.lastID = string(value)
		}
	}
}

func (p *Parser) dispatch() {
	if p.hasData {
		ev := Event{Type: p.evType, ID: p.lastID, Size: p.size, Oversized: p.over}
		if !p.over {
			ev.Data = p.data
		}
		p.onEvent(ev)
	}
	p.hasData, p.size, p.over, p.evType = false, 0, false, ""
	p.data = shrink(p.data)
}

// shrink empties b, dropping a buffer one big event grew so the stream doesn't keep it.
func shrink(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b[:0]
}
