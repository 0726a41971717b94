package evm

import (
	"errors"
	"testing"
)

// RequireCompiler returns DefaultCompiler for tests. A missing solc-js skips the test under
// `go test -short` only; in full mode it fails the test, since CI installs solc with
// scripts/ensure-solc.sh.
func RequireCompiler(tb testing.TB) *Compiler {
	tb.Helper()
	c, err := DefaultCompiler()
	SkipOrFatal(tb, err)
	return c
}

// SkipOrFatal fails tb on err, except that ErrSolcUnavailable under -short skips it.
func SkipOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrSolcUnavailable) {
		if testing.Short() {
			tb.Skipf("skipping in -short mode: %v", err)
		}
		tb.Fatalf("%v (install it with scripts/ensure-solc.sh)", err)
	}
	tb.Fatal(err)
}
