// Package store opens partnerd's database, SQLite (embedded, pure Go) or
// PostgreSQL (pgx), applies the embedded migrations and runs queries written
// once in the SQL both engines understand. Queries use '?' placeholders; the
// store rewrites them to '$n' for PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/partnerd/partnerd/internal/errs"
)

// Dialect names the database engine behind a DB.
type Dialect string

// The two engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Querier runs queries; both DB and the Tx handed to DB.Tx implement it.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Dialect() Dialect
}

// DB is an open database. On SQLite it holds a pool of read connections and
// exactly one write connection, because SQLite allows one writer at a time
// and a single Go-side writer avoids SQLITE_BUSY between our own goroutines.
type DB struct {
	dialect Dialect
	read    *sql.DB
	write   *sql.DB
	binds   sync.Map // query text -> rebound text (PostgreSQL only)
	batch   batcher
	intake  batcher
	// Prepared statements by query text, per pool (SQLite only: the pure-Go
	// SQLite spends most of a small query's time parsing it, while pgx
	// already caches statements per connection).
	readStmts, writeStmts stmtCache
	// counts keeps the totals of long lists for their following pages.
	counts *countCache
}

// stmtCache holds prepared statements. It stops growing at maxStmts so that
// generated query text cannot exhaust memory; past that, queries run
// unprepared.
type stmtCache struct {
	m sync.Map
	n atomic.Int64
}

const maxStmts = 2000

func (db *DB) stmt(ctx context.Context, pool *sql.DB, c *stmtCache, q string) *sql.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	if v, ok := c.m.Load(q); ok {
		return v.(*sql.Stmt)
	}
	if c.n.Load() >= maxStmts {
		return nil
	}
	st, err := pool.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared call reports the error
	}
	if v, loaded := c.m.LoadOrStore(q, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	c.n.Add(1)
	return st
}

// Open opens the database named by dsn: a postgres:// or postgresql:// URL
// means PostgreSQL, anything else is a SQLite file path.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, dsn)
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool.SetMaxOpenConns(32)
	pool.SetMaxIdleConns(32)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return &DB{dialect: Postgres, read: pool, write: pool, counts: newCountCache()}, nil
}

// sqlitePragmas are applied to every connection. WAL lets readers run beside
// the writer; synchronous=NORMAL in WAL mode keeps every committed
// transaction across a crash of the process (the WAL is in the OS page cache)
// and only risks the last commits on power loss; see docs/operations.md.
func sqlitePragmas(sync string) []string {
	return []string{
		"journal_mode(WAL)",
		"foreign_keys(1)",
		"busy_timeout(10000)",
		"synchronous(" + sync + ")",
		"temp_store(MEMORY)",
		"cache_size(-32000)",
	}
}

func sqliteDSN(path string, extra url.Values) string {
	v := url.Values{}
	sync := os.Getenv("PARTNERD_SQLITE_SYNCHRONOUS")
	if sync == "" {
		sync = "NORMAL"
	}
	for _, p := range sqlitePragmas(sync) {
		v.Add("_pragma", p)
	}
	for k, vs := range extra {
		for _, x := range vs {
			v.Add(k, x)
		}
	}
	return "file:" + path + "?" + v.Encode()
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	path = strings.TrimPrefix(path, "sqlite://")
	if path == "" {
		return nil, errors.New("open sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite: create directory %s: %w", dir, err)
		}
	}
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction that
	// reads and then writes never fails half-way on a lock upgrade when
	// another process (a CLI command, say) holds the database.
	write, err := sql.Open("sqlite", sqliteDSN(path, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// The query planner's statistics, for the tables whose size moved
	// since they were last taken, before any reader loads them. Without
	// them SQLite takes every company_id index for as selective as any
	// other (a program is one company): a transaction's rewards were
	// looked for by walking all the company's rewards in date order.
	if err := optimize(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", sqliteDSN(path, url.Values{"_pragma": {"query_only(1)"}}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	n := runtime.NumCPU() * 2
	if n < 4 {
		n = 4
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	// A connection reads the planner's statistics when it opens: readers
	// are renewed hourly so that they take those Optimize keeps current.
	read.SetConnMaxLifetime(time.Hour)
	return &DB{dialect: SQLite, read: read, write: write, counts: newCountCache()}, nil
}

// optimize takes the planner's statistics of the tables that lack them or
// whose size changed much since (SQLite's PRAGMA optimize, over all
// tables).
func optimize(ctx context.Context, write *sql.DB) error {
	// Whole indexes are read, not a sample (analysis_limit 0, and the
	// mask leaves out 0x10, PRAGMA optimize's own temporary limit). A
	// sample of 1,000 rows of a company's 240,000 customers recorded
	// company_id as matching about 1,000 rows, and SQLite then sorted
	// "all" of them instead of reading the index in order: 250 ms for
	// a partner's ten newest customers. The full pass costs about 7 s
	// at the demo's scale 20, and is taken again only for a table whose
	// size changed 10-fold or more since.
	if _, err := write.ExecContext(ctx, "PRAGMA analysis_limit=0"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	if _, err := write.ExecContext(ctx, "PRAGMA optimize=0x10002"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	return nil
}

// Optimize brings the query planner's statistics up to date after the
// data grew: SQLite keeps none by itself (run at open, hourly, and after
// a bulk load); PostgreSQL's autovacuum keeps its own, so there it does
// nothing.
func (db *DB) Optimize(ctx context.Context) error {
	if db.dialect != SQLite {
		return nil
	}
	return optimize(ctx, db.write)
}

// Dialect tells which engine this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes every connection.
func (db *DB) Close() error {
	db.batch.close()
	db.intake.close()
	err := db.write.Close()
	if db.read != db.write {
		if rerr := db.read.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// Ping checks that the database answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// rebind rewrites '?' placeholders to '$1', '$2', ... for PostgreSQL. Our
// queries never put '?' inside string literals.
func (db *DB) rebind(q string) string {
	if db.dialect != Postgres {
		return q
	}
	if v, ok := db.binds.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	db.binds.Store(q, out)
	return out
}

// Exec runs a write outside an explicit transaction.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = db.rebind(query)
	if st := db.stmt(ctx, db.write, &db.writeStmts, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.write.ExecContext(ctx, query, args...)
}

// Query reads through the read pool.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = db.rebind(query)
	if st := db.stmt(ctx, db.read, &db.readStmts, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.read.QueryContext(ctx, query, args...)
}

// QueryRow reads one row through the read pool.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = db.rebind(query)
	if st := db.stmt(ctx, db.read, &db.readStmts, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.read.QueryRowContext(ctx, query, args...)
}

// WriteRow runs a one-row statement (an INSERT ... RETURNING, say) on the
// write connection as its own transaction.
func (db *DB) WriteRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.write.QueryRowContext(ctx, db.rebind(query), args...)
}

// Tx is a write transaction. It implements Querier; reads inside it see its
// own writes.
type Tx struct {
	db         *DB
	tx         *sql.Tx
	unprepared []string // queries to prepare after the transaction
	snapshot   bool     // a read-only transaction on the read pool (Snapshot)
}

// Dialect tells which engine this is.
func (t *Tx) Dialect() Dialect { return t.db.dialect }

// txStmt returns the cached statement for query bound to the transaction;
// on SQLite's single write connection database/sql reuses the statement
// already prepared there. A statement not cached yet cannot be prepared
// now (the transaction holds the only write connection), so it runs
// unprepared and is prepared once the transaction ends.
func (t *Tx) txStmt(ctx context.Context, query string) *sql.Stmt {
	if t.db.dialect != SQLite || t.snapshot {
		return nil
	}
	if v, ok := t.db.writeStmts.m.Load(query); ok {
		return t.tx.StmtContext(ctx, v.(*sql.Stmt))
	}
	if t.db.writeStmts.n.Load() < maxStmts {
		t.unprepared = append(t.unprepared, query)
	}
	return nil
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = t.db.rebind(query)
	if st := t.txStmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// Query runs a query in the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = t.db.rebind(query)
	if st := t.txStmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRow runs a one-row query in the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = t.db.rebind(query)
	if st := t.txStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// Tx runs fn in a write transaction, committing when fn returns nil and
// rolling back otherwise, so a failed request leaves nothing half-written.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{db: db, tx: sqlTx}
	defer func() {
		for _, q := range tx.unprepared {
			db.stmt(ctx, db.write, &db.writeStmts, q)
		}
	}()
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Snapshot runs fn in a read-only transaction on the read pool, which sees
// the database as it was at its first read however long fn takes (an
// export of several tables stays consistent while writes go on). Writes
// inside fn fail.
func (db *DB) Snapshot(ctx context.Context, fn func(q Querier) error) error {
	var opts *sql.TxOptions
	if db.dialect == Postgres {
		opts = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	}
	sqlTx, err := db.read.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer sqlTx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(&Tx{db: db, tx: sqlTx, snapshot: true})
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Bool turns a Go bool into the INTEGER 0/1 both engines store booleans as.
func Bool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RetryUnique runs fn, and once more when it fails on a unique index: two
// requests racing with one new natural key (a customer_key, an
// external_key), where the loser's second attempt finds the winner's row.
// A second collision is a conflict the caller may retry.
func RetryUnique(fn func() error) error {
	err := fn()
	if IsUniqueViolation(err) {
		err = fn()
	}
	if IsUniqueViolation(err) {
		return errs.E(errs.Conflict, "a concurrent request wrote the same key; retry")
	}
	return err
}
