package inventory_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"github", []string{"github"}, []string{"GitHub", "github2", "", "githu"}},
		{"ci-*", []string{"ci-", "ci-1234", "ci-a/b.c"}, []string{"ci", "xci-1", "CI-1"}},
		{"spiffe://corp/*", []string{"spiffe://corp/ns/a/sa/b"}, []string{"spiffe://other/x"}},
		{"*_delete", []string{"repo_delete", "_delete"}, []string{"delete", "repo_delete2"}},
		{"read_?", []string{"read_a", "read_é"}, []string{"read_", "read_ab"}},
		{"db-[0-9]", []string{"db-0", "db-9"}, []string{"db-a", "db-10"}},
		{"db-[!0-9]", []string{"db-a"}, []string{"db-1"}},
		{"db-[^0-9]", []string{"db-a"}, []string{"db-1"}},
		{"[]]x", []string{"]x"}, []string{"x"}},
		{"[a-]", []string{"a", "-"}, []string{"b"}},
		{`a\*b`, []string{"a*b"}, []string{"axb"}},
		{`a.b`, []string{"a.b"}, []string{"axb"}},
		{"a(b)+", []string{"a(b)+"}, []string{"abb"}},
		{"*", []string{"", "anything at all\n"}, nil},
		{"*prod*", []string{"prod", "db-prod-1", "prodprod"}, []string{"pro", "PROD"}},
		{"a*b*a", []string{"aba", "abba", "a-b-b-a", "abaXba"}, []string{"ab", "aab", "abab"}},
		{"**x", []string{"x", "yyx"}, []string{"xy"}},
		{"ab*ba", []string{"abba", "ab-ba"}, []string{"aba"}},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			g, err := inventory.CompileGlob(tc.pattern)
			require.NoError(t, err)
			require.Equal(t, tc.pattern, g.String())
			for _, s := range tc.match {
				require.True(t, g.Match(s), "%q should match %q", tc.pattern, s)
			}
			for _, s := range tc.noMatch {
				require.False(t, g.Match(s), "%q should not match %q", tc.pattern, s)
			}
		})
	}
}

func TestGlobInvalid(t *testing.T) {
	for pattern, want := range map[string]string{
		"":       "empty pattern",
		"[":      "missing closing ]",
		"a[bc":   "missing closing ]",
		"[]":     "missing closing ]",
		`a\`:     `trailing \ escapes nothing`,
		`[a\`:    "missing closing ]",
		"[z-a]x": "bad range z-a in class",
	} {
		t.Run(pattern, func(t *testing.T) {
			_, err := inventory.CompileGlob(pattern)
			require.EqualError(t, err, want)
		})
	}
}

func FuzzGlob(f *testing.F) {
	for _, s := range []string{"ci-*", "[a-z]?", `a\*`, "[!x]]", "[", "*[]-]*"} {
		f.Add(s, "ci-1")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := inventory.CompileGlob(pattern)
		if err != nil {
			return
		}
		got := g.Match(name)
		if g.Literal() {
			require.Equal(t, pattern == name, got)
		}
		// The star-only fast path agrees with the regexp translation.
		if !strings.ContainsAny(pattern, `?[\`) && strings.Contains(pattern, "*") {
			re := regexp.MustCompile("^(?s:" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + ")$")
			require.Equal(t, re.MatchString(name), got, "%q ~ %q", pattern, name)
		}
	})
}
