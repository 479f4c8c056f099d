// Package sse is an incremental parser for server-sent event streams (the text/event-stream
// format of the HTML Living Standard) as MCP's Streamable HTTP transport uses them. A collector
// feeds it the bytes it forwards, in whatever pieces they arrive, and gets each event as soon as
// its terminating blank line has been seen; nothing is held back from the stream itself.
// Comments (keepalives) are counted, not dispatched; events without data (only an id) are not
// dispatched, as in a browser; an event with an empty data field (a priming event) is.
package sse
