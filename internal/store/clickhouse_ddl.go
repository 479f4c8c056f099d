package store

import (
	"fmt"
	"strconv"
	"strings"
)

// chDialect is what the DDL depends on. Modern servers (21+) get DateTime64(6), LowCardinality
// and a retention TTL; older ones (Debian's 18.16) get DateTime, String and no TTL. Both keep a
// separate Int64 microseconds column for every time, and every query uses only those, so the
// queries are the same on both.
type chDialect struct {
	db            string
	modern        bool
	retentionDays int
}

// modernClickHouse says whether a version() string is a server with DateTime64, LowCardinality
// without settings, and table TTL.
func modernClickHouse(version string) (bool, error) {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return false, fmt.Errorf("cannot parse clickhouse version %q", version)
	}
	return n >= 21, nil
}

func (d chDialect) ts() string {
	if d.modern {
		return "DateTime64(6, 'UTC')"
	}
	return "DateTime('UTC')"
}

// lc is the type for low-cardinality strings (agent, server, method, status…).
func (d chDialect) lc() string {
	if d.modern {
		return "LowCardinality(String)"
	}
	return "String"
}

// blob is the type for large, rarely read text (captured content): modern servers compress it
// harder than the default LZ4, which 18.16 cannot (it has no CODEC).
func (d chDialect) blob() string {
	if d.modern {
		return "String CODEC(ZSTD(1))"
	}
	return "String"
}

// ttlExpr is the retention TTL for a time column.
func (d chDialect) ttlExpr(col string) string {
	return fmt.Sprintf("toDateTime(%s) + toIntervalDay(%d)", col, d.retentionDays)
}

func (d chDialect) ttl(col string) string {
	if !d.modern {
		return ""
	}
	return "\nTTL " + d.ttlExpr(col)
}

// ttlColumns names the tables whose rows expire, and the time column they expire by.
var chTTLColumns = []struct{ table, column string }{{"events", "observed_at"}, {"anomalies", "last_seen"}, {"deliveries", "time"}}

func (d chDialect) migrationsTable() string {
	return `CREATE TABLE IF NOT EXISTS ` + d.db + `.schema_migrations (
	version    UInt32,
	name       String,
	applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree ORDER BY version`
}

// migrations is the ClickHouse schema history. Statements are idempotent (IF NOT EXISTS, and
// addColumns checks system.columns) so that a migration interrupted before it was recorded can
// simply run again.
//
// Tables are ReplacingMergeTree so that at-least-once duplicates collapse on merge; queries never
// rely on merges having happened (they deduplicate with uniqExact, LIMIT BY or argMax).
// Partitions are days, which DropExpired drops whole.
func (d chDialect) migrations() []migration {
	lc, ts := d.lc(), d.ts()
	return []migration{{
		version: 1,
		name:    "events, anomalies, baselines",
		stmts: []string{
			`CREATE TABLE IF NOT EXISTS ` + d.db + `.events (
	event_id         String,
	schema_version   UInt8,
	observed_at      ` + ts + `,
	observed_us      Int64,
	collector_id     ` + lc + `,
	source           ` + lc + `,
	transport        ` + lc + `,
	protocol_version ` + lc + `,
	agent_id         ` + lc + `,
	agent_source     ` + lc + `,
	declared_agent   String,
	client_name      ` + lc + `,
	client_version   ` + lc + `,
	server_id        ` + lc + `,
	session_id       String,
	jsonrpc_id       String,
	direction        ` + lc + `,
	kind             ` + lc + `,
	method           ` + lc + `,
	target           String,
	status           ` + lc + `,
	error_code       Int32,
	latency_us       Int64,
	request_bytes    Int64,
	response_bytes   Int64,
	args_shape       String,
	args_hash        String,
	result_hash      String,
	trace_id         String,
	span_id          String,
	label_keys       Array(String),
	label_values     Array(String),
	flag_types       Array(String),
	flag_severities  Array(String),
	flag_paths       Array(String),
	flag_evidence    Array(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(observed_at)
ORDER BY (agent_id, session_id, observed_us, event_id)` + d.ttl("observed_at"),
			// version (see anomalyVersion) makes merges keep the version queries pick.
			`CREATE TABLE IF NOT EXISTS ` + d.db + `.anomalies (
	anomaly_id     String,
	schema_version UInt8,
	time_us        Int64,
	agent_id       ` + lc + `,
	session_id     String,
	server_id      ` + lc + `,
	kind           ` + lc + `,
	subject        String,
	score          Float64,
	severity       ` + lc + `,
	severity_rank  Int8,
	title          String,
	model          ` + lc + `,
	first_seen     ` + ts + `,
	first_seen_us  Int64,
	last_seen      ` + ts + `,
	last_seen_us   Int64,
	count          UInt64,
	learning       UInt8,
	data           String,
	version        UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(last_seen)
ORDER BY (agent_id, kind, anomaly_id)` + d.ttl("last_seen"),
			`CREATE TABLE IF NOT EXISTS ` + d.db + `.baselines (
	model      ` + lc + `,
	key        String,
	updated_at ` + ts + `,
	updated_us Int64,
	version    UInt64,
	state      String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (model, key)`,
		},
	}, {
		version: 2,
		name:    "events.content",
		// Captured content as JSON (schemas.Content), empty when absent. Existing parts are not
		// rewritten: they read the default until merged.
		addColumns: []chColumn{{table: "events", name: "content", typ: d.blob()}},
	}, {
		version: 3,
		name:    "anomalies.tags, definitions, deliveries",
		stmts: []string{
			// A definition version's key is (server_id, kind, name, first_seen_us); a later
			// save of the same key has a greater last_seen_us, which merges keep.
			`CREATE TABLE IF NOT EXISTS ` + d.db + `.definitions (
	server_id     ` + lc + `,
	kind          ` + lc + `,
	name          String,
	first_seen    ` + ts + `,
	first_seen_us Int64,
	last_seen     ` + ts + `,
	last_seen_us  Int64,
	fingerprint   String,
	definition    ` + d.blob() + `,
	version       UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (server_id, kind, name, first_seen_us)`,
			// One outcome per (delivery_id, status); the latest time wins.
			`CREATE TABLE IF NOT EXISTS ` + d.db + `.deliveries (
	delivery_id String,
	status      ` + lc + `,
	anomaly_id  String,
	agent_id    ` + lc + `,
	kind        ` + lc + `,
	severity    ` + lc + `,
	sink        ` + lc + `,
	attempts    UInt32,
	error       String,
	time        ` + ts + `,
	time_us     Int64,
	version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(time)
ORDER BY (delivery_id, status)` + d.ttl("time"),
		},
		// The anomaly's tags (also in data, which queries read), for filtering in SQL.
		addColumns: []chColumn{{table: "anomalies", name: "tags", typ: "Array(String)"}},
	}}
}
