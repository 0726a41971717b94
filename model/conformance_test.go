package model

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// conformanceDir holds the ONNX backend node tests (see ../../shared/conformance/README.md).
const conformanceDir = "../../shared/conformance/onnx-node"

// paramInputs lists, per operator, the input positions that carry operator parameters rather
// than data. The node tests feed some of them as graph inputs; they are bound as constants.
var paramInputs = map[string][]int{
	"Reshape":   {1},
	"Gather":    {1},
	"Pad":       {1, 2, 3},
	"Slice":     {1, 2, 3, 4},
	"Squeeze":   {1},
	"Unsqueeze": {1},
	"Clip":      {1, 2},
	"Expand":    {1},
}

// nodeTest is one folder of the ONNX node tests.
type nodeTest struct {
	dir   string
	model []byte
	op    string
	node  *onnx.NodeProto
	graph *onnx.GraphProto
}

func readNodeTest(dir string) (*nodeTest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil, err
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	nodes := m.GetGraph().GetNode()
	if len(nodes) != 1 {
		return nil, fmt.Errorf("want a one-node graph, got %d nodes", len(nodes))
	}
	return &nodeTest{dir: dir, model: data, op: nodes[0].GetOpType(), node: nodes[0], graph: m.GetGraph()}, nil
}

// isParam reports whether graph input name feeds a parameter position of the node, or
// is integer-typed (indices, shapes) and so cannot be a quantized activation.
func (nt *nodeTest) isParam(vi *onnx.ValueInfoProto) bool {
	switch onnx.TensorProto_DataType(vi.GetType().GetTensorType().GetElemType()) {
	case onnx.TensorProto_INT64, onnx.TensorProto_INT32:
		return true
	}
	for _, pos := range paramInputs[nt.op] {
		if pos < len(nt.node.GetInput()) && nt.node.GetInput()[pos] == vi.GetName() {
			return true
		}
	}
	return false
}

func readPB(path string) (*Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return DecodeTensorProto(data)
}

// runDataSet loads the node test with its parameter inputs bound from one data set,
// evaluates it and compares every output with tolerance tol (absolute and relative).
func (nt *nodeTest) runDataSet(set string, tol float64) error {
	consts := map[string]*Tensor{}
	var inputs []*Tensor
	k := 0
	inits := map[string]bool{}
	for _, tp := range nt.graph.GetInitializer() {
		inits[tp.GetName()] = true
	}
	for _, vi := range nt.graph.GetInput() {
		if inits[vi.GetName()] {
			continue
		}
		t, err := readPB(filepath.Join(set, fmt.Sprintf("input_%d.pb", k)))
		k++
		if err != nil {
			return fmt.Errorf("input %q: %v", vi.GetName(), err)
		}
		if nt.isParam(vi) {
			consts[vi.GetName()] = t
		} else {
			inputs = append(inputs, t)
		}
	}
	g, err := LoadWithConstants(nt.model, consts)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	got, err := g.Eval(inputs)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	for i, out := range got {
		want, err := readPB(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			return fmt.Errorf("output %d: %v", i, err)
		}
		if !sameShape(out.Shape, want.Shape) {
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
	dirs, _ := filepath.Glob(filepath.Join(conformanceDir, "test_*"))
	if len(dirs) == 0 {
		t.Skipf("no node tests under %s", conformanceDir)
	}
	type tally struct{ passed, total int }
	supported, unsupported := map[string]*tally{}, map[string]*tally{}
	for _, dir := range dirs {
		nt, err := readNodeTest(dir)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(dir), err)
			continue
		}
		_, ok := floatOps(nt.op)
		results := unsupported
		if ok {
			results = supported
		}
		if results[nt.op] == nil {
			results[nt.op] = &tally{}
		}
		results[nt.op].total++
		passed := t.Run(filepath.Base(dir), func(t *testing.T) {
			if !ok {
				_, err := Load(nt.model)
				if !errors.Is(err, ErrUnsupportedOp) {
					t.Fatalf("Load: got %v, want an error wrapping ErrUnsupportedOp", err)
				}
				label := nt.op + " node "
				if !strings.Contains(err.Error(), label) {
					t.Errorf("error %q does not name the operator and node (%q...)", err, label)
				}
				return
			}
			sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
			if len(sets) == 0 {
				t.Fatal("no test data sets")
			}
			for _, set := range sets {
				if err := nt.runDataSet(set, 1e-4); err != nil {
					t.Errorf("%s: %v", filepath.Base(set), err)
				}
			}
		})
		if passed {
			results[nt.op].passed++
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
