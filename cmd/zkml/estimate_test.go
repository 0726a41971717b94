package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/zkml/zkml/internal/bench"
)

// TestCompilePrintsEstimate: `zkml compile` prints the service's admission estimate
// before compiling, and it bounds the compiled size it then reports.
func TestCompilePrintsEstimate(t *testing.T) {
	onnx := filepath.Join(t.TempDir(), "relu.onnx")
	if err := os.WriteFile(onnx, bench.Elementwise("Relu", 16), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRoot()
	var out, errw bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errw)
	root.SetArgs([]string{"compile", onnx, "-d", filepath.Join(t.TempDir(), "m.zkml"), "--system", "groth16", "--json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("compile: %v\n%s", err, errw.String())
	}
	est := regexp.MustCompile(`estimate groth16: at most (\d+) constraints, (\d+) wires, domain 2\^\d+, \d+ MiB`).FindStringSubmatch(errw.String())
	got := regexp.MustCompile(`"constraints": (\d+)`).FindStringSubmatch(out.String())
	if est == nil || got == nil {
		t.Fatalf("no estimate or no size:\n%s\n%s", errw.String(), out.String())
	}
	bound, _ := strconv.Atoi(est[1])
	size, _ := strconv.Atoi(got[1])
	if bound < size {
		t.Fatalf("estimate %d below the compiled %d constraints", bound, size)
	}
}

func TestLimitsFromEnv(t *testing.T) {
	for _, c := range []struct {
		constraints, memory string
		want                bench.Limits
		bad                 bool
	}{
		{"", "", bench.Limits{MaxConstraints: defaultMaxConstraints, MaxMemoryBytes: defaultMaxJobMemory}, false},
		{"1000000", "512MiB", bench.Limits{MaxConstraints: 1000000, MaxMemoryBytes: 512 << 20}, false},
		{"0", "0", bench.Limits{}, false},
		{"", "8GiB", bench.Limits{MaxConstraints: defaultMaxConstraints, MaxMemoryBytes: 8 << 30}, false},
		{"", "65536", bench.Limits{MaxConstraints: defaultMaxConstraints, MaxMemoryBytes: 65536}, false},
		{"-1", "", bench.Limits{}, true},
		{"", "8GB", bench.Limits{}, true},
	} {
		t.Setenv("ZKML_MAX_CONSTRAINTS", c.constraints)
		t.Setenv("ZKML_MAX_JOB_MEMORY", c.memory)
		got, err := limitsFromEnv()
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("ZKML_MAX_CONSTRAINTS=%q ZKML_MAX_JOB_MEMORY=%q: %+v, %v", c.constraints, c.memory, got, err)
		}
	}
}
