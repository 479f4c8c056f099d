// Package ingest carries events from collectors that run outside mcpwatch (`mcpwatch wrap`,
// or anything that produces Event v1) into a running mcpwatch.
//
// Handler serves POST /ingest/v1/events on the collector's listener (the HTTP tap's, or a
// listener of its own when no upstreams are configured). The body is NDJSON, one Event v1 per
// line, with Content-Type application/x-ndjson (a content type browsers cannot send
// cross-origin without a preflight, so a web page cannot inject events). Every line is checked
// against the Event v1 JSON Schema first; a batch with any bad line is rejected as a whole with
// 400 and a JSON body naming each bad line ({"error":…,"lines":[{"line":3,"error":…}]}), and
// nothing of it is accepted, so a client can drop the named lines and resend the rest without
// creating duplicates. A valid batch is handed to the emitter (which writes it ahead to its
// spool) and answered 200 {"accepted":N}; when the emitter cannot take an event the answer is
// 503 with Retry-After, and the client resends the batch (the pipeline deduplicates by
// event_id). An optional bearer token is compared in constant time; bodies over MaxBodyBytes
// get 413.
//
// Client is the sending side: an EventEmitter that writes events ahead to a spool directory
// of its own, posts them in batches, and keeps them on disk while mcpwatch is unreachable. On
// start it also adopts spool directories left behind by earlier processes and sends those.
package ingest
