// Package sqldb implements store.Store once, over a small connection seam that the
// postgres (pgx) and sqlite (database/sql) packages adapt. Queries are written in
// Postgres syntax with $n placeholders; adapters translate what their engine needs.
package sqldb

import (
	"context"
	"fmt"
	"time"
)

// Querier runs statements; adapters map "no rows" to store.ErrNotFound.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is a single-row result.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a multi-row result.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Conn is a pool that can also run a function in one transaction.
type Conn interface {
	Querier
	// InTx runs fn in a transaction that is committed when fn returns nil. SQLite
	// adapters begin it IMMEDIATE; Postgres queries lock rows with FOR UPDATE.
	InTx(ctx context.Context, fn func(q Querier) error) error
	Ping(ctx context.Context) error
	Close() error
}

// Dialect tells the shared queries which engine they run on.
type Dialect int

// Dialects.
const (
	Postgres Dialect = iota
	SQLite
)

// Time is a nullable timestamp that scans from both a Postgres timestamptz and a
// SQLite integer of Unix microseconds.
type Time struct {
	T     time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (t *Time) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = Time{}
	case time.Time:
		*t = Time{T: v.UTC(), Valid: true}
	case int64:
		*t = Time{T: time.UnixMicro(v).UTC(), Valid: true}
	default:
		return fmt.Errorf("sqldb: cannot scan %T into Time", v)
	}
	return nil
}

// Ptr returns nil for NULL.
func (t Time) Ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	tt := t.T
	return &tt
}

// Micros converts time arguments to Unix microseconds for SQLite; other values pass.
func Micros(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UnixMicro()
	case *time.Time:
		if v == nil {
			return nil
		}
		return v.UnixMicro()
	}
	return v
}
