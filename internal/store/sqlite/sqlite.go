// Package sqlite is the embedded store: SQLite through the pure-Go modernc.org/sqlite
// driver, used when no database URL is configured.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/sqldb"
	"github.com/zkml/zkml/migrations"
)

// Store is a store.Store on one SQLite file.
type Store struct {
	*sqldb.Store
	db *sql.DB
}

// DSN returns the modernc DSN for path: WAL so readers do not block the writer, a busy
// timeout so concurrent processes wait instead of failing, and BEGIN IMMEDIATE so a
// read-then-write transaction never fails to upgrade its lock.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// OpenDB opens a database/sql pool on path with the settings of DSN.
func OpenDB(path string, maxConns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	return db, nil
}

// Open opens (creating if needed) the database at path and applies migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := OpenDB(path, 4)
	if err != nil {
		return nil, err
	}
	err = WithMigrationLock(path, func() error {
		_, err := migrations.Up(ctx, db, migrations.SQLite)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: sqldb.New(&conn{db: db}, sqldb.SQLite), db: db}, nil
}

// DB exposes the pool, e.g. for River's riversqlite driver.
func (s *Store) DB() *sql.DB { return s.db }

// conn adapts *sql.DB to sqldb.Conn.
type conn struct{ db *sql.DB }

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var rewrites sync.Map // Postgres-style query -> SQLite query

// rewrite turns $n placeholders into SQLite's ?n.
func rewrite(q string) string {
	if v, ok := rewrites.Load(q); ok {
		return v.(string)
	}
	r := strings.ReplaceAll(q, "$", "?")
	rewrites.Store(q, r)
	return r
}

func args(in []any) []any {
	out := make([]any, len(in))
	for i, a := range in {
		out[i] = sqldb.Micros(a)
	}
	return out
}

type q struct{ x querier }

func (c q) Exec(ctx context.Context, query string, a ...any) (int64, error) {
	res, err := c.x.ExecContext(ctx, rewrite(query), args(a)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c q) QueryRow(ctx context.Context, query string, a ...any) sqldb.Row {
	return row{c.x.QueryRowContext(ctx, rewrite(query), args(a)...)}
}

func (c q) Query(ctx context.Context, query string, a ...any) (sqldb.Rows, error) {
	r, err := c.x.QueryContext(ctx, rewrite(query), args(a)...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

type rows struct{ *sql.Rows }

func (r rows) Close() { r.Rows.Close() }

func (c *conn) Exec(ctx context.Context, query string, a ...any) (int64, error) {
	return q{c.db}.Exec(ctx, query, a...)
}

func (c *conn) QueryRow(ctx context.Context, query string, a ...any) sqldb.Row {
	return q{c.db}.QueryRow(ctx, query, a...)
}

func (c *conn) Query(ctx context.Context, query string, a ...any) (sqldb.Rows, error) {
	return q{c.db}.Query(ctx, query, a...)
}

func (c *conn) InTx(ctx context.Context, fn func(sqldb.Querier) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(q{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (c *conn) Ping(ctx context.Context) error { return c.db.PingContext(ctx) }
func (c *conn) Close() error                   { return c.db.Close() }
