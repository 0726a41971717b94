package model_test

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/zkml/zkml/internal/conformance"
	"github.com/zkml/zkml/model"
)

// conformanceDir holds the vendored ONNX backend node tests (see ../testdata/onnx-node/README.md).
const conformanceDir = "../testdata/onnx-node"

// runDataSet evaluates one data set with the float reference and compares every output
// with tolerance tol (absolute and relative).
func runDataSet(c *conformance.Case, ds *conformance.DataSet, tol float64) error {
	g, err := c.Graph(ds)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	got, err := g.Eval(ds.Inputs)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	for i, out := range got {
		want := ds.Outputs[i]
		if fmt.Sprint(out.Shape) != fmt.Sprint(want.Shape) && model.Numel(out.Shape) != model.Numel(want.Shape) {
			return fmt.Errorf("output %d has shape %v, want %v", i, out.Shape, want.Shape)
		}
		for j, w := range want.Data {
			if d := math.Abs(out.Data[j] - w); !(d <= tol+tol*math.Abs(w)) {
				return fmt.Errorf("output %d element %d = %v, want %v", i, j, out.Data[j], w)
			}
		}
	}
	return nil
}

// TestConformanceFloat runs the float reference on the ONNX node tests. Operators the
// evaluator supports must match the expected outputs; every other operator must be
// rejected at Load with an ErrUnsupportedOp error naming the operator and the node.
func TestConformanceFloat(t *testing.T) {
	cases, err := conformance.Load(conformanceDir)
	if err != nil || len(cases) == 0 {
		t.Fatalf("node tests under %s: %d cases, %v", conformanceDir, len(cases), err)
	}
	type tally struct{ passed, total int }
	supported, unsupported := map[string]*tally{}, map[string]*tally{}
	for _, c := range cases {
		_, loadErr := c.Graph(c.Sets[0])
		results := supported
		if errors.Is(loadErr, model.ErrUnsupportedOp) {
			results = unsupported
		}
		if results[c.Op] == nil {
			results[c.Op] = &tally{}
		}
		results[c.Op].total++
		passed := t.Run(c.Name, func(t *testing.T) {
			if errors.Is(loadErr, model.ErrUnsupportedOp) {
				if label := c.Op + " node "; !strings.Contains(loadErr.Error(), label) {
					t.Errorf("error %q does not name the operator and node (%q...)", loadErr, label)
				}
				return
			}
			for _, ds := range c.Sets {
				if err := runDataSet(c, ds, 1e-4); err != nil {
					t.Errorf("%s: %v", ds.Name, err)
				}
			}
		})
		if passed {
			results[c.Op].passed++
		}
	}
	summarize := func(title string, m map[string]*tally) {
		ops := make([]string, 0, len(m))
		for op := range m {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		var b strings.Builder
		for _, op := range ops {
			fmt.Fprintf(&b, "\n  %-20s %d/%d", op, m[op].passed, m[op].total)
		}
		t.Logf("%s (op: passed/total):%s", title, b.String())
	}
	summarize("supported operators", supported)
	summarize("unsupported operators, rejected at Load", unsupported)
}
