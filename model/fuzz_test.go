package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// addFiles seeds f with every file matching pattern.
func addFiles(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(pattern)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzLoad checks that Load never panics, fails only with ErrInvalidModel or
// ErrUnsupportedOp, and that a model it accepts evaluates on zero inputs.
func FuzzLoad(f *testing.F) {
	addFiles(f, filepath.Join(modelsDir, "*", "network.onnx"))
	addFiles(f, filepath.Join("testdata", "relu", "network.onnx"))
	for _, op := range []string{"test_conv_with_strides_and_asymmetric_padding", "test_slice_neg_steps",
		"test_maxpool_2d_ceil", "test_gather_negative_indices", "test_constant_pad", "test_softmax_axis_1"} {
		addFiles(f, filepath.Join("../testdata/onnx-node", op, "model.onnx"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidModel) && !errors.Is(err, ErrUnsupportedOp) {
				t.Fatalf("error %v wraps neither ErrInvalidModel nor ErrUnsupportedOp", err)
			}
			return
		}
		inputs := make([]*Tensor, len(g.Inputs))
		for i, in := range g.Inputs {
			inputs[i] = NewTensor(in.Shape...)
		}
		out, err := g.Eval(inputs)
		if err != nil {
			t.Fatalf("Load accepted the model but Eval on zero inputs failed: %v", err)
		}
		for i, o := range out {
			if o == nil || !sameShape(o.Shape, g.Outputs[i].Shape) {
				t.Fatalf("output %d is %v, Load inferred shape %v", i, o, g.Outputs[i].Shape)
			}
		}
	})
}

// fuzzGraphs are the input signatures FuzzParseInput parses against.
var fuzzGraphs = []*Graph{
	{Inputs: []Value{{Name: "x", Shape: []int{1, 3}}}},
	{Inputs: []Value{{Name: "x", Shape: []int{1, 3}}, {Name: "y", Shape: []int{2}}}},
	{Inputs: []Value{{Name: "x", Shape: []int{}}}},
	{Inputs: []Value{{Name: "img", Shape: []int{1, 1, 28, 28}}}},
}

// FuzzParseInput checks that ParseInput never panics, fails only with ErrBadInput and
// returns finite tensors of the declared shapes.
func FuzzParseInput(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(modelsDir, "*", "input.json"))
	paths = append(paths, filepath.Join("testdata", "relu", "input.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(0))
		}
	}
	f.Add([]byte(`{"input_data": [[1, 2.5, -3], [4, 5]], "input_shapes": [[3], [2]]}`), uint8(1))
	f.Add([]byte(`{"input_data": [[7]]}`), uint8(2))
	f.Add([]byte(`{"input_data": [["NaN", null, true, [1]]], "output_data": {"a": [1e999]}}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		g := fuzzGraphs[int(which)%len(fuzzGraphs)]
		got, err := ParseInput(data, g)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v does not wrap ErrBadInput", err)
			}
			return
		}
		if len(got) != len(g.Inputs) {
			t.Fatalf("got %d tensors for %d inputs", len(got), len(g.Inputs))
		}
		for i, in := range g.Inputs {
			if !sameShape(got[i].Shape, in.Shape) || len(got[i].Data) != numel(in.Shape) {
				t.Fatalf("tensor %d has shape %v and %d values, want %v", i, got[i].Shape, len(got[i].Data), in.Shape)
			}
			if err := got[i].CheckFinite(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// byteSource hands out fuzz bytes as small numbers (zero once exhausted).
type byteSource []byte

func (b *byteSource) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := int((*b)[0])
	*b = (*b)[1:]
	return v
}

// small returns a number in [lo, hi].
func (b *byteSource) small(lo, hi int) int { return lo + b.next()%(hi-lo+1) }

func (b *byteSource) ints(n, lo, hi int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(b.small(lo, hi))
	}
	return out
}

// fuzzOps are the operators FuzzNode builds, with how many extra inputs each takes.
var fuzzOps = []struct {
	op     string
	extras int
}{
	{"Conv", 2}, {"MaxPool", 0}, {"AveragePool", 0}, {"GlobalAveragePool", 0}, {"Gemm", 2},
	{"MatMul", 1}, {"Add", 1}, {"Softmax", 0}, {"BatchNormalization", 4}, {"Reshape", 1},
	{"Flatten", 0}, {"Squeeze", 1}, {"Unsqueeze", 1}, {"Transpose", 0}, {"Gather", 1},
	{"Pad", 2}, {"Concat", 1}, {"Slice", 4}, {"Cast", 0}, {"Shape", 0}, {"Relu", 0},
	{"QuantizeLinear", 2}, {"DequantizeLinear", 2}, {"MatMulInteger", 3}, {"ConvInteger", 3},
	{"QLinearMatMul", 7}, {"QLinearConv", 8}, {"ConvTranspose", 2}, {"GatherElements", 1}, {"Where", 2},
}

// FuzzNode builds one-node models of supported operators with fuzzed shapes, attributes
// and constant parameters: Load must never panic and must fail only with the model errors,
// and an accepted model must evaluate.
func FuzzNode(f *testing.F) {
	f.Add(uint8(0), uint8(13), []byte{1, 3, 5, 5}, []byte{2, 3, 3, 3, 1, 2, 1, 1})
	f.Add(uint8(1), uint8(11), []byte{1, 2, 4, 4}, []byte{2, 2, 2, 1, 1, 0, 1})
	f.Add(uint8(17), uint8(13), []byte{2, 3, 4}, []byte{1, 255, 0, 1, 254})
	f.Add(uint8(9), uint8(13), []byte{2, 3}, []byte{2, 255, 3})
	f.Add(uint8(21), uint8(13), []byte{2, 3}, []byte{1, 0, 1, 0, 1, 1, 0, 0})
	f.Add(uint8(26), uint8(13), []byte{1, 2, 4, 4}, []byte{1, 1, 1, 0, 1, 1, 0, 0, 1, 4, 2, 2, 1, 1, 2, 2})
	f.Fuzz(func(t *testing.T, opIdx, opset uint8, dimBytes, params []byte) {
		spec := fuzzOps[int(opIdx)%len(fuzzOps)]
		if len(dimBytes) > 5 {
			dimBytes = dimBytes[:5]
		}
		dims := make([]int64, len(dimBytes))
		for i, d := range dimBytes {
			dims[i] = int64(d%6 + 1)
		}
		src := byteSource(params)
		var inits []*onnx.TensorProto
		inputs := []string{"x"}
		for k := 0; k < spec.extras; k++ {
			name := fmt.Sprintf("p%d", k)
			if src.next()%8 == 0 {
				inputs = append(inputs, "") // omitted optional input
				continue
			}
			rank := src.small(0, 4)
			pd := src.ints(rank, 0, 5)
			n := 1
			for _, d := range pd {
				n *= int(d)
			}
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = int64(src.small(0, 255)) - 128
			}
			if src.next()%2 == 0 {
				inits = append(inits, int64TensorProto(name, pd, vals...))
			} else {
				fv := make([]float32, n)
				for i, v := range vals {
					fv[i] = float32(v) / 4
				}
				inits = append(inits, floatTensorProto(name, pd, fv...))
			}
			inputs = append(inputs, name)
		}
		var attrs []*onnx.AttributeProto
		for _, name := range []string{"kernel_shape", "strides", "pads", "dilations", "perm", "axes", "output_padding", "output_shape"} {
			if src.next()%3 == 0 {
				attrs = append(attrs, intsAttr(name, src.ints(src.small(0, 4), -2, 5)...))
			}
		}
		for _, name := range []string{"group", "axis", "transA", "transB", "ceil_mode", "count_include_pad", "to", "allowzero", "start", "end"} {
			if src.next()%3 == 0 {
				attrs = append(attrs, intAttr(name, int64(src.small(0, 12))-3))
			}
		}
		if src.next()%4 == 0 {
			pads := []string{"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "bogus"}
			attrs = append(attrs, &onnx.AttributeProto{Name: "auto_pad", Type: onnx.AttributeProto_STRING, S: []byte(pads[src.next()%len(pads)])})
		}
		data := modelBytes(t, int64(opset%20)+1, &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node(spec.op, inputs, []string{"y"}, attrs...)},
			Initializer: inits,
			Input:       []*onnx.ValueInfoProto{floatInfo("x", dims...)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y")},
		})
		g, err := Load(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidModel) && !errors.Is(err, ErrUnsupportedOp) {
				t.Fatalf("error %v wraps neither ErrInvalidModel nor ErrUnsupportedOp", err)
			}
			return
		}
		in := make([]*Tensor, len(g.Inputs))
		for i, v := range g.Inputs {
			in[i] = NewTensor(v.Shape...)
			for j := range in[i].Data {
				in[i].Data[j] = float64(j%7) - 3
			}
		}
		out, err := g.Eval(in)
		if err != nil {
			t.Fatalf("Eval: %v", err)
		}
		for i, o := range out {
			if !sameShape(o.Shape, g.Outputs[i].Shape) || len(o.Data) != numel(o.Shape) {
				t.Fatalf("output %d has shape %v (%d values), Load inferred %v", i, o.Shape, len(o.Data), g.Outputs[i].Shape)
			}
		}
	})
}
