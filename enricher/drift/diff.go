package drift

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

const (
	// maxDiffLines bounds a diff; the rest is counted.
	maxDiffLines = 20
	// maxQuoted bounds each side of a string change (in runes, before quoting).
	maxQuoted = 160
)

// Diff describes how the canonical definition old became new, one change per line, in a
// stable order: changed strings as old → new (quoted, truncated, invisible characters
// escaped), JSON Schema properties added, removed or changed (type, description, nested
// properties), required fields added (+) or removed (-), annotations and other fields old →
// new. Named lists (a prompt's arguments) compare by name.
func Diff(old, new string) []string {
	o, err1 := decode([]byte(old))
	n, err2 := decode([]byte(new))
	if err1 != nil || err2 != nil {
		return []string{"definition changed"}
	}
	var d differ
	d.value("", o, n)
	if len(d.lines) == 0 {
		return []string{"definition changed (same fields, different encoding)"}
	}
	if len(d.lines) > maxDiffLines {
		more := len(d.lines) - maxDiffLines
		d.lines = append(d.lines[:maxDiffLines], fmt.Sprintf("… and %d more changes", more))
	}
	return d.lines
}

type differ struct{ lines []string }

func (d *differ) add(format string, args ...any) {
	d.lines = append(d.lines, fmt.Sprintf(format, args...))
}

func (d *differ) value(path string, o, n any) {
	if equal(o, n) {
		return
	}
	switch ov := o.(type) {
	case map[string]any:
		if nv, ok := n.(map[string]any); ok {
			d.object(path, ov, nv)
			return
		}
	case []any:
		if nv, ok := n.([]any); ok {
			d.array(path, ov, nv)
			return
		}
	}
	d.add("%s: %s → %s", label(path), short(o), short(n))
}

func (d *differ) object(path string, o, n map[string]any) {
	for _, k := range unionKeys(o, n) {
		p := join(path, k)
		ov, inO := o[k]
		nv, inN := n[k]
		switch {
		case !inO:
			d.add("%s: added%s", p, describe(k, nv))
		case !inN:
			d.add("%s: removed%s", p, describe(k, ov))
		case k == "required":
			d.required(p, ov, nv)
		default:
			d.value(p, ov, nv)
		}
	}
}

// required reports a JSON Schema's required list as set changes.
func (d *differ) required(path string, o, n any) {
	os, ok1 := strings1(o)
	ns, ok2 := strings1(n)
	if !ok1 || !ok2 {
		d.value(path, o, n)
		return
	}
	var plus, minus []string
	for _, s := range ns {
		if !slices.Contains(os, s) {
			plus = append(plus, "+"+s)
		}
	}
	for _, s := range os {
		if !slices.Contains(ns, s) {
			minus = append(minus, "-"+s)
		}
	}
	if len(plus)+len(minus) == 0 {
		return // the same set in another order
	}
	d.add("%s: %s", path, strings.Join(append(plus, minus...), " "))
}

// array compares lists of named objects (a prompt's arguments) by name, others as a whole.
func (d *differ) array(path string, o, n []any) {
	on, ok1 := byName(o)
	nn, ok2 := byName(n)
	if !ok1 || !ok2 {
		d.add("%s: %s → %s", label(path), short(o), short(n))
		return
	}
	for _, k := range unionKeys(on, nn) {
		p := path + "[" + k + "]"
		ov, inO := on[k]
		nv, inN := nn[k]
		switch {
		case !inO:
			d.add("%s: added", p)
		case !inN:
			d.add("%s: removed", p)
		default:
			d.value(p, ov, nv)
		}
	}
}

// byName indexes a list whose elements are all objects with a distinct string name.
func byName(a []any) (map[string]any, bool) {
	m := make(map[string]any, len(a))
	for _, e := range a {
		o, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		name, ok := o["name"].(string)
		if !ok {
			return nil, false
		}
		if _, dup := m[name]; dup {
			return nil, false
		}
		m[name] = o
	}
	return m, true
}

func strings1(v any) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// describe says what was added or removed: a property's type, a short scalar.
func describe(key string, v any) string {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["type"].(string); ok {
			return " (" + t + ")"
		}
		if t, ok := x["type"]; ok {
			return " (" + compact(t) + ")"
		}
		return ""
	case []any:
		return ""
	}
	if key == "description" || key == "title" {
		return " " + short(v)
	}
	return " (" + short(v) + ")"
}

func unionKeys[V any](o, n map[string]V) []string {
	keys := make([]string, 0, len(o)+len(n))
	for k := range o {
		keys = append(keys, k)
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func label(path string) string {
	if path == "" {
		return "definition"
	}
	return path
}

func equal(o, n any) bool { return compact(o) == compact(n) }

func compact(v any) string {
	s, err := canonical(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// short renders a value for a diff line: strings quoted with Go escapes for what is not
// printable (zero-width, bidi and tag characters show as \u escapes), truncated; other values
// as compact JSON, truncated.
func short(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	return truncate(compact(v))
}

func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…", string([]rune(s)[:maxQuoted]))
}

func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return s
	}
	return string([]rune(s)[:maxQuoted]) + "…"
}

// textFields returns the description and title strings of a canonical definition, anywhere
// in it (a schema property's description, a prompt argument's), keyed by their path.
func textFields(canonicalJSON string) map[string]string {
	v, err := decode([]byte(canonicalJSON))
	if err != nil {
		return nil
	}
	out := make(map[string]string)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := join(path, k)
				if s, ok := e.(string); ok && (k == "description" || k == "title") {
					out[p] = s
					continue
				}
				walk(p, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", v)
	return out
}
