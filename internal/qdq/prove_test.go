package qdq

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestProveQDQ lowers the int8 QDQ versions of the example models and checks that
//   - every Conv, Gemm and MatMul is proven as integer arithmetic (a QLinear
//     requantization, no fixed-point rescale: nothing is re-quantized from float);
//   - the circuit's outputs match the float reference of the QDQ graph within one
//     output quantization step (the reference computes in float32, the circuit in
//     exact integers, so they can differ on a rounding tie);
//   - the Groth16 proof verifies.
func TestProveQDQ(t *testing.T) {
	if testing.Short() {
		t.Skip("proves several models; skipped in -short")
	}
	for _, f := range fixtures(t) {
		for pc, data := range quantizeBoth(t, f, f.input, negate(f.input)) {
			t.Run(fmt.Sprintf("%s/per_channel=%v", f.name, pc), func(t *testing.T) {
				g, err := model.Load(data)
				if err != nil {
					t.Fatal(err)
				}
				p, err := quant.Lower(g, quant.DefaultConfig())
				if err != nil {
					t.Fatal(err)
				}
				linear, requant := 0, 0
				for _, n := range g.Nodes {
					if n.Op == "Conv" || n.Op == "Gemm" || n.Op == "MatMul" {
						linear++
					}
				}
				for _, l := range p.Layers {
					if l.Kind == quant.KRescale {
						t.Errorf("layer %s (%s) rescales fixed point: the QDQ model was re-quantized", l.Name, l.Op)
					}
					if l.Kind == quant.KRequant && strings.HasPrefix(l.Op, "QLinear") {
						requant++
					}
				}
				if requant != linear {
					t.Errorf("%d of %d linear nodes proven as integer arithmetic", requant, linear)
				}
				if p.InputQuant == nil || p.OutputQuant == nil {
					t.Fatalf("model input and output should be quantized outside the circuit: %+v %+v", p.InputQuant, p.OutputQuant)
				}
				for _, in := range [][]*model.Tensor{f.input, negate(f.input)} {
					want, err := g.Eval(in)
					if err != nil {
						t.Fatal(err)
					}
					w, err := prover.NewWitness(p, in)
					if err != nil {
						t.Fatal(err)
					}
					for i, got := range w.Outputs {
						step := p.OutputQuant[i].Scale[0]
						exact := 0
						for j, v := range want[i].Data {
							d := math.Abs(got.Data[j] - v)
							if d > step*1.001 {
								t.Fatalf("output %d element %d = %v, float reference %v (step %v)", i, j, got.Data[j], v, step)
							}
							if d < step/2 {
								exact++
							}
						}
						t.Logf("output %d: %d of %d elements equal to the float reference", i, exact, len(want[i].Data))
					}
				}
				w, err := prover.NewWitness(p, f.input)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := prover.ProveProgram(p, circuits.Groth16, w); err != nil {
					t.Fatalf("prove: %v", err)
				}
			})
		}
	}
}

func negate(in []*model.Tensor) []*model.Tensor {
	out := make([]*model.Tensor, len(in))
	for i, x := range in {
		out[i] = x.Clone()
		for k := range out[i].Data {
			out[i].Data[k] = -out[i].Data[k]
		}
	}
	return out
}

// TestProveQDQResidual proves an int8 residual block (MatMul, Add, Relu, and a Softmax
// left in float): the Add is proven as a QLinearAdd requantization.
func TestProveQDQResidual(t *testing.T) {
	if testing.Short() {
		t.Skip("proves a model; skipped in -short")
	}
	gp := &onnx.GraphProto{
		Name:   "residual",
		Input:  []*onnx.ValueInfoProto{floatValue("X", 1, 4)},
		Output: []*onnx.ValueInfoProto{floatValue("y", 1, 4), floatValue("s", 1, 4)},
		Initializer: []*onnx.TensorProto{
			floatInit("W", []int64{4, 4}, 0.5, -1, 0.25, 2, 0.1, -0.3, -0.7, 0.9, 1.1, 0, 0.4, -0.2, 0.3, 0.8, -0.6, 0.05),
		},
		Node: []*onnx.NodeProto{
			{OpType: "MatMul", Name: "mm", Input: []string{"X", "W"}, Output: []string{"m"}},
			{OpType: "Add", Name: "add", Input: []string{"m", "X"}, Output: []string{"a"}},
			{OpType: "Relu", Name: "relu", Input: []string{"a"}, Output: []string{"y"}},
			{OpType: "Softmax", Name: "sm", Input: []string{"y"}, Output: []string{"s"}},
		},
	}
	float, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}, Graph: gp})
	if err != nil {
		t.Fatal(err)
	}
	x := []*model.Tensor{{Shape: []int{1, 4}, Data: []float64{1, -2, 0.5, 3}}}
	q, err := Quantize(float, [][]*model.Tensor{x, negate(x)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(q)
	if err != nil {
		t.Fatal(err)
	}
	p, err := quant.Lower(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, l := range p.Layers {
		ops[l.Op] = true
	}
	if !ops["QLinearAdd"] || !ops["QLinearMatMul"] {
		t.Fatalf("layers %v lack QLinearAdd or QLinearMatMul", ops)
	}
	w, err := prover.NewWitness(p, x)
	if err != nil {
		t.Fatal(err)
	}
	want, err := g.Eval(x)
	if err != nil {
		t.Fatal(err)
	}
	for j, v := range want[0].Data {
		if d := math.Abs(w.Outputs[0].Data[j] - v); d > p.OutputQuant[0].Scale[0]*1.001 {
			t.Errorf("y[%d] = %v, float reference %v", j, w.Outputs[0].Data[j], v)
		}
	}
	if _, err := prover.ProveProgram(p, circuits.Groth16, w); err != nil {
		t.Fatalf("prove: %v", err)
	}
}
