//go:build !linux

package engine

import "os/exec"

// setParentDeathSignal has no portable equivalent: the child's stdin watchdog alone
// ends it when this process dies.
func setParentDeathSignal(*exec.Cmd) {}

// limitAddressSpace is Linux-only; elsewhere the soft Go memory limit applies.
func limitAddressSpace(int64) error { return nil }
