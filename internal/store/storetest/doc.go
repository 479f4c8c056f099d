// Package storetest is the conformance suite every store.Store backend must pass. A backend's
// test calls Run with a function that opens a fresh, empty, not yet migrated store; the suite
// then checks every interface method against the contract in package store: lossless round
// trips, idempotent writes under at-least-once delivery, session aggregation, filters, ordering,
// baselines, migrations and retention.
package storetest
