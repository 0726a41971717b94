// Package conformance reads ONNX's per-operator backend tests (a one-node model.onnx
// with test_data_set_*/input_*.pb and output_*.pb) for zkml's conformance suites.
package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// paramInputs lists, per operator, the input positions that carry operator parameters
// rather than data. The node tests feed some of them as graph inputs; they are bound as
// constants (as a user would export them).
var paramInputs = map[string][]int{
	"Reshape":        {1},
	"Gather":         {1},
	"GatherElements": {1},
	"Pad":            {1, 2, 3},
	"Slice":          {1, 2, 3, 4},
	"Squeeze":        {1},
	"Unsqueeze":      {1},
	"Clip":           {1, 2},
	"Expand":         {1},
	// Exponents are constants in exported models (x ** 2, torch.sqrt as x ** 0.5).
	"Pow": {1},
	// Weights, biases and normalization statistics are model constants.
	"BatchNormalization":    {1, 2, 3, 4},
	"InstanceNormalization": {1, 2},
	"Gemm":                  {1, 2},
	"Conv":                  {1, 2},
	"ConvTranspose":         {1, 2},
	// Quantization scales and zero points, and the weights and biases of the quantized
	// linear operators.
	"QuantizeLinear":   {1, 2},
	"DequantizeLinear": {1, 2},
	"QLinearMatMul":    {1, 2, 4, 5, 6, 7},
	"QLinearConv":      {1, 2, 3, 4, 5, 6, 7, 8},
	"MatMulInteger":    {2, 3},
	"ConvInteger":      {1, 2, 3},
}

// intData lists operators whose int32/int64 inputs are data, not parameters.
var intData = map[string]bool{"Equal": true, "Greater": true, "Less": true}

// Config is the fixed-point setting of the conformance runs: finer than the default
// so the tolerance of the comparison stays tight for the node tests' unit-scale random
// data. The hint fuzzer lowers the node tests with it too.
func Config() quant.Config {
	c := quant.DefaultConfig()
	c.Scale, c.ParamScale, c.Bits, c.LookupBits = 10, 10, 28, 14
	return c
}

// Case is one node test.
type Case struct {
	Name  string // the test folder, e.g. test_relu
	Op    string
	Model []byte
	Sets  []*DataSet
}

// DataSet is one test_data_set_N: the parameter inputs to bind as constants, the data
// inputs, and the expected outputs.
type DataSet struct {
	Name    string
	Consts  map[string]*model.Tensor
	Inputs  []*model.Tensor
	Outputs []*model.Tensor
}

// Graph loads the case's model with ds's parameters bound.
func (c *Case) Graph(ds *DataSet) (*model.Graph, error) {
	return model.LoadWithConstants(c.Model, ds.Consts)
}

// Load reads every node test under dir (folders named test_*), sorted by name.
func Load(dir string) ([]*Case, error) {
	dirs, err := filepath.Glob(filepath.Join(dir, "test_*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var cases []*Case
	for _, d := range dirs {
		c, err := loadCase(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(d), err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadCase(dir string) (*Case, error) {
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
	c := &Case{Name: filepath.Base(dir), Op: nodes[0].GetOpType(), Model: data}
	inits := map[string]bool{}
	for _, tp := range m.GetGraph().GetInitializer() {
		inits[tp.GetName()] = true
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	sort.Strings(sets)
	for _, set := range sets {
		ds := &DataSet{Name: filepath.Base(set), Consts: map[string]*model.Tensor{}}
		k := 0
		for _, vi := range m.GetGraph().GetInput() {
			if inits[vi.GetName()] {
				continue
			}
			t, err := readPB(filepath.Join(set, fmt.Sprintf("input_%d.pb", k)))
			k++
			if err != nil {
				return nil, fmt.Errorf("%s input %q: %w", ds.Name, vi.GetName(), err)
			}
			if isParam(nodes[0], vi, inits) {
				ds.Consts[vi.GetName()] = t
			} else {
				ds.Inputs = append(ds.Inputs, t)
			}
		}
		for i := range m.GetGraph().GetOutput() {
			t, err := readPB(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return nil, fmt.Errorf("%s output %d: %w", ds.Name, i, err)
			}
			ds.Outputs = append(ds.Outputs, t)
		}
		c.Sets = append(c.Sets, ds)
	}
	return c, nil
}

// isParam reports whether a graph input feeds a parameter position of the node, or is
// integer-typed (indices, shapes) and so cannot be a quantized activation. The indices
// of a Gather from an initializer (an embedding table) are data: the lookup is proven.
func isParam(node *onnx.NodeProto, vi *onnx.ValueInfoProto, inits map[string]bool) bool {
	if in := node.GetInput(); node.GetOpType() == "Gather" && len(in) == 2 && inits[in[0]] && in[1] == vi.GetName() {
		return false
	}
	switch onnx.TensorProto_DataType(vi.GetType().GetTensorType().GetElemType()) {
	case onnx.TensorProto_INT64, onnx.TensorProto_INT32:
		// Comparisons of integer tensors take them as data.
		return !intData[node.GetOpType()]
	}
	for _, pos := range paramInputs[node.GetOpType()] {
		if pos < len(node.GetInput()) && node.GetInput()[pos] == vi.GetName() {
			return true
		}
	}
	return false
}

func readPB(path string) (*model.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return model.DecodeTensorProto(data)
}
