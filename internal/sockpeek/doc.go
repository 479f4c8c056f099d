// Package sockpeek looks at a TCP connection's socket without reading from it or waiting: has
// the peer closed it, has it sent something, or neither. Pooled HTTP connections and syslog
// connections ask before they are written to, since a write to a connection the peer has
// closed succeeds and only the next one fails.
package sockpeek
