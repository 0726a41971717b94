package migrations_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/zkml/zkml/internal/store/postgres"
	"github.com/zkml/zkml/internal/store/sqlite"
	"github.com/zkml/zkml/internal/store/storetest"
	"github.com/zkml/zkml/migrations"
)

// upDownUp checks every migration applies, rolls back and re-applies cleanly.
func upDownUp(t *testing.T, db *sql.DB, d migrations.Dialect) {
	ctx := context.Background()
	v, err := migrations.Up(ctx, db, d)
	if err != nil || v < 1 {
		t.Fatalf("Up = %d, %v", v, err)
	}
	if err := migrations.Down(ctx, db, d); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, db, d); err != nil {
		t.Fatal(err)
	}
}

func TestSQLite(t *testing.T) {
	db, err := sqlite.OpenDB(filepath.Join(t.TempDir(), "m.db"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	upDownUp(t, db, migrations.SQLite)
}

func TestPostgres(t *testing.T) {
	dsn, schema := storetest.PostgresDSN(t)
	pool, err := postgres.NewPool(context.Background(), dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	upDownUp(t, db, migrations.Postgres)
}

func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := func(d migrations.Dialect) []string {
		fsys, err := migrations.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	pg, lite := names(migrations.Postgres), names(migrations.SQLite)
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %v, sqlite %v", pg, lite)
	}
	for i := range pg {
		if pg[i] != lite[i] {
			t.Fatalf("postgres has %v, sqlite %v", pg, lite)
		}
	}
}
