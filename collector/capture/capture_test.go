package capture

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		skip string
		want string
		cut  bool
	}{
		{name: "compact and key order kept", in: `{ "b": 1.50, "a": [true, false, null, "x<y&z"] }`, want: `{"b":1.50,"a":[true,false,null,"x<y&z"]}`},
		{name: "secret keys", in: `{"user":"ann","password":"hunter2","API-Key":"k","client_secret":{"v":"s"},"Authorization":["Bearer x"],"session_id":7}`,
			want: `{"user":"ann","password":"***","API-Key":"***","client_secret":"***","Authorization":"***","session_id":"***"}`},
		{name: "nested", in: `[{"config":{"db":{"passwd":"p","host":"h"}}}]`, want: `[{"config":{"db":{"passwd":"***","host":"h"}}}]`},
		{name: "token counts are not secrets", in: `{"maxTokens":100,"total_tokens":5,"token":"t"}`, want: `{"maxTokens":100,"total_tokens":5,"token":"***"}`},
		{name: "bearer", in: `{"note":"send Authorization: Bearer abc.DEF-123_xyz please"}`, want: `{"note":"send Authorization: Bearer *** please"}`},
		{name: "prose about bearer auth", in: `{"note":"uses Bearer authentication"}`, want: `{"note":"uses Bearer authentication"}`},
		{name: "jwt", in: `{"q":"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl here"}`, want: `{"q":"token *** here"}`},
		{name: "aws key id", in: `["id AKIAIOSFODNN7EXAMPLE end"]`, want: `["id *** end"]`},
		{name: "github and slack and sk", in: `"ghp_0123456789abcdefghijklmnopqrstuvwxyz xoxb-1234567890-abc sk-ant-api03-abcdefghijklmnopqrstu"`, want: `"*** *** ***"`},
		{name: "private key", in: `{"pem":"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nrest"}`, want: `{"pem":"***\nrest"}`},
		{name: "password in url", in: `{"dsn":"postgres://app:s3cr3t@db:5432/x"}`, want: `{"dsn":"postgres://app:***@db:5432/x"}`},
		{name: "key=value in text", in: `{"cmd":"login --password=hunter2 --user=ann; api_key: abc123"}`, want: `{"cmd":"login --password=*** --user=ann; api_key: ***"}`},
		{name: "json inside a string", in: `{"body":"{\"password\":\"hunter2\",\"api_key\":\"abc123def456\",\"user\":\"ann\"}"}`,
			want: `{"body":"{\"password\":\"***\",\"api_key\":\"***\",\"user\":\"ann\"}"}`},
		{name: "python dict and prefixed keys", in: `["{'db_password': 's3cr3t', 'GITHUB_TOKEN': 'abc'} client_credentials=xyz"]`,
			want: `["{'db_password': '***', 'GITHUB_TOKEN': '***'} client_credentials=***"]`},
		{name: "token counts in text are not secrets", in: `["max_tokens: 100"]`, want: `["max_tokens: 100"]`},
		{name: "google api key", in: `["key AIzaSyA-0123456789abcdefghijklmnopqrstu end"]`, want: `["key *** end"]`},
		{name: "secret as a key", in: `{"sk-live-abcdefghijklmnopqrstuvwx":1,"plain":2}`, want: `{"***":1,"plain":2}`},
		{name: "skip top key only", in: `{"_meta":{"x":1},"a":{"_meta":2}}`, skip: "_meta", want: `{"a":{"_meta":2}}`},
		{name: "control characters escaped", in: `"a\u0001b\"c\\"`, want: `"a\u0001b\"c\\"`},
		{name: "truncated", in: `{"message":"hello world"}`, max: 12, want: `{"message":"`, cut: true},
		{name: "truncated on a rune boundary", in: `"ééééé"`, max: 4, want: `"é`, cut: true},
		{name: "exactly the cap", in: `[1,2]`, max: 5, want: `[1,2]`},
		{name: "escaped slashes in a url", in: `{"u":"https:\/\/app:pw@db\/x"}`, want: `{"u":"https://app:***@db/x"}`},
		{name: "escaped quote after a password", in: `{"c":"pwd=ab\"cd"}`, want: `{"c":"pwd=***\"cd"}`},
		{name: "escaped key", in: `{"pass\u0077ord":"x","a\"b":1}`, want: `{"password":"***","a\"b":1}`},
		{name: "whitespace", in: " {\n\t\"a\" : [ 1 , { } , [ ] ] ,\r\n \"b\":\"c\" } ", want: `{"a":[1,{},[]],"b":"c"}`},
		{name: "secret container with brackets in strings", in: `{"secret":{"a":"}]\"{","b":[1,{"c":"]"}]},"n":1}`, want: `{"secret":"***","n":1}`},
		{name: "skipped first key", in: `{"_meta":"x","a":1}`, skip: "_meta", want: `{"a":1}`},
		{name: "numbers and literals", in: `[-1.5e+10,0,true,false,null]`, want: `[-1.5e+10,0,true,false,null]`},
		{name: "invalid json", in: `{"a":`, want: ""},
		{name: "invalid literal", in: `[tru]`, want: ""},
		{name: "missing colon", in: `{"a" 1}`, want: ""},
		{name: "unterminated string", in: `["abc`, want: ""},
		{name: "control character in string", in: "[\"a\x01\"]", want: ""},
		{name: "bad escape", in: `["\x"]`, want: ""},
		{name: "invalid utf-8 replaced", in: "{\"k\xff\":\"a\xffb\"}", want: "{\"k\uFFFD\":\"a\uFFFDb\"}"},
		{name: "trailing data ignored", in: `{} x`, want: `{}`},
		{name: "empty", in: ``, want: ""},
		{name: "blank", in: ` `, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 1 << 20
			}
			got, cut := Mask([]byte(tt.in), max, tt.skip)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.cut, cut)
			require.LessOrEqual(t, len(got), max)
			require.True(t, utf8.ValidString(got))
			if !cut && got != "" {
				require.True(t, json.Valid([]byte(got)), "uncut output is JSON: %s", got)
			}
		})
	}
}

// A secret never survives in the output whatever the cap, even cut in the middle.
func TestMaskNeverLeaksAtAnyCap(t *testing.T) {
	in := `{"items":[{"password":"hunter2-very-secret"},{"note":"Bearer Zm9vYmFyYmF6cXV4cXV1eA=="}],"aws":"AKIAIOSFODNN7EXAMPLE"}`
	for max := 1; max <= len(in)+10; max++ {
		got, _ := Mask([]byte(in), max, "")
		for _, secret := range []string{"hunter2", "Zm9vYmFy", "AKIAIOSF"} {
			require.NotContains(t, got, secret, "max %d", max)
		}
	}
}

func TestMaskDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)
	got, cut := Mask([]byte(deep), 1<<20, "")
	require.Empty(t, got)
	require.False(t, cut)
	got, cut = Mask([]byte(deep), 100, "")
	require.Len(t, got, 100, "the cap is reached before the depth limit")
	require.True(t, cut)
}

// FuzzMask: any input, any cap: no panic, the cap holds, the output is UTF-8, and valid JSON
// input gives valid JSON output unless cut.
func FuzzMask(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"password":"x","list":[1,2.5,"Bearer abcdefghijkl"]}`, `"\u00e9\n"`, `[[],{}]`, `{"_meta":1}`} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got, cut := Mask(in, max, "_meta")
		require.LessOrEqual(t, len(got), max)
		require.True(t, utf8.ValidString(got))
		if !cut && got != "" {
			require.True(t, json.Valid([]byte(got)), "in %q out %q", in, got)
		}
	})
}

// argumentsByDecoding finds params.arguments with encoding/json as the MCP SDKs find it: a map
// matches keys exactly and keeps the last of duplicates (a struct field would ignore case).
func argumentsByDecoding(params []byte) []byte {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil {
		return nil
	}
	return p["arguments"]
}

func TestMemberMatchesDecoding(t *testing.T) {
	for _, in := range []string{
		`{"name":"echo","arguments":{"message":"hi"}}`, `{"arguments":null}`, `{"arguments" : [1, {"a":"}"}] , "x":1}`,
		`{"Arguments":1,"arguments":2}`, `{"arguments":1,"ARGUMENTS":2}`, `{"\u0061rguments":"esc"}`, `{"argument\u017f":"long s"}`,
		`{"argu_ments":1}`, `{"args":1}`, `{}`, `[{"arguments":1}]`, `null`, `"arguments"`, ` { "arguments" : "x" } `,
	} {
		require.Equal(t, string(argumentsByDecoding([]byte(in))), string(member([]byte(in), "arguments")), in)
	}
	// A key in another case is another key: the server reads "arguments" (the Go SDK's decoder
	// is case-sensitive), so that is what is captured.
	for in, want := range map[string]string{
		`{"arguments":{"q":"real"},"Arguments":{"q":"decoy"}}`:  `{"q":"real"}`,
		`{"ARGUMENTS":1,"arguments":2,"Arguments":3}`:           `2`,
		`{"\u0061rguments":1,"arguments":2,"\u0041rguments":3}`: `2`,
		`{"argument\u017f":"long s"}`:                           ``,
		`{"Arguments":1}`:                                       ``,
	} {
		require.Equal(t, want, string(member([]byte(in), "arguments")), in)
	}
}

// FuzzArgumentsMember: on well-formed JSON, member finds what decoding into a map finds; on any
// input it does not panic.
func FuzzArgumentsMember(f *testing.F) {
	for _, s := range []string{`{"name":"a","arguments":{"q":1}}`, `{"ARGUMENTS":[],"arguments":"x"}`, `{"\u0061rguments":1}`, `[1]`, `{"a":{"arguments":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := member(in, "arguments")
		if json.Valid(in) {
			require.Equal(t, string(argumentsByDecoding(in)), string(got), "in %q", in)
		}
	})
}

func TestReapply(t *testing.T) {
	sent := &schemas.Content{Arguments: `{"token":"abc"}`, Result: `{"content":[{"type":"text","text":"ok"}]}`, Captured: true}
	require.Equal(t, &schemas.Content{Arguments: `{"token":"***"}`, Result: `{"content":[{"type":"text","text":"ok"}]}`},
		Decision{MaxBytes: 100}.Reapply(sent))
	require.Equal(t, `{"token":"abc"}`, sent.Arguments, "the sender's content is not changed")
	require.Equal(t, &schemas.Content{Arguments: `{"tok`, Result: `{"con`, Truncated: true, Captured: true},
		Decision{MaxBytes: 5, Captured: true}.Reapply(sent))
	require.Nil(t, Decision{}.Reapply(sent), "no content under this policy")
	require.Nil(t, Decision{MaxBytes: 100}.Reapply(nil))
}

func TestToolsYAML(t *testing.T) {
	tests := []struct {
		doc     string
		want    Rule
		wantErr string
	}{
		{doc: "server: crm\ntools: all\nmax_bytes: 100", want: Rule{Server: "crm", Tools: Tools{All: true}, MaxBytes: 100}},
		{doc: "server: crm\ntools: [a, b]", want: Rule{Server: "crm", Tools: Tools{Names: []string{"a", "b"}}}},
		{doc: "server: crm", want: Rule{Server: "crm"}},
		{doc: "server: crm\ntools: []", wantErr: "tools must be all or a non-empty list of tool names"},
		{doc: "server: crm\ntools: some", wantErr: "tools must be all or a non-empty list"},
		{doc: "server: crm\ntools: {a: 1}", wantErr: "tools must be all"},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			var r Rule
			err := yaml.Unmarshal([]byte(tt.doc), &r)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, r)
			out, err := yaml.Marshal(r)
			require.NoError(t, err)
			var back Rule
			require.NoError(t, yaml.Unmarshal(out, &back))
			if len(tt.want.Tools.Names) == 0 {
				require.True(t, back.Tools.All)
			} else {
				require.Equal(t, tt.want.Tools, back.Tools)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	neg, big := -1, MaxBytesLimit+1
	err := Config{
		Rules:               []Rule{{Server: "ok"}, {Tools: Tools{Names: []string{"a", ""}}, MaxBytes: -1}},
		InspectionMaxBytes:  &neg,
		DefinitionsMaxBytes: &big,
	}.Validate()
	require.Error(t, err)
	require.Equal(t, []string{
		"collector.capture[1].server: must not be empty",
		"collector.capture[1].tools: tool names must not be empty",
		"collector.capture[1].max_bytes: must be between 0 and 262144",
		"collector.inspection_max_bytes: must be between 0 (off) and 262144",
		"collector.definitions_max_bytes: must be between 0 (off) and 262144",
	}, strings.Split(err.Error(), "\n"))
	require.Error(t, Config{DefinitionsMaxBytes: &neg}.Validate())
	require.Error(t, Config{InspectionMaxBytes: &big}.Validate())
	require.NoError(t, Config{}.Validate())
	_, err = New(Config{Rules: []Rule{{}}})
	require.ErrorContains(t, err, "collector.capture[0].server")
}

func TestDecide(t *testing.T) {
	zero, small := 0, 10
	p, err := New(Config{Rules: []Rule{
		{Server: "crm", Tools: Tools{Names: []string{"create_ticket"}}, MaxBytes: 64},
		{Server: "crm", Tools: Tools{Names: []string{"search"}}},
		{Server: "fs"},
	}})
	require.NoError(t, err)
	tests := []struct {
		name                   string
		policy                 *Policy
		server, method, target string
		want                   Decision
	}{
		{"captured tool", p, "crm", "tools/call", "create_ticket", Decision{MaxBytes: 64, Captured: true}},
		{"second rule, default cap", p, "crm", "tools/call", "search", Decision{MaxBytes: DefaultCaptureMaxBytes, Captured: true}},
		{"other tool: inspection only", p, "crm", "tools/call", "delete", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"a tool list covers only tools/call", p, "crm", "prompts/get", "create_ticket", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"whole server", p, "fs", "resources/read", "file:///a", Decision{MaxBytes: DefaultCaptureMaxBytes, Captured: true}},
		{"other server", p, "git", "tools/call", "create_ticket", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"inspection off", must(New(Config{InspectionMaxBytes: &zero})), "git", "tools/call", "x", Decision{}},
		{"inspection cap", must(New(Config{InspectionMaxBytes: &small})), "git", "tools/call", "x", Decision{MaxBytes: 10}},
		{"no policy", nil, "git", "tools/call", "x", Decision{}},
		{"list results: the definitions cap", p, "git", "tools/list", "", Decision{MaxBytes: DefaultDefinitionsMaxBytes}},
		{"every list method", p, "git", "resources/templates/list", "", Decision{MaxBytes: DefaultDefinitionsMaxBytes}},
		{"a captured list keeps captured", p, "fs", "prompts/list", "", Decision{MaxBytes: DefaultDefinitionsMaxBytes, Captured: true}},
		{"other methods keep the inspection cap", p, "git", "resources/read", "", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"definitions off", must(New(Config{DefinitionsMaxBytes: &zero})), "git", "tools/list", "", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"a definitions cap below the inspection cap", must(New(Config{DefinitionsMaxBytes: &small})), "git", "tools/list", "", Decision{MaxBytes: DefaultInspectionMaxBytes}},
		{"inspection off, definitions on", must(New(Config{InspectionMaxBytes: &zero})), "git", "tools/list", "", Decision{MaxBytes: DefaultDefinitionsMaxBytes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.policy.Decide(tt.server, tt.method, tt.target))
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestArgumentsAndResult(t *testing.T) {
	d := Decision{MaxBytes: 64, Captured: true}
	tests := []struct {
		name   string
		d      Decision
		method string
		params string
		want   *schemas.Content
	}{
		{"tool arguments", d, "tools/call", `{"name":"x","arguments":{"q":"hi","token":"t"},"_meta":{"progressToken":1}}`,
			&schemas.Content{Arguments: `{"q":"hi","token":"***"}`, Captured: true}},
		{"prompt arguments", Decision{MaxBytes: 100}, "prompts/get", `{"name":"p","arguments":{"a":"b"}}`, &schemas.Content{Arguments: `{"a":"b"}`}},
		{"other params without _meta", Decision{MaxBytes: 100}, "resources/read", `{"uri":"file:///a","_meta":{"traceparent":"x"}}`, &schemas.Content{Arguments: `{"uri":"file:///a"}`}},
		{"only _meta", Decision{MaxBytes: 100}, "tools/list", `{"_meta":{"a":1}}`, nil},
		{"no arguments", d, "tools/call", `{"name":"x"}`, nil},
		{"no params", d, "ping", ``, nil},
		{"cut", Decision{MaxBytes: 8}, "tools/call", `{"arguments":{"message":"hello"}}`, &schemas.Content{Arguments: `{"messag`, Truncated: true}},
		{"off", Decision{}, "tools/call", `{"arguments":{"a":1}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.d.Arguments(tt.method, json.RawMessage(tt.params)))
		})
	}

	args := d.Arguments("tools/call", json.RawMessage(`{"arguments":{"q":"hi"}}`))
	withRes := d.WithResult(args, json.RawMessage(`{"content":[{"type":"text","text":"ok"}],"_meta":{"x":1}}`), nil)
	require.Equal(t, &schemas.Content{Arguments: `{"q":"hi"}`, Result: `{"content":[{"type":"text","text":"ok"}]}`, Captured: true}, withRes)
	require.Empty(t, args.Result, "the request's content is not changed in place")

	errRes := Decision{MaxBytes: 100}.WithResult(nil, nil, &jsonrpc.Error{Code: -32602, Message: "bad password=hunter2"})
	require.Equal(t, &schemas.Content{Result: `{"code":-32602,"message":"bad password=***"}`}, errRes)

	cut := Decision{MaxBytes: 5}.WithResult(&schemas.Content{Arguments: "{}"}, json.RawMessage(`{"a":"bcdef"}`), nil)
	require.Equal(t, &schemas.Content{Arguments: "{}", Result: `{"a":`, Truncated: true}, cut)
	require.Nil(t, Decision{}.WithResult(nil, json.RawMessage(`{"a":1}`), nil))
	require.Nil(t, Decision{MaxBytes: 10}.WithResult(nil, json.RawMessage(`{}`), nil))
}

func BenchmarkMask(b *testing.B) {
	raw := []byte(`{"path":"/srv/data/report.csv","options":{"encoding":"utf-8","limit":100},"note":"please summarise, token in header"}`)
	b.ReportAllocs()
	for b.Loop() {
		Mask(raw, DefaultInspectionMaxBytes, "")
	}
}

// BenchmarkArgumentsMember: finding a tools/call's arguments in its params, by member beside
// encoding/json (decoding params into a map).
func BenchmarkArgumentsMember(b *testing.B) {
	params := []byte(`{"name":"search","arguments":{"path":"/srv/data/report.csv","options":{"encoding":"utf-8","limit":100}},"_meta":{"progressToken":7}}`)
	for _, find := range []struct {
		name string
		fn   func([]byte) []byte
	}{{"member", func(p []byte) []byte { return member(p, "arguments") }}, {"encoding_json", argumentsByDecoding}} {
		b.Run(find.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(find.fn(params)) == 0 {
					b.Fatal("no arguments")
				}
			}
		})
	}
}
