package postgres_test

import (
	"context"
	"testing"

	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/postgres"
	"github.com/zkml/zkml/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn, schema := storetest.PostgresDSN(t)
		s, err := postgres.Open(context.Background(), dsn, schema)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
