package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// openAPIDoc is the served document, decoded.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	s := newTestServer(t, Config{}, newEmptyStore(t), nil)
	code, h, body := s.do(t, "/api/v1/openapi.json")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	want, err := openAPIDocument()
	require.NoError(t, err)
	require.Equal(t, want, body)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	return doc
}

// pointer resolves a local JSON pointer ("#/components/schemas/Session") in doc.
func pointer(t *testing.T, doc map[string]any, ref string) any {
	t.Helper()
	require.True(t, strings.HasPrefix(ref, "#/"), "only local refs: %s", ref)
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		require.True(t, ok, "%s: %q is not in an object", ref, tok)
		cur, ok = m[tok]
		require.True(t, ok, "%s: no %q", ref, tok)
	}
	return cur
}

// deref follows a {"$ref": …} object to what it names.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		m, _ = pointer(t, doc, ref).(map[string]any)
	}
	require.NotNil(t, m)
	return m
}

// docOperations lists "METHOD /path" of every documented operation.
func docOperations(doc map[string]any) []string {
	var ops []string
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := openAPIDoc(t)
	routed := slices.Clone(processRoutes)
	for _, r := range apiRoutes {
		routed = append(routed, r.pattern)
	}
	sort.Strings(routed)
	require.Equal(t, routed, docOperations(doc), "every route is documented and every documented path is routed")

	// And the mux really serves each documented path (with made-up ids): no 405, and no
	// answer from the catch-all for unknown API paths.
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	for _, op := range docOperations(doc) {
		_, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", "x", "{field}", "agents").Replace(path)
		code, _, body := s.do(t, path)
		require.NotEqual(t, http.StatusMethodNotAllowed, code, path)
		require.NotContains(t, string(body), "no API endpoint", path)
	}
}

func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc := openAPIDoc(t)
	require.Equal(t, "3.1.0", doc["openapi"])
	info := doc["info"].(map[string]any)
	require.NotEmpty(t, info["title"])
	require.NotEmpty(t, info["version"])

	// Every $ref resolves.
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	require.Greater(t, len(refs), 50)
	for _, ref := range refs {
		pointer(t, doc, ref)
	}

	// Operation ids are unique; every operation documents a 200 and, under /api/, 401.
	ids := map[string]bool{}
	for _, op := range docOperations(doc) {
		method, path, _ := strings.Cut(op, " ")
		o := pointer(t, doc, "#/paths/"+strings.ReplaceAll(path, "/", "~1")+"/"+strings.ToLower(method)).(map[string]any)
		id := o["operationId"].(string)
		require.False(t, ids[id], "duplicate operationId %s", id)
		ids[id] = true
		resp := o["responses"].(map[string]any)
		require.Contains(t, resp, "200", op)
		if strings.HasPrefix(path, "/api/") {
			require.Contains(t, resp, "401", op)
		}
		ps, _ := o["parameters"].([]any)
		for _, p := range ps {
			pm := deref(t, doc, p)
			require.Contains(t, pm, "schema", "%s: parameter %v", op, pm["name"])
			if pm["in"] == "path" {
				require.Contains(t, path, "{"+pm["name"].(string)+"}", op)
				require.Equal(t, true, pm["required"], op)
			}
		}
	}

	// Every component schema compiles as JSON Schema 2020-12 (OpenAPI 3.1's dialect).
	c := compiler(t, doc)
	for name := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		_, err := c.Compile(docURL + "#/components/schemas/" + name)
		require.NoError(t, err, name)
	}
}

const docURL = "mem:///openapi.json"

func compiler(t *testing.T, doc map[string]any) *jsonschema.Compiler {
	t.Helper()
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time and uuid are checked, not only annotations
	require.NoError(t, c.AddResource(docURL, v))
	return c
}

// TestOpenAPIParametersMatchTheHandlers compares each operation's documented query parameters
// with what its handler accepts: an unknown parameter's 400 lists the accepted ones.
func TestOpenAPIParametersMatchTheHandlers(t *testing.T) {
	doc := openAPIDoc(t)
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	for _, op := range docOperations(doc) {
		method, path, _ := strings.Cut(op, " ")
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		t.Run(path, func(t *testing.T) {
			o := pointer(t, doc, "#/paths/"+strings.ReplaceAll(path, "/", "~1")+"/"+strings.ToLower(method)).(map[string]any)
			documented := []string{}
			for _, p := range o["parameters"].([]any) {
				if pm := deref(t, doc, p); pm["in"] == "query" {
					documented = append(documented, pm["name"].(string))
				}
			}
			target := strings.NewReplacer("{id}", "a1", "{field}", "agents").Replace(path) + "?zz_unknown=1"
			code, _, body := s.do(t, target)
			require.Equal(t, http.StatusBadRequest, code)
			msg := decode[ErrorResponse](t, body).Error
			_, list, ok := strings.Cut(msg, "zz_unknown: unknown parameter (accepted: ")
			require.True(t, ok, msg)
			accepted := []string{}
			if list = strings.TrimSuffix(list, ")"); list != "none" {
				accepted = strings.Split(list, ", ")
			}
			sort.Strings(accepted)
			sort.Strings(documented)
			require.Equal(t, documented, accepted)
		})
	}
}

// TestOpenAPIExamplesValidate runs requests against a seeded server and validates every answer
// against the schema the document gives for its path, method and status.
func TestOpenAPIExamplesValidate(t *testing.T) {
	doc := openAPIDoc(t)
	c := compiler(t, doc)
	open := newTestServer(t, Config{}, newTestStore(t), nil)
	closed := newTestServer(t, Config{Tokens: []string{"tok"}}, newTestStore(t), nil)
	window := "since=" + q(at(0)) + "&until=" + q(at(40))
	_, _, body := open.do(t, "/api/v1/sessions?limit=1")
	cursor := decode[SessionsResponse](t, body).NextCursor
	examples := []struct {
		path, target string
		code         int
	}{
		{"/api/v1/openapi.json", "/api/v1/openapi.json", 200},
		{"/api/v1/sessions", "/api/v1/sessions", 200},
		{"/api/v1/sessions", "/api/v1/sessions?limit=1", 200},
		{"/api/v1/sessions", "/api/v1/sessions?limit=1&cursor=" + cursor, 200},
		{"/api/v1/sessions", "/api/v1/sessions?agent=nobody", 200},
		{"/api/v1/sessions", "/api/v1/sessions?limit=0", 400},
		{"/api/v1/sessions/{id}", "/api/v1/sessions/s1", 200},
		{"/api/v1/sessions/{id}", "/api/v1/sessions/nope", 404},
		{"/api/v1/sessions/{id}/events", "/api/v1/sessions/s1/events", 200},
		{"/api/v1/sessions/{id}/events", "/api/v1/sessions/s%2F3/events", 200},
		{"/api/v1/anomalies", "/api/v1/anomalies", 200},
		{"/api/v1/anomalies", "/api/v1/anomalies?limit=1", 200},
		{"/api/v1/anomalies", "/api/v1/anomalies?cursor=bad", 400},
		{"/api/v1/anomalies/{id}", "/api/v1/anomalies/an3", 200},
		{"/api/v1/anomalies/{id}", "/api/v1/anomalies/nope", 404},
		{"/api/v1/agents", "/api/v1/agents", 200},
		{"/api/v1/agents/{id}", "/api/v1/agents/a1", 200},
		{"/api/v1/agents/{id}", "/api/v1/agents/nobody", 404},
		{"/api/v1/agents/{id}/profile", "/api/v1/agents/a1/profile", 200},
		{"/api/v1/agents/{id}/profile", "/api/v1/agents/a2/profile", 404},
		{"/api/v1/timeseries", "/api/v1/timeseries?metric=calls&by=tool&step=5m&" + window, 200},
		{"/api/v1/timeseries", "/api/v1/timeseries?metric=anomalies&by=severity&step=5m&" + window, 200},
		{"/api/v1/timeseries", "/api/v1/timeseries?metric=deliveries&by=status&step=5m&" + window, 200},
		{"/api/v1/timeseries", "/api/v1/timeseries?metric=errors", 200},
		{"/api/v1/timeseries", "/api/v1/timeseries?metric=calls&step=1s&since=7d", 400},
		{"/api/v1/values/{field}", "/api/v1/values/agents", 200},
		{"/api/v1/values/{field}", "/api/v1/values/tools?agent=a1", 200},
		{"/api/v1/values/{field}", "/api/v1/values/nothing", 404},
		{"/api/v1/definitions", "/api/v1/definitions", 200},
		{"/api/v1/deliveries", "/api/v1/deliveries", 200},
	}
	covered := map[string]bool{}
	for _, ex := range examples {
		t.Run(ex.target, func(t *testing.T) {
			code, h, body := open.do(t, ex.target)
			require.Equal(t, ex.code, code, "body: %s", body)
			validateAnswer(t, doc, c, ex.path, code, h, body)
			if code == http.StatusOK {
				covered[ex.path] = true
			}
			// Without a token, a protected server answers a documented 401.
			code, h, body = closed.do(t, ex.target)
			require.Equal(t, http.StatusUnauthorized, code)
			validateAnswer(t, doc, c, ex.path, code, h, body)
		})
	}
	for _, op := range docOperations(doc) {
		if _, path, _ := strings.Cut(op, " "); strings.HasPrefix(path, "/api/") {
			require.True(t, covered[path], "no 200 example validated for %s", path)
		}
	}
}

// validateAnswer checks body against the schema documented for (path, GET, code).
func validateAnswer(t *testing.T, doc map[string]any, c *jsonschema.Compiler, path string, code int, h http.Header, body []byte) {
	t.Helper()
	op := "#/paths/" + strings.ReplaceAll(path, "/", "~1") + "/get/responses/"
	resp, ok := pointer(t, doc, op[:len(op)-1]).(map[string]any)[strconv.Itoa(code)]
	require.True(t, ok, "%s documents no %d", path, code)
	loc := op + strconv.Itoa(code)
	if m := resp.(map[string]any); m["$ref"] != nil {
		loc = m["$ref"].(string)
	}
	ct := h.Get("Content-Type")
	content := deref(t, doc, resp)["content"].(map[string]any)
	require.Contains(t, content, ct, "%s %d answers %s", path, code, ct)
	schema, err := c.Compile(docURL + loc + "/content/" + strings.ReplaceAll(ct, "/", "~1") + "/schema")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(inst), "%s %d: %s", path, code, truncate(body))
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return fmt.Sprintf("%s… (%d bytes)", b[:2000], len(b))
	}
	return string(b)
}

// The document's schemas are strict (additionalProperties: false): a field added to a Go type
// without documenting it fails validation. Check that this strictness bites.
func TestOpenAPISchemasRejectUndocumentedFields(t *testing.T) {
	doc := openAPIDoc(t)
	c := compiler(t, doc)
	for name, instance := range map[string]string{
		"Session": `{"session_id":"s","agent_id":"a","server_id":"x","first_seen":"2026-11-03T02:00:00Z","last_seen":"2026-11-03T02:00:00Z","events":1,"errors":0,"tools":[],"max_score":0,"anomalies":0,"extra":1}`,
		"Agent":   `{"agent_id":"a","first_seen":"2026-11-03T02:00:00Z","last_seen":"2026-11-03T02:00:00Z","events":1,"errors":0,"sessions":0,"servers":[],"tools":[],"anomalies":0,"max_score":0,"risk":0,"extra":1}`,
		"Point":   `{"time":"not a time","value":1}`,
	} {
		s, err := c.Compile(docURL + "#/components/schemas/" + name)
		require.NoError(t, err)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(instance))
		require.NoError(t, err)
		require.Error(t, s.Validate(inst), name)
	}
}
