package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/internal/bench"
)

// TestMemoryBudgetRefusesEarly: compile, setup and prove estimate the model's memory
// before building its circuit and refuse it when it is over the budget (--max-memory,
// else $ZKML_MAX_JOB_MEMORY), naming the estimate and the budget; compile writes
// nothing then. 0 disables the limit.
func TestMemoryBudgetRefusesEarly(t *testing.T) {
	t.Setenv(envJobMemory, "")
	model := filepath.Join(modelsDir, "1l_mlp")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")
	refused := func(t *testing.T, source string, err error, stderr string) {
		t.Helper()
		if !errors.Is(err, bench.ErrOverBudget) {
			t.Fatalf("err %v, want over budget", err)
		}
		for _, want := range []string{"needs an estimated", "MiB of memory", "above the limit of 1 MiB", source, "before building its circuit"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if strings.Contains(stderr, "compile groth16 ") || strings.Contains(stderr, "setup groth16 ") || strings.Contains(stderr, "prove groth16 ") {
			t.Errorf("the step ran:\n%s", stderr)
		}
	}

	dir := filepath.Join(t.TempDir(), "m.zkml")
	_, stderr, err := runBoth(t, "compile", onnx, "-d", dir, "--system", "groth16", "--max-memory", "1MiB")
	refused(t, "--max-memory", err, stderr)
	if !strings.Contains(stderr, "estimate groth16: at most") {
		t.Errorf("no estimate printed:\n%s", stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("refused compile wrote %s (%v)", dir, err)
	}

	// With sample inputs, compile chooses settings by lowering the model many times: an
	// over-budget model is refused before that search (a regression: it ran first).
	_, stderr, err = runBoth(t, "compile", onnx, "-d", dir, "--system", "groth16", "--input", input, "--max-memory", "1MiB")
	refused(t, "--max-memory", err, stderr)
	if strings.Contains(stderr, "choose settings") {
		t.Errorf("settings were searched before the refusal:\n%s", stderr)
	}

	t.Setenv(envJobMemory, "1MiB")
	_, stderr, err = runBoth(t, "compile", onnx, "-d", dir, "--system", "groth16")
	refused(t, envJobMemory, err, stderr)

	// --max-memory 0 disables the limit, over the environment's.
	mustRun(t, "compile", onnx, "-d", dir, "--system", "groth16", "--max-memory", "0")
	_, stderr, err = runBoth(t, "setup", "-d", dir)
	refused(t, envJobMemory, err, stderr)
	mustRun(t, "setup", "-d", dir, "--max-memory", "16GiB")
	_, stderr, err = runBoth(t, "prove", "-d", dir, "--input", input, "--max-memory", "1MiB")
	refused(t, "--max-memory", err, stderr)
	t.Setenv(envJobMemory, "")
	mustRun(t, "prove", "-d", dir, "--input", input)

	if _, _, err := runBoth(t, "compile", onnx, "-d", dir, "--max-memory", "8GB"); err == nil || !strings.Contains(err.Error(), "--max-memory") {
		t.Errorf("--max-memory 8GB: err %v", err)
	}
}

// TestMemoryBudgetDefault: without the flag and the variable, the budget is the
// machine's memory (unlimited where it cannot be read).
func TestMemoryBudgetDefault(t *testing.T) {
	t.Setenv(envJobMemory, "")
	var b memoryBudget
	l, err := b.limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxMemoryBytes != bench.MachineMemory() || l.MaxConstraints != 0 || !strings.Contains(l.MemorySource, "machine") {
		t.Fatalf("default limits %+v, machine memory %d", l, bench.MachineMemory())
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && l.MaxMemoryBytes < 64<<20 {
		t.Fatalf("machine memory %d bytes", l.MaxMemoryBytes)
	}
}
