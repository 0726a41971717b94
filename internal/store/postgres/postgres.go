// Package postgres is the production store on PostgreSQL through pgx v5.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/sqldb"
	"github.com/zkml/zkml/migrations"
)

// Store is a store.Store on a pgx pool.
type Store struct {
	*sqldb.Store
	pool   *pgxpool.Pool
	schema string
}

// Open connects to dsn, creates schema when it is not empty (all tables then live in
// it, which lets test runs share one database), and applies migrations.
func Open(ctx context.Context, dsn, schema string) (*Store, error) {
	pool, err := NewPool(ctx, dsn, schema)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if _, err := migrations.Up(ctx, db, migrations.Postgres); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Store: sqldb.New(&conn{pool: pool}, sqldb.Postgres), pool: pool, schema: schema}, nil
}

// NewPool returns a pool whose connections use schema as search_path (created if
// missing). An empty schema keeps the server default.
func NewPool(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if schema != "" {
		if err := createSchema(ctx, dsn, schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return pool, nil
}

func createSchema(ctx context.Context, dsn, schema string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return nil // concurrent creation
	}
	return err
}

// DropSchema removes schema and everything in it (test cleanup).
func DropSchema(ctx context.Context, dsn, schema string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// Pool exposes the pool, e.g. for River's riverpgxv5 driver.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema is the schema the tables live in ("" for the default search path).
func (s *Store) Schema() string { return s.schema }

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type q struct{ x execer }

func (c q) Exec(ctx context.Context, query string, a ...any) (int64, error) {
	tag, err := c.x.Exec(ctx, query, a...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c q) QueryRow(ctx context.Context, query string, a ...any) sqldb.Row {
	return row{c.x.QueryRow(ctx, query, a...)}
}

func (c q) Query(ctx context.Context, query string, a ...any) (sqldb.Rows, error) {
	r, err := c.x.Query(ctx, query, a...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

type conn struct{ pool *pgxpool.Pool }

func (c *conn) Exec(ctx context.Context, query string, a ...any) (int64, error) {
	return q{c.pool}.Exec(ctx, query, a...)
}

func (c *conn) QueryRow(ctx context.Context, query string, a ...any) sqldb.Row {
	return q{c.pool}.QueryRow(ctx, query, a...)
}

func (c *conn) Query(ctx context.Context, query string, a ...any) (sqldb.Rows, error) {
	return q{c.pool}.Query(ctx, query, a...)
}

func (c *conn) InTx(ctx context.Context, fn func(sqldb.Querier) error) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error { return fn(q{tx}) })
}

func (c *conn) Ping(ctx context.Context) error { return c.pool.Ping(ctx) }
func (c *conn) Close() error                   { c.pool.Close(); return nil }
