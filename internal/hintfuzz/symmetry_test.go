package hintfuzz

import (
	"math"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// symmetricCase lowers a one-op model y = op(x) over n inputs at scale s, where the
// direct table would be too big so lowering tabulates the function on x >= 0 only and
// splits the sign with the ReLU gadget (model/quant/lower_sym.go). xs are the inputs.
func symmetricCase(t *testing.T, op string, s int, xs []float64) Case {
	return reducedCase(t, op, s, xs, "|x>=0")
}

// reducedCase is symmetricCase for any range reduction: mark names the reduced table
// ("|x>=0": a half table; "@x/2^": a coarser table).
func reducedCase(t *testing.T, op string, s int, xs []float64, mark string) Case {
	t.Helper()
	info := func(name string) *onnx.ValueInfoProto {
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{
				Dim: []*onnx.TensorShapeProto_Dimension{{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(len(xs))}}}}}}}}
	}
	g := &onnx.GraphProto{Input: []*onnx.ValueInfoProto{info("x")}, Output: []*onnx.ValueInfoProto{info("y")},
		Node: []*onnx.NodeProto{{OpType: op, Name: "act", Input: []string{"x"}, Output: []string{"y"}}}}
	b, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quant.DefaultConfig()
	cfg.Scale, cfg.ParamScale = s, s
	c, err := lower(op, gr, []*model.Tensor{{Shape: []int{len(xs)}, Data: xs}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	split := false
	for _, l := range c.Prog.Layers {
		split = split || (l.Kind == quant.KLookup && strings.Contains(l.Table.Name, mark))
	}
	if !split {
		t.Fatalf("%s at scale %d: lowered without a %q table", op, s, mark)
	}
	return c
}

// signInputs are both signs, zero, the smallest steps and values far in the tails.
var signInputs = []float64{-40, -7.5, -2, -0.5, -1.0 / 4096, 0, 1.0 / 4096, 0.5, 2, 7.5, 40}

// TestForgedSignSplit forges every hint of the sign-split lookups (the ReLU's sign and
// the range argument's limbs and multiplicities, the lookups' queries): a prover that
// claims the wrong sign, or reads the other half of the table, must not prove another
// output.
func TestForgedSignSplit(t *testing.T) {
	quiet(t)
	for _, tc := range []struct {
		op string
		s  int
	}{{"Sigmoid", 12}, {"Tanh", 13}, {"Softplus", 12}} {
		t.Run(tc.op, func(t *testing.T) {
			if testing.Short() && tc.op == "Tanh" {
				t.Skip("the odd case is Sigmoid's too; -short forges one of each symmetry")
			}
			forgeCase(t, symmetricCase(t, tc.op, tc.s, signInputs), tc.op+" sign split")
		})
	}
}

// TestSignSplitProof proves Sigmoid at scale 12 (tabulated on x >= 0 only) with
// Groth16 and checks the proof; the output the other half of the table gives for a
// negative input (sigmoid(|x|) instead of 1 - sigmoid(|x|)) cannot be proven. (A wrong
// sign in the witness is TestForgedSignSplit's.)
func TestSignSplitProof(t *testing.T) {
	quiet(t)
	c := symmetricCase(t, "Sigmoid", 12, signInputs)
	p := c.Prog
	r, err := p.Eval(c.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range signInputs {
		got := math.Ldexp(float64(r.Outputs[0][i]), -p.Scale)
		if e := math.Abs(got - 1/(1+math.Exp(-x))); e > p.Layers[len(p.Layers)-1].MaxError {
			t.Fatalf("sigmoid(%g) = %g: error %g above the reported %g", x, got, e, p.Layers[len(p.Layers)-1].MaxError)
		}
	}
	prove := groth16Prover(t, c)
	if err := prove(r.Outputs[0]); err != nil {
		t.Fatalf("honest proof: %v", err)
	}
	one := int64(1) << p.Scale
	for i, x := range signInputs {
		if x >= 0 {
			continue
		}
		wrong := append([]int64(nil), r.Outputs[0]...)
		wrong[i] = one - r.Outputs[0][i] // the other half: sigmoid(|x|)
		if wrong[i] == r.Outputs[0][i] {
			continue // sigmoid(-1/4096) rounds to 1/2 on both halves
		}
		if err := prove(wrong); err == nil {
			t.Errorf("x = %g: the other half of the table (%d instead of %d) was proven", x, wrong[i], r.Outputs[0][i])
		}
	}
}

// TestForgedCoarseTable forges the hints of a coarser table (Elu at scale 14: its
// direct table would need about 2^17.4 entries, so the input is rescaled by 2^c first)
// and of a half table that is also coarser (Tanh at 14), and Softmax at 14, composed
// with exp split over two small tables, exp(r·2^c)·exp(l), and the range-checked
// division (lower_softmax.go).
func TestForgedCoarseTable(t *testing.T) {
	if testing.Short() {
		t.Skip("circuits of 2^15-entry tables; skipped in -short")
	}
	quiet(t)
	for _, tc := range []struct{ op, mark string }{{"Elu", "@x/2^"}, {"Tanh", "|x>=0@x/2^"}, {"Softmax", "exp(r*2^"}} {
		t.Run(tc.op, func(t *testing.T) {
			forgeCase(t, reducedCase(t, tc.op, 14, signInputs, tc.mark), tc.op+" coarser table")
		})
	}
}

// TestReducedLookupProofs proves, with Groth16, one op per range reduction at a scale
// where it is needed (the direct table would exceed 2^16 entries; Softmax: its exp split
// over two small tables): the proof of the
// honest output verifies, its error against the float function is within the bound
// lowering reports, and an output one step off is not provable.
func TestReducedLookupProofs(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setups of 2^15-entry tables; skipped in -short")
	}
	quiet(t)
	for _, tc := range []struct {
		op, mark string
		s        int
		f        func(float64) float64
	}{
		{"Softplus", "|x>=0", 12, func(x float64) float64 { return math.Log1p(math.Exp(x)) }},
		{"Tanh", "|x>=0@x/2^", 14, math.Tanh},
		{"Elu", "@x/2^", 14, func(x float64) float64 { return math.Max(x, 0) + math.Expm1(math.Min(x, 0)) }},
		{"Softmax", "exp(r*2^", 14, nil}, // over the row signInputs
	} {
		t.Run(tc.op, func(t *testing.T) {
			c := reducedCase(t, tc.op, tc.s, signInputs, tc.mark)
			p := c.Prog
			r, err := p.Eval(c.Inputs)
			if err != nil {
				t.Fatal(err)
			}
			bound := 0.0
			for _, l := range p.Layers {
				bound = math.Max(bound, l.MaxError)
			}
			sum := 0.0
			for _, x := range signInputs {
				sum += math.Exp(x - 40)
			}
			for i, x := range signInputs {
				want := math.Exp(x-40) / sum
				if tc.f != nil {
					want = tc.f(x)
				}
				if e := math.Abs(math.Ldexp(float64(r.Outputs[0][i]), -p.Scale) - want); e > bound {
					t.Fatalf("%s(%g): error %g above the reported %g", tc.op, x, e, bound)
				}
			}
			prove := groth16Prover(t, c)
			if err := prove(r.Outputs[0]); err != nil {
				t.Fatalf("honest proof: %v", err)
			}
			wrong := append([]int64(nil), r.Outputs[0]...)
			wrong[1]++ // x = -7.5
			if prove(wrong) == nil {
				t.Errorf("an output one step off was proven")
			}
			t.Logf("%s at scale %d: bound %.3g", tc.op, tc.s, bound)
		})
	}
}

// forgeCase compiles c (R1CS) and forges every hint call (forgeAll); some perturbation
// must have been tried.
func forgeCase(t *testing.T, c Case, what string) {
	t.Helper()
	tg, err := Compile(c, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	tl := forgeAll(t, tg)
	if tl.tried == 0 {
		t.Fatal("no perturbation was tried")
	}
	report(t, what, tl)
}

// groth16Prover compiles c's program, runs the development setup, and returns a
// function that proves c's inputs with the claimed single output outs and verifies
// the proof: nil only for a proof that verifies.
func groth16Prover(t *testing.T, c Case) func(outs []int64) error {
	t.Helper()
	p := c.Prog
	ccs, stats, err := circuits.Compile(p, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d constraints (Groth16)", c.Name, stats.Constraints)
	pk, vk, err := prover.SetupKeys(ccs, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	return func(outs []int64) error {
		a, err := circuits.Assign(p, c.Inputs, [][]int64{outs})
		if err != nil {
			t.Fatal(err)
		}
		w, err := frontend.NewWitness(a, circuits.Field)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := groth16.Prove(ccs, pk.(groth16.ProvingKey), w)
		if err != nil {
			return err
		}
		pub, err := w.Public()
		if err != nil {
			t.Fatal(err)
		}
		return groth16.Verify(proof, vk.(groth16.VerifyingKey), pub)
	}
}
