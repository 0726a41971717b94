package circuits

import (
	"math/big"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/consensys/gnark/frontend"

	"github.com/zkml/zkml/internal/onnxtest"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// int32Model is y = DequantizeLinear(x, 2^-16) over an int32 input x of shape [1, 2]: an
// integer-typed input, range-checked to its ONNX type's 32 bits, not to --bits.
func int32Model(t *testing.T) *model.Graph {
	t.Helper()
	g := &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{onnxtest.Info("x", onnx.TensorProto_INT32, 1, 2)},
		Output: []*onnx.ValueInfoProto{onnxtest.Info("y", onnx.TensorProto_FLOAT, 1, 2)},
		Initializer: []*onnx.TensorProto{
			onnxtest.Floats("s", nil, 1.0/65536),
			onnxtest.Int32s("z", onnx.TensorProto_INT32, nil, 0),
		},
		Node: []*onnx.NodeProto{onnxtest.Node("DequantizeLinear", "dq", []string{"x", "s", "z"}, []string{"y"})},
	}
	b, err := onnxtest.Marshal(g, 13)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// TestHashedInputsDoNotCollide is the audit's exploit 2: the input commitment packed
// every value at --bits (24) although int32 inputs are only checked to 32 bits, so
// x = (2^24-5, 2) and x' = (-5, 3) packed to the same field element: a proof about x
// verified as a proof about x'. Packing now uses the width the values are checked to,
// and the commitment gadget range-checks every packed value itself.
func TestHashedInputsDoNotCollide(t *testing.T) {
	cfg := quant.DefaultConfig()
	cfg.InputVis, cfg.OutputVis = quant.Hashed, quant.Private
	p, err := quant.Lower(int32Model(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := []int64{1<<24 - 5, 2}
	xs := []int64{-5, 3}
	l := NewLayout(p)
	if w := l.Hashes[0].Width; w < 32 {
		t.Fatalf("int32 inputs committed at %d bits", w)
	}
	for _, sys := range []System{Groth16, Plonk} {
		ccs, _, err := Compile(p, sys)
		if err != nil {
			t.Fatal(err)
		}
		solve := func(in []int64, commitmentOf []int64) error {
			t.Helper()
			r, err := p.Eval([][]int64{in})
			if err != nil {
				t.Fatal(err)
			}
			a, err := Assign(p, [][]int64{in}, r.Outputs)
			if err != nil {
				return err
			}
			c, err := Commitments(p, [][]int64{commitmentOf}, nil)
			if err != nil {
				return err
			}
			a.Public[l.Hashes[0].Offset] = c[0]
			w, err := frontend.NewWitness(a, Field)
			if err != nil {
				t.Fatal(err)
			}
			return ccs.IsSolved(w)
		}
		// A valid int32 input of 2^23 or more is provable.
		if err := solve(x, x); err != nil {
			t.Fatalf("%s: honest witness for x = %v: %v", sys, x, err)
		}
		// x' under x's commitment, and x under x''s, do not solve.
		if err := solve(xs, x); err == nil {
			t.Fatalf("%s: x' = %v proven under the commitment of x = %v", sys, xs, x)
		}
		if err := solve(x, xs); err == nil {
			t.Fatalf("%s: x = %v proven under the commitment of x' = %v", sys, x, xs)
		}
	}
	c, _ := Commitments(p, [][]int64{x}, nil)
	cs, _ := Commitments(p, [][]int64{xs}, nil)
	if c[0].Cmp(cs[0]) == 0 {
		t.Fatal("x and x' have the same commitment")
	}
}

// TestCommitGadgetRangeChecks forges a witness whose values do not fit the packing width
// while their packed field elements equal an honest witness's (a carry into the next
// slot): the gadget's own range checks reject it, whatever the static bounds say.
func TestCommitGadgetRangeChecks(t *testing.T) {
	const w = 8
	honest := []int64{-5, 3}
	// (2^w - 5) packs like -5 with a carry of one into the next slot: 3 - 1 = 2.
	forged := []int64{1<<w - 5, 2}
	pack := func(v []int64) *big.Int {
		half := int64(1) << (w - 1)
		return big.NewInt((v[1]+half)<<w + v[0] + half)
	}
	if pack(honest).Cmp(pack(forged)) != 0 {
		t.Fatal("test vectors do not collide in the packing")
	}
	want, err := Commit(TagInputs, w, honest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Commit(TagInputs, w, forged); err == nil {
		t.Fatal("Commit accepted a value wider than its width")
	}
	for _, mode := range []string{"", "bits"} {
		for _, sys := range []System{Groth16, Plonk} {
			c := &commitCircuit{X: make([]frontend.Variable, 2), mode: mode}
			ccs, err := compileWith(map[System]string{Groth16: "r1cs", Plonk: "plonk"}[sys], c)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				x  []int64
				ok bool
			}{{honest, true}, {forged, false}} {
				a := &commitCircuit{X: []frontend.Variable{tc.x[0], tc.x[1]}, C: want}
				wit, err := frontend.NewWitness(a, Field)
				if err != nil {
					t.Fatal(err)
				}
				if err := ccs.IsSolved(wit); (err == nil) != tc.ok {
					t.Fatalf("%s mode %q, x = %v: solved=%v, want %v", sys, mode, tc.x, err == nil, tc.ok)
				}
			}
		}
	}
}

// commitCircuit asserts C = commitVars(TagInputs, 8, X) with nothing else checking X.
type commitCircuit struct {
	X    []frontend.Variable
	C    frontend.Variable `gnark:",public"`
	mode string
}

func (c *commitCircuit) Define(api frontend.API) error {
	got, err := commitVars(newArithMode(api, nil, c.mode), TagInputs, 8, c.X, nil)
	if err != nil {
		return err
	}
	api.AssertIsEqual(got, c.C)
	return nil
}

// TestModelBinding checks which public inputs identify a model in each params visibility.
func TestModelBinding(t *testing.T) {
	g, _ := loadShared(t, "1l_mlp")
	for _, vis := range []quant.Visibility{quant.Fixed, quant.Private, quant.Public, quant.Hashed} {
		cfg := quant.DefaultConfig()
		cfg.ParamVis = vis
		p, err := quant.Lower(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ModelBinding(p)
		if err != nil {
			t.Fatal(err)
		}
		l := NewLayout(p)
		switch vis {
		case quant.Fixed, quant.Private:
			if b != nil {
				t.Errorf("%s params: binding %+v, want none", vis, b)
			}
		case quant.Hashed:
			c, ok, err := ParamsCommitment(p)
			if err != nil || !ok || b == nil || b.What != BindsParamsCommitment || len(b.Values) != 1 || b.Values[0].Cmp(c) != 0 ||
				b.Offset != l.Hashes[len(l.Hashes)-1].Offset {
				t.Errorf("hashed params: binding %+v, commitment %v %v %v", b, c, ok, err)
			}
		case quant.Public:
			n := 0
			for i, s := range l.Params {
				if s != nil {
					if n == 0 && s.Offset != b.Offset {
						t.Errorf("public params start at %d, binding at %d", s.Offset, b.Offset)
					}
					for j, v := range p.Params[i].Data {
						if b.Values[n+j].Cmp(FieldElement(v)) != 0 {
							t.Fatalf("public param %d: %v, want %d", n+j, b.Values[n+j], v)
						}
					}
					n += s.Len
				}
			}
			if b == nil || b.What != BindsPublicParams || n == 0 || len(b.Values) != n {
				t.Errorf("public params: binding %+v for %d params", b, n)
			}
		}
	}
	if FieldElement(-1).Cmp(new(big.Int).Sub(Field, big.NewInt(1))) != 0 {
		t.Error("FieldElement(-1) is not r-1")
	}
}
