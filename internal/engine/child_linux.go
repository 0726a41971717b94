package engine

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to send the child SIGTERM when this process
// (strictly: the thread that starts it) dies, so no prover outlives its worker.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// limitAddressSpace lets the process map at most n more bytes of virtual memory than
// it has mapped now (the Go runtime reserves about 1 GiB of address space at start,
// most of it never touched): an allocation beyond that fails, and the runtime exits
// ("out of memory", or a fatal signal) instead of the machine swapping or the OOM
// killer choosing a victim. The heap grows in 64 MiB arenas, so up to one arena of
// the limit may go unused.
func limitAddressSpace(n int64) error {
	var pages int64
	b, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		_, err = fmt.Sscan(string(b), &pages)
	}
	if err != nil {
		return fmt.Errorf("reading the process size: %w", err)
	}
	lim := uint64(pages*int64(os.Getpagesize()) + n)
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
}
