package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// testConfig is shaped like the Config structs of mcpwatch's packages: a section, a list of
// structs, a map, a duration, defaults and a Validate that reports several problems.
type testConfig struct {
	Listen  string            `yaml:"listen"`
	Timeout time.Duration     `yaml:"timeout"`
	Token   string            `yaml:"token"`
	Price   string            `yaml:"price"`
	Literal string            `yaml:"literal"`
	HTTP    httpConfig        `yaml:"http"`
	Labels  map[string]string `yaml:"labels"`
}

type httpConfig struct {
	MaxBody   int        `yaml:"max_body"`
	Upstreams []upstream `yaml:"upstreams"`
}

type upstream struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
}

func (c *testConfig) SetDefaults() {
	*c = testConfig{
		Listen:  "127.0.0.1:7410",
		Timeout: 5 * time.Second,
		HTTP:    httpConfig{MaxBody: 1 << 20},
		Labels:  map[string]string{"env": "dev"},
	}
}

func (c *testConfig) Validate() error {
	var errs Errors
	if c.Timeout <= 0 {
		errs.Add("timeout", "must be positive")
	}
	errs.Merge("http", c.HTTP.Validate())
	return errs.Err()
}

func (h httpConfig) Validate() error {
	var errs Errors
	for i, u := range h.Upstreams {
		if !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://") {
			errs.Addf(fmt.Sprintf("upstreams[%d].url", i), "must be an absolute http(s) URL, got %q", u.URL)
		}
	}
	return errs.Err()
}

func defaults() testConfig {
	var c testConfig
	c.SetDefaults()
	return c
}

func setTestEnv(t *testing.T) {
	t.Setenv("MCPW_TEST_LISTEN", "127.0.0.1:7777")
	t.Setenv("MCPW_TEST_EMPTY", "")
	t.Setenv("MCPW_TEST_PORT", "8080")
	// Unset for sure, whatever the environment the test runs in.
	for _, name := range []string{"MCPW_TEST_UNSET", "MCPW_TEST_HOST"} {
		t.Setenv(name, "")
		require.NoError(t, os.Unsetenv(name))
	}
}

func TestLoadGood(t *testing.T) {
	setTestEnv(t)
	tests := map[string]func(c *testConfig){
		"defaults.good.yml":     func(c *testConfig) {},
		"null_section.good.yml": func(c *testConfig) {},
		"override.good.yml": func(c *testConfig) {
			c.Listen = "127.0.0.1:9000"
			c.Timeout = 250 * time.Millisecond
			c.HTTP.MaxBody = 4096
			c.HTTP.Upstreams = []upstream{
				{Name: "filesystem", URL: "http://127.0.0.1:3001/mcp"},
				{Name: "github", URL: "https://mcp.example.com/"},
			}
			c.Labels["team"] = "billing" // maps merge into the default map
		},
		"env.good.yml": func(c *testConfig) {
			c.Listen = "127.0.0.1:7777"
			c.Timeout = 30 * time.Second
			c.Token = "fallback" // set but empty takes the default too
			c.Price = "$5 or $5"
			c.Literal = "${MCPW_TEST_LISTEN}"
			c.Labels["empty"] = "" // set but empty, no default: empty
			c.Labels["url"] = "http://localhost:8080/mcp"
		},
	}
	files, err := filepath.Glob("testdata/*.good.yml")
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every good file needs a case")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			edit, ok := tests[filepath.Base(path)]
			require.True(t, ok, "no case for %s", path)
			want := defaults()
			edit(&want)

			var got testConfig
			require.NoError(t, Load(path, &got))
			require.Equal(t, want, got)
		})
	}
}

func TestLoadBad(t *testing.T) {
	setTestEnv(t)
	// Each error must contain every fragment; the file name and line are part of the fragments.
	tests := map[string][]string{
		"unknown_key.bad.yml":      {"testdata/unknown_key.bad.yml:4: field upstream not found in type config.httpConfig"},
		"unknown_keys.bad.yml":     {"unknown_keys.bad.yml:1: field lisen not found", "\ntestdata/unknown_keys.bad.yml:3: field tiemout not found"},
		"wrong_type.bad.yml":       {"wrong_type.bad.yml:3: cannot unmarshal !!str `lots` into int"},
		"duration_number.bad.yml":  {"duration_number.bad.yml:2: cannot unmarshal !!int `5` into time.Duration"},
		"duration_words.bad.yml":   {"duration_words.bad.yml:1: cannot unmarshal !!str `5 seconds` into time.Duration"},
		"env_unset.bad.yml":        {"env_unset.bad.yml:3: environment variable MCPW_TEST_UNSET is not set"},
		"env_unterminated.bad.yml": {"env_unterminated.bad.yml:2: unterminated ${"},
		"env_bad_name.bad.yml":     {`env_bad_name.bad.yml:1: invalid environment variable name "1TOKEN"`},
		"validate.bad.yml": {
			"testdata/validate.bad.yml: timeout: must be positive\n",
			"testdata/validate.bad.yml: http.upstreams[1].url: must be an absolute http(s) URL, got \"/mcp\"",
		},
		// yaml reports a syntax error at the line of the enclosing mapping, not of the bad key.
		"syntax.bad.yml":        {"syntax.bad.yml:3: did not find expected key"},
		"two_documents.bad.yml": {"two_documents.bad.yml:2: only one YAML document is allowed (another one starts here)"},
		"duplicate_key.bad.yml": {`duplicate_key.bad.yml:3: mapping key "listen" already defined at line 1`},
	}
	files, err := filepath.Glob("testdata/*.bad.yml")
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every bad file needs a case")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, ok := tests[filepath.Base(path)]
			require.True(t, ok, "no case for %s", path)
			var got testConfig
			err := Load(path, &got)
			require.Error(t, err)
			for _, w := range want {
				require.ErrorContains(t, err, w)
			}
			// Every line of the error names the file.
			for _, line := range strings.Split(err.Error(), "\n") {
				require.True(t, strings.HasPrefix(line, path+":"), "line %q does not start with the file name", line)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Run("validate errors can be inspected", func(t *testing.T) {
		var c testConfig
		err := Decode(strings.NewReader("timeout: 0s\nhttp: {upstreams: [{url: x}, {url: y}]}\n"), "inline", &c)
		errs, ok := errors.AsType[Errors](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, Errors{
			{Path: "timeout", Msg: "must be positive"},
			{Path: "http.upstreams[0].url", Msg: `must be an absolute http(s) URL, got "x"`},
			{Path: "http.upstreams[1].url", Msg: `must be an absolute http(s) URL, got "y"`},
		}, errs)
		fe, ok := errors.AsType[FieldError](err)
		require.True(t, ok)
		require.Equal(t, "timeout", fe.Path)
	})
	t.Run("missing file", func(t *testing.T) {
		var c testConfig
		err := Load("testdata/does-not-exist.yml", &c)
		require.ErrorContains(t, err, "cannot read config: open testdata/does-not-exist.yml")
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("reader fails", func(t *testing.T) {
		var c testConfig
		err := Decode(iotest.ErrReader(errors.New("disk on fire")), "x.yml", &c)
		require.EqualError(t, err, "cannot read config x.yml: disk on fire")
	})
	t.Run("not a pointer", func(t *testing.T) {
		require.ErrorContains(t, Decode(strings.NewReader("a: 1"), "x.yml", testConfig{}), "need a non-nil pointer")
		require.ErrorContains(t, Decode(strings.NewReader("a: 1"), "x.yml", (*testConfig)(nil)), "need a non-nil pointer")
	})
	t.Run("plain struct without defaults or Validate", func(t *testing.T) {
		var p struct {
			A int `yaml:"a"`
		}
		require.NoError(t, Decode(strings.NewReader("a: 3"), "x.yml", &p))
		require.Equal(t, 3, p.A)
		require.ErrorContains(t, Decode(strings.NewReader("b: 3"), "x.yml", &p), "x.yml:1: field b not found")
	})
}

// Defaults come before decoding, so a value in the file wins; Validate sees the merged result.
func TestDefaultsThenValidateOrder(t *testing.T) {
	var o orderConfig
	require.NoError(t, Decode(strings.NewReader("b: from-file\n"), "x.yml", &o))
	require.Equal(t, orderConfig{A: "default-a", B: "from-file", Calls: []string{"SetDefaults", "Validate a=default-a b=from-file"}}, o)
}

type orderConfig struct {
	A     string   `yaml:"a"`
	B     string   `yaml:"b"`
	Calls []string `yaml:"-"`
}

func (o *orderConfig) SetDefaults() {
	o.A, o.B = "default-a", "default-b"
	o.Calls = append(o.Calls, "SetDefaults")
}

func (o *orderConfig) Validate() error {
	o.Calls = append(o.Calls, "Validate a="+o.A+" b="+o.B)
	return nil
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "N_1": "one", "SPACE": "a b"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want, err string
	}{
		{in: "x: ${A}", want: "x: alpha"},
		{in: "${A}${N_1}", want: "alphaone"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${UNSET:-}", want: ""},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${EMPTY}", want: ""},
		{in: "${A:-d}", want: "alpha"},
		{in: "${UNSET:-a:-b c}", want: "a:-b c"},
		{in: "${SPACE}", want: "a b"},
		{in: "$$", want: "$"},
		{in: "$$$$", want: "$$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$${A}"},
		{in: "$A $ a$", want: "$A $ a$"},
		{in: "a\n# ${UNSET}\n  # ${UNSET}\nb: ${A}\n", want: "a\n# ${UNSET}\n  # ${UNSET}\nb: alpha\n"},
		{in: "a\r\nb: ${A}\r\n", want: "a\r\nb: alpha\r\n"},
		{in: "a\nb\nc: ${UNSET}\n", err: "line 3: environment variable UNSET is not set"},
		{in: "x: ${A\ny: }\n", err: "line 1: unterminated ${"},
		{in: "${}", err: `line 1: invalid environment variable name "" in ${}`},
		{in: "${A-B}", err: `line 1: invalid environment variable name "A-B" in ${A-B}`},
		{in: "${:-x}", err: `line 1: invalid environment variable name "" in ${:-x}`},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv([]byte(tt.in), lookup)
			if tt.err != "" {
				require.Error(t, err)
				require.True(t, strings.HasPrefix(err.Error(), tt.err), "got %q", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestErrors(t *testing.T) {
	var none Errors
	require.NoError(t, none.Err())
	none.Merge("x", nil)
	require.NoError(t, none.Err())

	var errs Errors
	errs.Add("listen", "must not be empty")
	errs.Merge("http", Errors{{Path: "upstreams[0].url", Msg: "bad"}})
	errs.Merge("api", FieldError{Path: "tls.cert", Msg: "missing"})
	errs.Merge("store", fmt.Errorf("wrapped: %w", FieldError{Path: "dsn", Msg: "empty"}))
	errs.Merge("bus", errors.New("no brokers"))
	errs.Merge("top", FieldError{Msg: "no path"})
	errs.Merge("", FieldError{Path: "kept", Msg: "as is"})
	require.EqualError(t, errs.Err(), strings.Join([]string{
		"listen: must not be empty",
		"http.upstreams[0].url: bad",
		"api.tls.cert: missing",
		"store.dsn: empty",
		"bus: no brokers",
		"top: no path",
		"kept: as is",
	}, "\n"))
	require.Equal(t, "just a message", FieldError{Msg: "just a message"}.Error())
	require.ErrorIs(t, errs.Err(), FieldError{Path: "bus", Msg: "no brokers"})
}

func TestJoinPath(t *testing.T) {
	for _, tt := range []struct{ prefix, path, want string }{
		{"", "", ""},
		{"a", "", "a"},
		{"", "b", "b"},
		{"a", "b", "a.b"},
		{"a", "[2].c", "a[2].c"},
		{"a.b[1]", "c", "a.b[1].c"},
	} {
		require.Equal(t, tt.want, JoinPath(tt.prefix, tt.path))
	}
}

// time.Duration needs no wrapper type: go.yaml.in/yaml/v3 parses duration strings itself and
// rejects bare numbers.
func TestDurationDecoding(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "5s", want: 5 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1h30m", want: 90 * time.Minute},
		{in: `"2m"`, want: 2 * time.Minute},
		{in: "-1s", want: -time.Second},
		{in: "0s", want: 0},
		{in: "5", err: "x.yml:1: cannot unmarshal !!int `5` into time.Duration"},
		{in: "1.5", err: "cannot unmarshal !!float `1.5` into time.Duration"},
		{in: "5 s", err: "cannot unmarshal !!str `5 s` into time.Duration"},
		{in: "5d", err: "cannot unmarshal !!str `5d` into time.Duration"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			var c struct {
				D time.Duration `yaml:"d"`
			}
			err := Decode(strings.NewReader("d: "+tt.in), "x.yml", &c)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, c.D)
		})
	}
}
