package yamlfile_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/enricher/policy/yamlfile"
	"github.com/mcpwatch/mcpwatch/internal/config"
)

const doc = `a: 1
list:
  - name: x
    items: [p, q,
      r]
  - name: y
    nested:
      deep: true
ref: *anchor
`

func TestLineOf(t *testing.T) {
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("anchor: &anchor {k: v}\n"+doc), &root))
	for path, want := range map[string]int{
		"":                    1,
		"a":                   2,
		"list":                3,
		"list[0]":             4,
		"list[0].name":        4,
		"list[0].items":       5,
		"list[0].items[2]":    6,
		"list[1]":             7,
		"list[1].nested":      8,
		"list[1].nested.deep": 9,
		"list[1].missing":     7, // a missing key is reported at its parent
		"list[5].name":        3, // so is a missing element
		"a.b":                 2, // a scalar has no fields
		"list[x]":             3, // a malformed index ends the path
		"ref.k":               1, // through the alias, to the anchor's mapping
		"nope":                1,
	} {
		require.Equal(t, want, yamlfile.LineOf(&root, path), path)
	}
	require.Equal(t, 0, yamlfile.LineOf(&yaml.Node{}, "a"))
}

type shape struct {
	Name  string   `yaml:"name"`
	Items []string `yaml:"items"`
}

func (s *shape) Validate() error {
	var errs config.Errors
	if s.Name == "" {
		errs.Add("name", "must not be empty")
	}
	for i, it := range s.Items {
		if it == "bad" {
			errs.Add(fmt.Sprintf("items[%d]", i), "is bad")
		}
	}
	return errs.Err()
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"good", "name: n\nitems: [a]\n", ""},
		{"validate", "items:\n  - a\n  - bad\n", "f.yml:1: name: must not be empty\nf.yml:3: items[1]: is bad"},
		{"empty validates too", "", "f.yml: name: must not be empty"},
		{"unknown key", "name: n\nitem: [a]\n", "f.yml:2: field item not found in type yamlfile_test.shape"},
		{"type errors, all of them", "name: [x]\nitems: {a: b}\n", "f.yml:1: cannot unmarshal !!seq into string\nf.yml:2: cannot unmarshal !!map into []string"},
		{"no env expansion", "name: ${NOT_EXPANDED}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s shape
			err := yamlfile.Decode([]byte(tc.in), "f.yml", &s)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.want)
			_, ok := err.(*yamlfile.Error)
			require.True(t, ok, "an *Error")
		})
	}
	var s shape
	require.NoError(t, yamlfile.Decode([]byte("name: ${X}\n"), "f.yml", &s))
	require.Equal(t, "${X}", s.Name, "regular expressions keep their $")
}
