package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Glob is a shell-style pattern for agent, server and tool names: * matches any run of
// characters (/ and . included, so spiffe://corp/* works), ? one character, [abc] and [a-z]
// one of a class, [!a-z] (or [^a-z]) one outside it, and \ escapes the next character. A
// pattern without these is an exact name. Matching is case-sensitive.
type Glob struct {
	pattern string
	literal bool           // no metacharacters: compare with ==
	stars   []string       // only * as metacharacter: the literal parts around the stars
	re      *regexp.Regexp // otherwise
}

// CompileGlob parses pattern.
func CompileGlob(pattern string) (Glob, error) {
	switch {
	case pattern == "":
		return Glob{}, errors.New("empty pattern")
	case !utf8.ValidString(pattern):
		return Glob{}, errors.New("not valid UTF-8")
	case !strings.ContainsAny(pattern, `*?[\`):
		return Glob{pattern: pattern, literal: true}, nil
	case !strings.ContainsAny(pattern, `?[\`):
		// The usual patterns (ci-*, *_delete, *prod*) are matched without a regexp.
		return Glob{pattern: pattern, stars: strings.Split(pattern, "*")}, nil
	}
	p := []rune(pattern)
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			if i+1 == len(p) {
				return Glob{}, errors.New(`trailing \ escapes nothing`)
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		case '[':
			end, class, err := globClass(p[i:])
			if err != nil {
				return Glob{}, err
			}
			b.WriteString(class)
			i += end
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		panic(fmt.Sprintf("BUG: glob %q became the invalid regexp %q: %v", pattern, b.String(), err))
	}
	return Glob{pattern: pattern, re: re}, nil
}

// globClass translates the class at the start of p ("[…]…") into a regexp class, and returns
// the index of its closing bracket in p.
func globClass(p []rune) (end int, class string, err error) {
	var b strings.Builder
	b.WriteByte('[')
	i := 1
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		b.WriteByte('^')
		i++
	}
	first := i
	for ; i < len(p); i++ {
		c := p[i]
		switch {
		case c == ']' && i > first:
			b.WriteByte(']')
			return i, b.String(), nil
		case c == '\\':
			if i+1 == len(p) {
				return 0, "", errors.New("missing closing ]")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		case c == '-' && i > first && i+1 < len(p) && p[i+1] != ']':
			if p[i+1] < p[i-1] {
				return 0, "", fmt.Errorf("bad range %c-%c in class", p[i-1], p[i+1])
			}
			b.WriteByte('-')
		case c == '[' || c == '^' || c == '-' || c == ']':
			b.WriteByte('\\')
			b.WriteRune(c)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return 0, "", errors.New("missing closing ]")
}

// MustCompileGlob is CompileGlob for patterns known to be valid; it panics otherwise.
func MustCompileGlob(pattern string) Glob {
	g, err := CompileGlob(pattern)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return g
}

// Match reports whether s matches the whole pattern.
func (g Glob) Match(s string) bool {
	switch {
	case g.literal:
		return s == g.pattern
	case g.stars != nil:
		return matchStars(g.stars, s)
	}
	return g.re != nil && g.re.MatchString(s)
}

// matchStars matches s against parts joined by *: the first part is a prefix, the last a
// suffix, and the ones between occur in order. Taking the leftmost occurrence of each middle
// part is enough: a later one leaves less room for the rest.
func matchStars(parts []string, s string) bool {
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// Literal reports whether the pattern is an exact name.
func (g Glob) Literal() bool { return g.literal }

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Globs is a list of patterns; a name matches the list when it matches any of them.
type Globs []Glob

// CompileGlobs compiles patterns, adding each invalid one to errs at path[i].
func CompileGlobs(errs *config.Errors, path string, patterns []string) Globs {
	if patterns == nil {
		return nil
	}
	out := make(Globs, 0, len(patterns))
	for i, p := range patterns {
		g, err := CompileGlob(p)
		if err != nil {
			errs.Addf(fmt.Sprintf("%s[%d]", path, i), "invalid glob %s: %v", Quote(p), err)
			continue
		}
		out = append(out, g)
	}
	return out
}

// Match reports whether s matches any pattern; the first that matches is returned.
func (gs Globs) Match(s string) (Glob, bool) {
	for _, g := range gs {
		if g.Match(s) {
			return g, true
		}
	}
	return Glob{}, false
}

// String lists the patterns, comma-separated.
func (gs Globs) String() string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = g.pattern
	}
	return strings.Join(s, ", ")
}

// Quote quotes a value from a file for an error message, cut to 64 bytes so that a long value
// (a misplaced secret, say) is not repeated whole into logs.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
