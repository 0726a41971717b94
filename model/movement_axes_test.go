package model

import (
	"strings"
	"testing"
)

// TestDistinctAxes: Unsqueeze's axes and Pad's axes input refuse one axis given twice,
// also when spelled once from the front and once from the back.
func TestDistinctAxes(t *testing.T) {
	n := &Node{Name: "n", Op: "Unsqueeze"}
	got, err := distinctAxes(n, []int64{0, -1}, 3)
	if err != nil || len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("distinctAxes([0 -1], 3) = %v, %v; want [0 2]", got, err)
	}
	for _, axes := range [][]int64{{1, 1}, {2, -1}} {
		if _, err := distinctAxes(n, axes, 3); err == nil || !strings.Contains(err.Error(), "repeated axis") {
			t.Errorf("axes %v: err = %v, want a repeated axis error", axes, err)
		}
	}
	if _, err := distinctAxes(n, []int64{3}, 3); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("axis 3 of rank 3: err = %v", err)
	}
	n.Inputs = []string{"x", "axes"}
	axes := func(v ...float64) []*Tensor { return []*Tensor{nil, {Shape: []int{len(v)}, Data: v}} }
	if m, err := moveUnsqueeze(n, [][]int{{2, 3}}, axes(0, -1), 13); err != nil || len(m.Shape) != 4 || m.Shape[0] != 1 || m.Shape[3] != 1 {
		t.Errorf("Unsqueeze axes [0 -1] of [2 3]: %v, %v; want shape [1 2 3 1]", m, err)
	}
	// Output rank 4: axes 1 and -3 are the same axis.
	if _, err := moveUnsqueeze(n, [][]int{{2, 3}}, axes(1, -3), 13); err == nil || !strings.Contains(err.Error(), "repeated axis") {
		t.Errorf("Unsqueeze axes [1 -3] of [2 3]: err = %v, want a repeated axis error", err)
	}
}
