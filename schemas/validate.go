package schemas

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// JSON Schema ids of the records, as written in the schema files.
const (
	EventSchemaID   = "https://mcpwatch.dev/schemas/event.v1.json"
	AnomalySchemaID = "https://mcpwatch.dev/schemas/anomaly.v1.json"
)

var (
	//go:embed event.v1.schema.json
	eventSchemaJSON []byte
	//go:embed anomaly.v1.schema.json
	anomalySchemaJSON []byte
)

// EventSchemaJSON returns the Event v1 JSON Schema document (draft 2020-12).
func EventSchemaJSON() []byte { return bytes.Clone(eventSchemaJSON) }

// AnomalySchemaJSON returns the Anomaly v1 JSON Schema document (draft 2020-12).
func AnomalySchemaJSON() []byte { return bytes.Clone(anomalySchemaJSON) }

// The schemas are compiled once, on first use; they are embedded, so failing to compile them is
// a bug caught by the package's tests.
var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Formats (date-time, uuid) are only annotations in 2020-12 unless asserted; we want them checked.
	c.AssertFormat()
	docs := map[string][]byte{EventSchemaID: eventSchemaJSON, AnomalySchemaID: anomalySchemaJSON}
	out := make(map[string]*jsonschema.Schema, len(docs))
	for id, doc := range docs {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("cannot parse schema %s: %w", id, err)
		}
		if err := c.AddResource(id, v); err != nil {
			return nil, fmt.Errorf("cannot add schema %s: %w", id, err)
		}
	}
	for id := range docs {
		s, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("cannot compile schema %s: %w", id, err)
		}
		out[id] = s
	}
	return out, nil
})

// ValidateEventJSON checks that data is one Event v1 JSON document. The error lists every
// violation with the JSON pointer of the offending field, e.g.
// "invalid event v1: /status: value must be one of ...".
func ValidateEventJSON(data []byte) error {
	return validateJSON(EventSchemaID, "event v1", data)
}

// ValidateAnomalyJSON checks that data is one Anomaly v1 JSON document; errors are as for
// ValidateEventJSON.
func ValidateAnomalyJSON(data []byte) error {
	return validateJSON(AnomalySchemaID, "anomaly v1", data)
}

func validateJSON(id, what string, data []byte) error {
	schemas, err := compiled()
	if err != nil {
		panic("BUG: embedded schema does not compile: " + err.Error())
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("invalid %s: not a JSON document: %w", what, err)
	}
	err = schemas[id].Validate(v)
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		return fmt.Errorf("invalid %s: %s", what, strings.Join(leafMessages(verr, nil), "; "))
	}
	if err != nil {
		return fmt.Errorf("cannot validate %s: %w", what, err)
	}
	return nil
}

// printer renders jsonschema's messages; they are written for golang.org/x/text.
var printer = message.NewPrinter(language.English)

// leafMessages flattens a validation error tree into "pointer: message" lines, one per leaf;
// the inner nodes ("allOf failed", "$ref failed") only repeat what their leaves say.
func leafMessages(e *jsonschema.ValidationError, out []string) []string {
	if len(e.Causes) == 0 {
		loc := "/" + strings.Join(e.InstanceLocation, "/")
		if loc == "/" {
			loc = "(root)"
		}
		return append(out, loc+": "+e.ErrorKind.LocalizedString(printer))
	}
	for _, c := range e.Causes {
		out = leafMessages(c, out)
	}
	return out
}
