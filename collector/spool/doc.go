// Package spool is a durable, bounded, first-in first-out queue of opaque records on disk, and
// the write-ahead queue the collectors put their events through on the way to the bus or to a
// running mcpwatch.
//
// A Spool lives in a directory it locks for its own use. Records are appended to segment files
// (%016x.seg), each framed as magic (2 bytes), length (uint32) and CRC-32C of length and payload
// (uint32), then the payload. A reader replays records in order from the acknowledged position,
// which is kept in the ack file, so a restart resends at most what was read but not yet
// acknowledged (consumers deduplicate by event id). A record cut short by a crash or damaged on
// disk fails its checksum and is skipped: the reader moves on to the next byte sequence that
// frames a valid record, so one bad record never hides the rest and never panics the reader.
// Fully acknowledged segments are deleted.
//
// The spool is bounded by MaxBytes of unacknowledged records; when it is full, new records are
// dropped and counted, so Append never blocks on a full disk queue. Appends reach the kernel
// with one write per batch, which is enough to survive the process being killed; with Fsync
// "batch" a background loop also fsyncs every batch, without holding up the next append, so a
// power loss loses at most the batches being synced.
//
// Queue puts a Spool between producers that must not wait and a consumer that may be slow or
// away: Add hands a record to a group-commit writer and waits (at most AddWait) until it is
// written, and a delivery loop replays the spool to a Deliver function, acknowledging what it
// accepted and retrying with backoff what it did not.
//
// Metrics (prometheus, on the settings' registry, labelled spool=<name>):
// mcpwatch_spool_records_spooled_total, mcpwatch_spool_records_replayed_total,
// mcpwatch_spool_records_dropped_total, mcpwatch_spool_corrupt_total (regions skipped because
// they failed their checksum or were cut short), mcpwatch_spool_pending_records and
// mcpwatch_spool_pending_bytes (waiting to be replayed, on disk).
package spool
