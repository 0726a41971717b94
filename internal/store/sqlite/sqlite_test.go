package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/sqlite"
	"github.com/zkml/zkml/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zkml.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
