package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// masked is what the collector puts in place of a secret (collector/capture.Masked); a value
// that is exactly this was hidden and cannot be checked.
const masked = "***"

// argument is a compiled ArgumentSpec.
type argument struct {
	tools        inventory.Globs
	path         string
	steps        []argStep // none: the whole arguments object
	required     bool
	mustMatch    *regexp.Regexp
	mustNotMatch *regexp.Regexp
	maxLength    int
	enum         []string
}

// checksValue reports whether the constraint looks at values (not only at presence).
func (a *argument) checksValue() bool {
	return a.mustMatch != nil || a.mustNotMatch != nil || a.maxLength > 0 || a.enum != nil
}

type argStep struct {
	key   string // an object key, when not an index
	index int    // an array index; -1 for [*]
	isIdx bool
}

func compileArgument(errs *config.Errors, at string, as ArgumentSpec) *argument {
	n := len(*errs)
	a := &argument{
		tools:     inventory.CompileGlobs(errs, at+".tools", as.Tools),
		path:      as.Path,
		required:  as.Required,
		maxLength: as.MaxLength,
		enum:      as.Enum,
	}
	if len(as.Tools) == 0 {
		errs.Add(at+".tools", "must list at least one tool")
	}
	steps, err := parseArgPath(as.Path)
	if err != nil {
		errs.Addf(at+".path", "%v", err)
	}
	a.steps = steps
	a.mustMatch = compileRegexp(errs, at+".must_match", as.MustMatch)
	a.mustNotMatch = compileRegexp(errs, at+".must_not_match", as.MustNotMatch)
	if as.MaxLength < 0 {
		errs.Addf(at+".max_length", "must not be negative, got %d", as.MaxLength)
	}
	if as.Enum != nil && len(as.Enum) == 0 {
		errs.Add(at+".enum", "must list at least one value")
	}
	if len(*errs) == n && !a.required && !a.checksValue() {
		errs.Add(at, "checks nothing: give required, must_match, must_not_match, max_length or enum")
	}
	if len(*errs) > n {
		return nil
	}
	return a
}

// parseArgPath parses "a.b[0].c", "files[*].path", "$" or "$.a".
func parseArgPath(p string) ([]argStep, error) {
	if p == "" {
		return nil, errors.New(`must not be empty (use $ for the whole arguments object)`)
	}
	rest := p
	if rest == "$" {
		return nil, nil
	}
	if strings.HasPrefix(rest, "$.") || strings.HasPrefix(rest, "$[") {
		rest = strings.TrimPrefix(rest[1:], ".")
	}
	var out []argStep
	expectKey := true // a key must come first and after every dot
	for rest != "" {
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("invalid path %s: missing ]", inventory.Quote(p))
			}
			in := rest[1:end]
			switch i, err := strconv.Atoi(in); {
			case in == "*":
				out = append(out, argStep{index: -1, isIdx: true})
			case err == nil && i >= 0 && in[0] != '+':
				out = append(out, argStep{index: i, isIdx: true})
			default:
				return nil, fmt.Errorf("invalid path %s: an index is a number or *, got [%s]", inventory.Quote(p), in)
			}
			rest, expectKey = rest[end+1:], false
		case rest[0] == ']':
			return nil, fmt.Errorf("invalid path %s: unexpected ]", inventory.Quote(p))
		case rest[0] == '.':
			if expectKey {
				return nil, fmt.Errorf("invalid path %s: empty key", inventory.Quote(p))
			}
			rest, expectKey = rest[1:], true
			if rest == "" {
				return nil, fmt.Errorf("invalid path %s: empty key", inventory.Quote(p))
			}
		default:
			if !expectKey && len(out) > 0 {
				return nil, fmt.Errorf("invalid path %s: a key must follow a dot", inventory.Quote(p))
			}
			end := strings.IndexAny(rest, ".[]")
			if end < 0 {
				end = len(rest)
			}
			out = append(out, argStep{key: rest[:end]})
			rest, expectKey = rest[end:], false
		}
	}
	return out, nil
}

// found is a value at a concrete path.
type found struct {
	path string
	v    any
}

// collect returns the values at steps under v, with their concrete paths; anyIndex treats
// every index as [*] (shapes list element shapes, not elements).
func collect(out []found, v any, path string, steps []argStep, anyIndex bool) []found {
	if len(steps) == 0 {
		return append(out, found{path: path, v: v})
	}
	s := steps[0]
	switch x := v.(type) {
	case map[string]any:
		if s.isIdx {
			return out
		}
		if c, ok := x[s.key]; ok {
			return collect(out, c, joinKey(path, s.key), steps[1:], anyIndex)
		}
	case []any:
		if !s.isIdx {
			return out
		}
		if s.index >= 0 && !anyIndex {
			if s.index < len(x) {
				return collect(out, x[s.index], path+"["+strconv.Itoa(s.index)+"]", steps[1:], anyIndex)
			}
			return out
		}
		for i, c := range x {
			out = collect(out, c, path+"["+strconv.Itoa(i)+"]", steps[1:], anyIndex)
		}
	}
	return out
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// argText is the text a constraint checks: a string's value, other values as compact JSON.
func argText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: cannot marshal decoded JSON: " + err.Error())
	}
	return string(b)
}

// arguments is an event's tools/call arguments, decoded once for every constraint.
type arguments struct {
	decoded    bool
	val        any
	ok         bool   // val holds the arguments
	why        string // why they cannot be checked, when !ok
	shapeDone  bool
	shape      any
	shapeKnown bool
}

func (as *arguments) load(ev *schemas.Event) {
	if as.decoded {
		return
	}
	as.decoded = true
	c := ev.Content
	switch {
	case c == nil || c.Arguments == "":
		as.why = "the arguments were not passed to the enricher"
	case !decodeJSON(c.Arguments, &as.val):
		if c.Truncated {
			as.why = "the arguments were cut at the inspection size cap"
		} else {
			as.why = "the arguments are not valid JSON"
		}
	default:
		as.ok = true
	}
}

func (as *arguments) loadShape(ev *schemas.Event) {
	if as.shapeDone {
		return
	}
	as.shapeDone = true
	as.shapeKnown = ev.ArgsShape != "" && decodeJSON(ev.ArgsShape, &as.shape)
}

func decodeJSON(s string, v *any) bool {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if d.Decode(v) != nil {
		return false
	}
	_, err := d.Token() // nothing may follow the value
	return err == io.EOF
}

// Unchecked is a constraint that could not be checked on an event, and why.
type Unchecked struct {
	Rule *Rule
	// Path is the argument's path ("" for the whole arguments object).
	Path string
	// Why says what was missing, e.g. "the arguments were cut at the inspection size cap".
	Why string
}

// check checks the constraint against an event's arguments. It returns what was wrong (never
// quoting the values) and what could not be checked.
func (a *argument) check(r *Rule, ev *schemas.Event, as *arguments, reasons []string, unchecked []Unchecked) ([]string, []Unchecked) {
	as.load(ev)
	if !as.ok {
		// Without the values, the shape can still say whether a required argument is there.
		decided := false
		if a.required {
			as.loadShape(ev)
			if as.shapeKnown {
				if len(collect(nil, as.shape, "", a.steps, true)) == 0 {
					reasons = append(reasons, fmt.Sprintf("argument %s is missing (required)", a.path))
					decided = true
				} else {
					decided = !a.checksValue()
				}
			}
		}
		if !decided {
			unchecked = append(unchecked, Unchecked{Rule: r, Path: a.pathOrRoot(), Why: as.why})
		}
		return reasons, unchecked
	}
	values := collect(nil, as.val, "", a.steps, false)
	if len(values) == 0 && a.required {
		reasons = append(reasons, fmt.Sprintf("argument %s is missing (required)", a.path))
	}
	for _, f := range values {
		p := f.path
		if p == "" {
			p = "$"
		}
		s := argText(f.v)
		if s == masked && a.checksValue() {
			unchecked = append(unchecked, Unchecked{Rule: r, Path: f.path, Why: "the value was masked as a secret by the collector"})
			continue
		}
		n := utf8.RuneCountInString(s)
		if a.maxLength > 0 && n > a.maxLength {
			reasons = append(reasons, fmt.Sprintf("argument %s has %d characters, more than max_length %d", p, n, a.maxLength))
		}
		if a.enum != nil && !slices.Contains(a.enum, s) {
			reasons = append(reasons, fmt.Sprintf("argument %s (%d characters) is not one of enum [%s]", p, n, strings.Join(a.enum, ", ")))
		}
		if a.mustMatch != nil && !a.mustMatch.MatchString(s) {
			reasons = append(reasons, fmt.Sprintf("argument %s (%d characters) does not match must_match /%s/", p, n, a.mustMatch))
		}
		if a.mustNotMatch != nil && a.mustNotMatch.MatchString(s) {
			reasons = append(reasons, fmt.Sprintf("argument %s (%d characters) matches must_not_match /%s/", p, n, a.mustNotMatch))
		}
	}
	return reasons, unchecked
}

func (a *argument) pathOrRoot() string {
	if len(a.steps) == 0 {
		return ""
	}
	return a.path
}

// describe says what the constraint allows.
func (a *argument) describe() string {
	var c []string
	if a.required {
		c = append(c, "required")
	}
	if a.mustMatch != nil {
		c = append(c, fmt.Sprintf("matching /%s/", a.mustMatch))
	}
	if a.mustNotMatch != nil {
		c = append(c, fmt.Sprintf("not matching /%s/", a.mustNotMatch))
	}
	if a.maxLength > 0 {
		c = append(c, fmt.Sprintf("at most %d characters", a.maxLength))
	}
	if a.enum != nil {
		c = append(c, "one of ["+strings.Join(a.enum, ", ")+"]")
	}
	return fmt.Sprintf("argument %s of %s %s", a.path, a.tools, strings.Join(c, ", "))
}
