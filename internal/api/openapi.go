package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// openapi.json is the hand-written OpenAPI 3.1 document of the API. The Event v1 and Anomaly v1
// schemas are not copied into it: placeholders ({"x-mcpwatch-embed": "event"}) are replaced by
// the schemas package's own documents, so the API's description of them cannot drift.
//
//go:embed openapi.json
var openAPIJSON []byte

// openAPIDocument returns the served document: openapi.json with the record schemas embedded.
// It works on the text, so the document keeps its hand-written order.
var openAPIDocument = sync.OnceValues(func() ([]byte, error) {
	doc := openAPIJSON
	for name, src := range map[string][]byte{"Event": schemas.EventSchemaJSON(), "Anomaly": schemas.AnomalySchemaJSON()} {
		// A component rather than a separate resource: drop $schema and $id, and point its
		// own refs into it.
		s := schemaHeader.ReplaceAll(src, nil)
		s = bytes.ReplaceAll(s, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`+name+`/$defs/`))
		placeholder := regexp.MustCompile(`\{\s*"x-mcpwatch-embed":\s*"` + strings.ToLower(name) + `"\s*\}`)
		if len(placeholder.FindAllIndex(doc, -1)) != 1 {
			return nil, fmt.Errorf("openapi.json needs exactly one placeholder for %s", name)
		}
		doc = placeholder.ReplaceAllLiteral(doc, s)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return nil, fmt.Errorf("cannot assemble the OpenAPI document: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
})

// schemaHeader matches the "$schema" and "$id" members of a schema document.
var schemaHeader = regexp.MustCompile(`(?m)^\s*"\$(schema|id)":\s*"[^"]*",\s*$\n?`)
