// Package format renders an anomaly as the text a SIEM parses: an RFC 5424 syslog message
// (header, structured data and a message), ArcSight CEF, IBM QRadar LEEF 2.0, or compact
// Anomaly v1 JSON. Each format escapes exactly what its specification requires, keeps every
// field within its documented length (cutting at a UTF-8 boundary), and never lets a value
// break the framing around it: header fields, delimiters and line structure stay intact
// whatever an agent id or a tool name contains. The functions are pure (no clock, no host
// lookups), so their output is reproducible and covered by golden files and fuzz targets.
package format
