package sqlite

import (
	"fmt"
	"os"
	"syscall"
)

// WithMigrationLock runs fn holding an exclusive advisory lock on path+".migrate.lock",
// so processes opening the same database at once migrate it one after the other
// (SQLite has no advisory locks of its own, and schema changes race otherwise).
func WithMigrationLock(path string, fn func() error) error {
	f, err := os.OpenFile(path+".migrate.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sqlite: migration lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("sqlite: migration lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
