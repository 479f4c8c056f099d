package drift

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Definition kinds, as store.Definition.Kind records them.
const (
	KindTool             = "tool"
	KindPrompt           = "prompt"
	KindResource         = "resource"
	KindResourceTemplate = "resource_template"
)

// listSpec says how to read one list method's result.
type listSpec struct {
	kind   string
	key    string   // the result's array
	name   string   // the field naming an item
	fields []string // the fields fingerprinted
}

// What is fingerprinted. Resources leave out size and annotations: they describe the content
// (lastModified changes with every write), not the definition an agent relies on.
var lists = map[string]listSpec{
	"tools/list": {kind: KindTool, key: "tools", name: "name",
		fields: []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}},
	"prompts/list": {kind: KindPrompt, key: "prompts", name: "name",
		fields: []string{"name", "title", "description", "arguments"}},
	"resources/list": {kind: KindResource, key: "resources", name: "uri",
		fields: []string{"uri", "name", "title", "description", "mimeType"}},
	"resources/templates/list": {kind: KindResourceTemplate, key: "resourceTemplates", name: "uriTemplate",
		fields: []string{"uriTemplate", "name", "title", "description", "mimeType"}},
}

// ListMethods are the methods whose results carry definitions.
var ListMethods = []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"}

// IsListMethod reports whether method's result carries definitions.
func IsListMethod(method string) bool {
	_, ok := lists[method]
	return ok
}

// changedKinds maps list_changed notifications to the kinds they announce.
var changedKinds = map[string][]string{
	"notifications/tools/list_changed":     {KindTool},
	"notifications/prompts/list_changed":   {KindPrompt},
	"notifications/resources/list_changed": {KindResource, KindResourceTemplate},
}

// List is one parsed list result.
type List struct {
	Kind  string
	Items []Item
	// NextCursor is the result's nextCursor: more pages follow.
	NextCursor string
}

// Item is one definition of a list result.
type Item struct {
	Name string
	// Canonical is the fingerprinted fields as canonical JSON (sorted keys, no insignificant
	// space, no HTML escaping); null fields are left out.
	Canonical string
	// Fingerprint is the hex SHA-256 of Canonical.
	Fingerprint string
}

// ErrNotList is returned for a result that is not a list result of its method.
var ErrNotList = errors.New("not a list result")

// ParseList parses the result of a list method (a JSON object). Items are kept in list
// order; a name listed twice keeps its first definition.
func ParseList(method string, result []byte) (List, error) {
	spec, ok := lists[method]
	if !ok {
		return List{}, fmt.Errorf("%w: %s is not a list method", ErrNotList, method)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(result, &fields); err != nil {
		return List{}, fmt.Errorf("%w: %v", ErrNotList, err)
	}
	var next string
	if raw, ok := fields["nextCursor"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &next); err != nil {
			return List{}, fmt.Errorf("%w: nextCursor: %v", ErrNotList, err)
		}
	}
	raw, ok := fields[spec.key]
	if !ok {
		return List{}, fmt.Errorf("%w: no %s", ErrNotList, spec.key)
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return List{}, fmt.Errorf("%w: %s: %v", ErrNotList, spec.key, err)
	}
	l := List{Kind: spec.kind, NextCursor: next, Items: make([]Item, 0, len(items))}
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		var name string
		if err := json.Unmarshal(it[spec.name], &name); err != nil || name == "" {
			return List{}, fmt.Errorf("%w: %s[%d] has no %s", ErrNotList, spec.key, i, spec.name)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		canon, err := canonicalFields(it, spec.fields)
		if err != nil {
			return List{}, fmt.Errorf("%w: %s[%d]: %v", ErrNotList, spec.key, i, err)
		}
		l.Items = append(l.Items, Item{Name: name, Canonical: canon, Fingerprint: Fingerprint(canon)})
	}
	return l, nil
}

// Fingerprint is the hex SHA-256 of a canonical definition.
func Fingerprint(canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(h[:])
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// canonicalFields encodes the named fields of item (those present and not null) as
// canonical JSON.
func canonicalFields(item map[string]json.RawMessage, names []string) (string, error) {
	m := make(map[string]any, len(names))
	for _, n := range names {
		raw, ok := item[n]
		if !ok || isNull(raw) {
			continue
		}
		v, err := decode(raw)
		if err != nil {
			return "", fmt.Errorf("%s: %w", n, err)
		}
		m[n] = v
	}
	return canonical(m)
}

// decode reads JSON keeping numbers as written.
func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// canonical encodes v with sorted object keys (encoding/json sorts map keys), without HTML
// escaping.
func canonical(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// cursorOf returns the cursor of a list request's params (JSON text), or "".
func cursorOf(params string) string {
	if params == "" {
		return ""
	}
	var p struct {
		Cursor string `json:"cursor"`
	}
	if json.Unmarshal([]byte(params), &p) != nil {
		return ""
	}
	return p.Cursor
}
