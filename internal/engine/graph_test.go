package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
)

// TestAdmitStructural: a scaled-down VGG-16 (64x64, a quarter of the channels: 72.5 M
// MACs in its sums, whose index lists alone, 8 bytes a MAC, exceed the 512 MiB limit)
// is refused by its structural estimate, before anything lowers it: in this process,
// and in the estimate child, whose memory limit the lowering would have exceeded
// (refusing it with "lowering the model needed more than the memory limit" instead).
// The error names the limit, its source and the largest layers; compile refuses it the
// same way.
func TestAdmitStructural(t *testing.T) {
	onnx, _, _, err := onnxgen.VGG16{Size: 64, Div: 4, Classes: 10}.Build()
	if err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, api.ErrOverBudget) {
			t.Fatalf("admitted: %v", err)
		}
		for _, want := range []string{"structural estimate, before lowering", "above the limit of 512 MiB (ZKML_MAX_JOB_MEMORY)", "largest layers: Conv+Relu"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
	limits := bench.Limits{MaxMemoryBytes: 512 << 20}
	e := &Engine{Limits: limits}
	refused(t, e.Admit(context.Background(), onnx, nil))
	_, err = e.Compile(context.Background(), t.TempDir(), onnx, nil)
	refused(t, err)
	child := &Engine{ChildCommand: selfChild(t), Limits: limits}
	refused(t, child.Admit(context.Background(), onnx, nil))
	// Within the budget, the structural check passes and the lowered estimate decides.
	if err := (&Engine{Limits: bench.Limits{MaxMemoryBytes: 1 << 40}}).checkGraph(onnx, nil); err != nil {
		t.Fatal(err)
	}
}
