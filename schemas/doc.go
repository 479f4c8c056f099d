// Package schemas defines the records that flow between mcpwatch stages: Event v1 (one MCP
// operation) and Anomaly v1 (one detected deviation). Each has Go types, a JSON Schema in this
// folder and golden samples in testdata/. Stages never import each other; they meet here and on
// the bus.
package schemas
