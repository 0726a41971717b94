package conformance

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// lrnModel is a one-node LRN model written by onnxgen on an [1, C, H, W] input.
func lrnModel(t *testing.T, dims []int64, attrs ...*onnx.AttributeProto) []byte {
	t.Helper()
	b := onnxgen.Seeded("lrn")
	y := b.Node("LRN", []string{"x"}, attrs...)
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", dims...)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(y)}, 8, 13)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLRNWithinReportedBound lowers LRN with several attribute sets (AlexNet's, ONNX's
// node tests', even and odd sizes, a size past the channel count) and checks every
// output of the integer program against the float LRN of the fixed-point input within
// the bound the lowering reports: |x|*MaxError + half a step.
func TestLRNWithinReportedBound(t *testing.T) {
	cfg := Config()
	for _, c := range []struct {
		name  string
		dims  []int64
		attrs []*onnx.AttributeProto
		sd    float64
	}{
		{"alexnet", []int64{1, 6, 3, 3}, []*onnx.AttributeProto{onnxgen.Int("size", 5), onnxgen.Float("alpha", 1e-4), onnxgen.Float("beta", 0.75), onnxgen.Float("bias", 2)}, 4},
		{"onnx test_lrn", []int64{1, 5, 2, 2}, []*onnx.AttributeProto{onnxgen.Int("size", 3), onnxgen.Float("alpha", 0.0002), onnxgen.Float("beta", 0.5), onnxgen.Float("bias", 2)}, 1},
		{"defaults", []int64{2, 4, 3}, []*onnx.AttributeProto{onnxgen.Int("size", 3)}, 2},
		{"strong even size", []int64{1, 7, 2, 2}, []*onnx.AttributeProto{onnxgen.Int("size", 4), onnxgen.Float("alpha", 0.5), onnxgen.Float("beta", 0.75), onnxgen.Float("bias", 1)}, 1},
		{"size over channels", []int64{1, 3, 4}, []*onnx.AttributeProto{onnxgen.Int("size", 9), onnxgen.Float("alpha", 0.9), onnxgen.Float("beta", 1), onnxgen.Float("bias", 0.5)}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := model.Load(lrnModel(t, c.dims, c.attrs...))
			if err != nil {
				t.Fatal(err)
			}
			p, err := quant.Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			epsF, ok := quant.LRNFactorError(p, "LRN_1")
			if !ok || epsF <= 0 || epsF > math.Ldexp(1, -cfg.Scale) {
				t.Fatalf("factor error bound %g (found %v), want in (0, 2^-%d]", epsF, ok, cfg.Scale)
			}
			r := rand.New(rand.NewSource(16))
			worst := 0.0
			for range 5 {
				x := model.NewTensor(g.Inputs[0].Shape...)
				for i := range x.Data {
					// the fixed-point input: the float reference reads the same values
					x.Data[i] = math.Round(math.Ldexp(r.NormFloat64()*c.sd, cfg.Scale)) / math.Ldexp(1, cfg.Scale)
				}
				want, err := g.Eval([]*model.Tensor{x})
				if err != nil {
					t.Fatal(err)
				}
				q, err := p.QuantizeInputs([]*model.Tensor{x})
				if err != nil {
					t.Fatal(err)
				}
				res, err := p.Eval(q)
				if err != nil {
					t.Fatal(err)
				}
				got := p.Dequantize(res.Outputs)[0]
				for i, w := range want[0].Data {
					bound := math.Abs(x.Data[i])*epsF + math.Ldexp(1, -cfg.Scale-1) + 1e-12
					d := math.Abs(got.Data[i] - w)
					if d > bound {
						t.Fatalf("element %d: %v, want %v (|diff| %.3g over the reported bound %.3g)", i, got.Data[i], w, d, bound)
					}
					worst = math.Max(worst, d/bound)
				}
			}
			t.Logf("factor error bound %.3g; worst |diff| %.2f of the bound", epsF, worst)
		})
	}
}

// TestLRNProofSound proves a tiny LRN model with Groth16 and checks that the circuit
// rejects a changed output element, and that a square sum past the table (an input the
// lowering cannot map) fails instead of being clamped.
func TestLRNProofSound(t *testing.T) {
	m := loadSound(t, lrnModel(t, []int64{1, 4, 2, 2}, onnxgen.Int("size", 3), onnxgen.Float("alpha", 1e-2), onnxgen.Float("beta", 0.75), onnxgen.Float("bias", 1)), Config())
	r := rand.New(rand.NewSource(3))
	x := model.NewTensor(m.G.Inputs[0].Shape...)
	for i := range x.Data {
		x.Data[i] = r.NormFloat64()
	}
	m.Prove(t, "lrn", "LRN", []*model.Tensor{x}, m.Float(x))
	t.Logf("LRN on %d elements: %d constraints (Groth16)", len(x.Data), m.Compile().Constraints)
	q, out := m.Int(x)
	if err := m.Solve(q, out); err != nil {
		t.Fatalf("the honest LRN does not solve: %v", err)
	}
	for _, i := range []int{0, 7, len(x.Data) - 1} {
		if m.Solves(q, offByOne(out, 0, i, 1)) {
			t.Errorf("output element %d changed by one step solves", i)
		}
	}
	// A square sum beyond the table: the integer evaluator refuses it, and no output
	// (here the honest-looking clamp, the edge factor times x) solves.
	big := x.Clone()
	for i := range big.Data {
		big.Data[i] = 60
	}
	qb, _, err := m.TryInt(big)
	if err == nil || !strings.Contains(err.Error(), "LRN") {
		t.Errorf("square sum past the table: integer eval err = %v, want an error naming LRN", err)
	}
	edge := make([]int64, len(big.Data))
	for i := range edge {
		edge[i] = int64(math.Round(math.Ldexp(60*math.Pow(1+1e-2/3*3*3600, -0.75), m.cfg.Scale)))
	}
	if m.Solves(qb, [][]int64{edge}) {
		t.Error("a square sum past the table solves")
	}
}
