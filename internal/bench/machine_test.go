package bench

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemTotal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want int64
	}{
		{"MemTotal:       24684084 kB\nMemFree:        18530556 kB\n", 24684084 << 10},
		{"MemFree:        18530556 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
	} {
		f := filepath.Join(dir, "meminfo")
		if err := os.WriteFile(f, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := memTotal(f); got != c.want {
			t.Errorf("%q: %d, want %d", c.text, got, c.want)
		}
	}
	if got := memTotal(filepath.Join(dir, "none")); got != 0 {
		t.Errorf("missing file: %d", got)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && MachineMemory() <= 0 {
		t.Errorf("MachineMemory %d on Linux", MachineMemory())
	}
}
