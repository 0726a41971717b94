package jobs_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/jobs/queuetest"
	"github.com/zkml/zkml/internal/store/postgres"
	"github.com/zkml/zkml/internal/store/sqlite"
	"github.com/zkml/zkml/internal/store/storetest"
)

func TestRiverSQLite(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queuetest.NewQueue {
		path := filepath.Join(t.TempDir(), "q.db")
		return func(opts jobs.Options) jobs.Queue {
			db, err := sqlite.OpenDB(path, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			drv := riversqlite.New(db)
			if err := jobs.MigrateRiver(context.Background(), drv, ""); err != nil {
				t.Fatal(err)
			}
			q, err := jobs.NewRiver(drv, opts)
			if err != nil {
				t.Fatal(err)
			}
			return q
		}
	})
}

func TestRiverPostgres(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queuetest.NewQueue {
		dsn, schema := storetest.PostgresDSN(t)
		return func(opts jobs.Options) jobs.Queue {
			pool, err := postgres.NewPool(context.Background(), dsn, schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			drv := riverpgxv5.New(pool)
			if err := jobs.MigrateRiver(context.Background(), drv, schema); err != nil {
				t.Fatal(err)
			}
			opts.Schema = schema
			q, err := jobs.NewRiver(drv, opts)
			if err != nil {
				t.Fatal(err)
			}
			return q
		}
	})
}
