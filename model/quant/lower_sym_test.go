package quant

import (
	"errors"
	"math"
	"testing"

	"github.com/zkml/zkml/model"
)

// TestSymmetryOf classifies the functions range reduction may fold: odd about f(0),
// shifted by the identity, or neither (then no half table may be used).
func TestSymmetryOf(t *testing.T) {
	for _, tc := range []struct {
		op   string
		want symmetry
	}{
		{"Tanh", symOdd}, {"Sigmoid", symOdd}, {"Erf", symOdd}, {"HardSigmoid", symOdd},
		{"Softplus", symShift}, {"Gelu", symShift}, {"HardSwish", symShift},
		{"Elu", symNone}, {"Selu", symNone}, {"Mish", symNone}, {"Exp", symNone},
	} {
		got, dev := symmetryOf(model.UnaryFunc(tc.op, nil), 12, 1<<20)
		if got != tc.want || dev > symTolerance {
			t.Errorf("%s: symmetry %d (deviation %g steps), want %d", tc.op, got, dev, tc.want)
		}
	}
	// HardSigmoid is odd about f(0) only with beta 0.5.
	f := func(x float64) float64 { return math.Max(0, math.Min(1, 0.2*x+0.3)) }
	if got, _ := symmetryOf(f, 12, 1<<20); got != symNone {
		t.Errorf("hardsigmoid(0.2, 0.3): symmetry %d, want none", got)
	}
}

// TestFittedRefusesWiderInput: a table is only read by inputs within the bound it was
// fitted to; a wider one (a rescale bounded differently than planned) is an error
// naming the layer, not a silent clamp.
func TestFittedRefusesWiderInput(t *testing.T) {
	lw := &lowering{p: &Program{Config: DefaultConfig()}}
	x := lw.p.newValue([]int{1}, 8, 100)
	n := &model.Node{Name: "act", Op: "Tanh"}
	if err := lw.fitted(n, x, 100); err != nil {
		t.Fatal(err)
	}
	if err := lw.fitted(n, x, 99); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("input bound 100 on a table fitted to 99: %v", err)
	}
}
