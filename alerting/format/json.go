package format

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// JSON returns the anomaly as compact Anomaly v1 JSON: raw (the JSON read from the bus, so
// fields this build does not know pass through) with insignificant white space removed, so
// the message is one line for receivers that split on newlines (JSON escapes newlines inside
// strings). When raw is not valid JSON, the decoded anomaly is marshalled instead.
func JSON(raw []byte, an schemas.Anomaly) ([]byte, error) {
	var b bytes.Buffer
	if len(raw) > 0 && json.Compact(&b, raw) == nil {
		return b.Bytes(), nil
	}
	out, err := json.Marshal(an)
	if err != nil {
		return nil, fmt.Errorf("cannot marshal anomaly %s: %w", an.ID, err)
	}
	return out, nil
}
