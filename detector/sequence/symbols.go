package sequence

import "strings"

// Symbol is an interned (method, target) pair, e.g. ("tools/call", "delete_all").
type Symbol uint16

const (
	// Boundary stands for the start and the end of a session: a session "a b" is the path
	// Boundary → a → b → Boundary, so unusual first and last calls count as transitions.
	Boundary Symbol = 0
	// Other stands for every pair interned after the table is full.
	Other Symbol = 1

	maxSymbols = 1<<16 - 1
)

type call struct{ method, target string }

// Symbols interns (method, target) pairs. One table is shared by every baseline of a Model, so
// a symbol means the same call for every agent and its peers. It holds at most 65,535 pairs
// (the rest become Other): an agent probing random tool names cannot grow it without bound.
type Symbols struct {
	ids   map[call]Symbol
	calls []call
}

// NewSymbols returns a table holding only Boundary and Other.
func NewSymbols() *Symbols {
	return &Symbols{ids: map[call]Symbol{}, calls: []call{{}, {}}}
}

// Intern returns the symbol of (method, target), adding it if new. Looking up a known pair does
// not allocate.
func (t *Symbols) Intern(method, target string) Symbol {
	if s, ok := t.ids[call{method, target}]; ok {
		return s
	}
	if len(t.calls) >= maxSymbols {
		return Other
	}
	// Clone: the strings may point into a large decoded event we must not keep alive.
	c := call{strings.Clone(method), strings.Clone(target)}
	s := Symbol(len(t.calls))
	t.calls = append(t.calls, c)
	t.ids[c] = s
	return s
}

// Lookup returns the symbol of (method, target) without adding it.
func (t *Symbols) Lookup(method, target string) (Symbol, bool) {
	s, ok := t.ids[call{method, target}]
	return s, ok
}

// Call returns the pair behind s ("", "" for Boundary, Other and unknown symbols).
func (t *Symbols) Call(s Symbol) (method, target string) {
	if int(s) >= len(t.calls) {
		return "", ""
	}
	c := t.calls[s]
	return c.method, c.target
}

// Name is s for a human: "tools/call delete_all", "tools/list", or a placeholder for Boundary
// and Other.
func (t *Symbols) Name(s Symbol) string {
	switch s {
	case Boundary:
		return "(session boundary)"
	case Other:
		return "(other)"
	}
	m, tg := t.Call(s)
	if tg == "" {
		return m
	}
	return m + " " + tg
}

// Len is the number of symbols, Boundary and Other included.
func (t *Symbols) Len() int { return len(t.calls) }
