package hintfuzz

import (
	"os"
	"testing"
)

// budgetEnv selects the hint fuzzer's budget: unset or "ci", the CI budget (every hint
// kind of every gadget forged, its core perturbations on a few calls of each hint);
// "full", the long budget (more calls per hint, samples of every perturbation, PLONK
// for every variant), the one to run before a release or after changing a gadget. The
// open-ended search is `go test -fuzz FuzzHints ./internal/hintfuzz`. docs/bench-notes.md
// ("CI time") has the commands and times.
const budgetEnv = "ZKML_HINTFUZZ_BUDGET"

// fullBudget reports whether ZKML_HINTFUZZ_BUDGET asks for the long budget; any value
// other than "", "ci" and "full" fails the test (a typo must not silently run less).
func fullBudget(t testing.TB) bool {
	switch v := os.Getenv(budgetEnv); v {
	case "", "ci":
		return false
	case "full":
		return true
	default:
		t.Fatalf("%s=%q: want ci or full", budgetEnv, v)
	}
	return false
}

// forgeLimits are forgeAll's bounds: the calls forged per hint and the constraints
// solved per case beyond the core perturbations (which are always all tried).
func forgeLimits(t testing.TB) (sitesPerHint, solved int) {
	if fullBudget(t) {
		return maxSitesPerHint, solveBudget
	}
	return ciSitesPerHint, 0
}

// ciSitesPerHint is forgeAll's calls per hint in CI: the first, the last and others
// spread between them.
const ciSitesPerHint = 8

// TestBudgetEnv: the budget variable accepts ci and full only.
func TestBudgetEnv(t *testing.T) {
	for v, want := range map[string]bool{"": false, "ci": false, "full": true} {
		t.Setenv(budgetEnv, v)
		if got := fullBudget(t); got != want {
			t.Errorf("%s=%q: full = %v, want %v", budgetEnv, v, got, want)
		}
	}
	t.Setenv(budgetEnv, "ful")
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		fullBudget(ft)
	}()
	if !ft.failed {
		t.Errorf("%s=ful was accepted", budgetEnv)
	}
}

// fatalRecorder records Fatalf instead of failing the test (and stops the caller).
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
