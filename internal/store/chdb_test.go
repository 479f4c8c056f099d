package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// This file lets the ClickHouse backend run on the modern engine (ClickHouse 26.x embedded in
// npm's chdb), which has no TCP server: chdbConn implements the part of clickhouse-go's
// driver.Conn the backend uses by sending SQL to a Node process that runs it in a chdb Session.
// Arguments are bound client-side as clickhouse-go does, batches become JSONEachRow inserts.
// Tests only; enabled by MCPWATCH_TEST_CHDB=<dir with node_modules/chdb>.

const chdbScript = `
const path = require("path");
const readline = require("readline");
const { Session } = require(path.join(process.argv[2], "node_modules", "chdb"));
const session = new Session(process.argv[3]);
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const req = JSON.parse(line);
  let res;
  try {
    res = { out: session.query(req.sql, req.format || "JSONCompact") || "" };
  } catch (e) {
    res = { error: String(e && e.message || e) };
  }
  process.stdout.write(JSON.stringify(res) + "\n");
});
rl.on("close", () => { try { session.cleanup(); } catch (e) {} process.exit(0); });
`

type chdbConn struct {
	driver.Conn // unused methods panic

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	log    []string // every statement run, for assertions
}

// startChdb starts a Node process with a chdb session under dir.
func startChdb(chdbDir, dir string) (*chdbConn, error) {
	script := filepath.Join(dir, "chdb-server.js")
	if err := os.WriteFile(script, []byte(chdbScript), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", script, chdbDir, filepath.Join(dir, "session"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &chdbConn{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<20)}, nil
}

func (c *chdbConn) run(query string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, query)
	req, err := json.Marshal(map[string]string{"sql": query})
	if err != nil {
		return "", err
	}
	if _, err := c.stdin.Write(append(req, '\n')); err != nil {
		return "", err
	}
	line, err := c.stdout.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("chdb process: %w", err)
	}
	var res struct{ Out, Error string }
	if err := json.Unmarshal(line, &res); err != nil {
		return "", err
	}
	if res.Error != "" {
		return "", fmt.Errorf("chdb: %s [query: %s]", res.Error, query)
	}
	return res.Out, nil
}

// statements returns the statements run so far.
func (c *chdbConn) statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

func (c *chdbConn) Close() error {
	_ = c.stdin.Close()
	return c.cmd.Wait()
}

func (c *chdbConn) Ping(context.Context) error { return nil }

func (c *chdbConn) Exec(_ context.Context, query string, args ...any) error {
	q, err := bindArgs(query, args)
	if err != nil {
		return err
	}
	_, err = c.run(q)
	return err
}

func (c *chdbConn) Query(_ context.Context, query string, args ...any) (driver.Rows, error) {
	q, err := bindArgs(query, args)
	if err != nil {
		return nil, err
	}
	out, err := c.run(q)
	if err != nil {
		return nil, err
	}
	var res struct{ Data [][]json.RawMessage }
	if out != "" {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return nil, fmt.Errorf("cannot decode chdb result: %w", err)
		}
	}
	return &chdbRows{data: res.Data, i: -1}, nil
}

func (c *chdbConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		return &chdbRow{err: err}
	}
	if !rows.Next() {
		return &chdbRow{err: errors.New("no rows")}
	}
	return &chdbRow{rows: rows.(*chdbRows)}
}

var insertRe = regexp.MustCompile(`(?s)^INSERT INTO (\S+) \((.*)\)$`)

func (c *chdbConn) PrepareBatch(_ context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	m := insertRe.FindStringSubmatch(strings.TrimSpace(query))
	if m == nil {
		return nil, fmt.Errorf("chdb fake: unsupported batch %q", query)
	}
	var cols []string
	for _, col := range strings.Split(m[2], ",") {
		cols = append(cols, strings.TrimSpace(col))
	}
	return &chdbBatch{conn: c, table: m[1], cols: cols, data: make([][]any, len(cols))}, nil
}

// bindArgs replaces each ? with a literal, as clickhouse-go's client-side binding does.
func bindArgs(query string, args []any) (string, error) {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		if n >= len(args) {
			return "", fmt.Errorf("too few arguments for %q", query)
		}
		switch v := args[n].(type) {
		case string:
			b.WriteString("'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'")
		case int, int64, int32, uint64, uint32:
			fmt.Fprintf(&b, "%d", v)
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			return "", fmt.Errorf("chdb fake: cannot bind %T", v)
		}
		n++
	}
	if n != len(args) {
		return "", fmt.Errorf("too many arguments for %q", query)
	}
	return b.String(), nil
}

type chdbRows struct {
	data [][]json.RawMessage
	i    int
}

func (r *chdbRows) Next() bool   { r.i++; return r.i < len(r.data) }
func (r *chdbRows) Close() error { return nil }
func (r *chdbRows) Err() error   { return nil }

func (r *chdbRows) Scan(dest ...any) error {
	row := r.data[r.i]
	if len(row) != len(dest) {
		return fmt.Errorf("scan: %d columns into %d destinations", len(row), len(dest))
	}
	for i, d := range dest {
		if err := scanJSON(row[i], d); err != nil {
			return fmt.Errorf("scan column %d: %w", i, err)
		}
	}
	return nil
}

func (r *chdbRows) ScanStruct(any) error             { return errors.New("not implemented") }
func (r *chdbRows) ColumnTypes() []driver.ColumnType { return nil }
func (r *chdbRows) Totals(...any) error              { return errors.New("not implemented") }
func (r *chdbRows) Columns() []string                { return nil }

// scanJSON converts a JSONCompact value (64-bit integers arrive quoted) into dest.
func scanJSON(raw json.RawMessage, dest any) error {
	v := reflect.ValueOf(dest).Elem()
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.Trim(string(raw), `"`), 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
		return nil
	}
	return json.Unmarshal(raw, dest)
}

type chdbRow struct {
	rows *chdbRows
	err  error
}

func (r *chdbRow) Err() error { return r.err }
func (r *chdbRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Scan(dest...)
}
func (r *chdbRow) ScanStruct(any) error { return errors.New("not implemented") }

type chdbBatch struct {
	conn  *chdbConn
	table string
	cols  []string
	data  [][]any // per column
	sent  bool
}

type chdbColumn struct {
	b *chdbBatch
	i int
}

func (c chdbColumn) Append(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return fmt.Errorf("column append wants a slice, got %T", v)
	}
	for j := range rv.Len() {
		c.b.data[c.i] = append(c.b.data[c.i], rv.Index(j).Interface())
	}
	return nil
}

func (c chdbColumn) AppendRow(v any) error { c.b.data[c.i] = append(c.b.data[c.i], v); return nil }

func (b *chdbBatch) Column(i int) driver.BatchColumn { return chdbColumn{b: b, i: i} }
func (b *chdbBatch) Abort() error                    { b.sent = true; return nil }
func (b *chdbBatch) AppendStruct(any) error          { return errors.New("not implemented") }
func (b *chdbBatch) Flush() error                    { return nil }
func (b *chdbBatch) IsSent() bool                    { return b.sent }
func (b *chdbBatch) Rows() int                       { return len(b.data[0]) }

func (b *chdbBatch) Append(v ...any) error {
	if len(v) != len(b.cols) {
		return fmt.Errorf("append: %d values for %d columns", len(v), len(b.cols))
	}
	for i, x := range v {
		b.data[i] = append(b.data[i], x)
	}
	return nil
}

func (b *chdbBatch) Send() error {
	b.sent = true
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + b.table + " FORMAT JSONEachRow\n")
	for r := range b.data[0] {
		row := make(map[string]any, len(b.cols))
		for i, col := range b.cols {
			x := b.data[i][r]
			if t, ok := x.(time.Time); ok {
				x = t.UTC().Format("2006-01-02 15:04:05.000000")
			}
			row[col] = x
		}
		line, err := json.Marshal(row)
		if err != nil {
			return err
		}
		sb.Write(line)
		sb.WriteByte('\n')
	}
	_, err := b.conn.run(sb.String())
	return err
}

// newChdbClickHouse returns a ClickHouse store over a fresh chdb session.
func newChdbClickHouse(chdbDir, dir, db string, retentionDays int) (*ClickHouse, *chdbConn, error) {
	conn, err := startChdb(chdbDir, dir)
	if err != nil {
		return nil, nil, err
	}
	return &ClickHouse{conn: conn, db: db, retentionDays: retentionDays, logger: slog.New(slog.DiscardHandler)}, conn, nil
}
