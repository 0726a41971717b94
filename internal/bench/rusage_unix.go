//go:build unix

package bench

import (
	"runtime"
	"syscall"
)

// maxRSS is the process's peak resident set size in bytes (getrusage ru_maxrss).
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss // bytes on macOS
	}
	return ru.Maxrss * 1024 // KiB on Linux
}
