package quant

import (
	"bytes"
	"math/rand"
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// matmulGraph is Y = A*B with A [m, k] a graph input and B [k, n] an input too, or a
// constant (weights) when weights is set.
func matmulGraph(t testing.TB, m, k, n int, weights bool) *model.Graph {
	g := &onnx.GraphProto{
		Name:   "mm",
		Input:  []*onnx.ValueInfoProto{floatInfo("a", int64(m), int64(k))},
		Output: []*onnx.ValueInfoProto{floatInfo("y", int64(m), int64(n))},
		Node:   []*onnx.NodeProto{node("MatMul", []string{"a", "b"}, []string{"y"})},
	}
	if weights {
		r := rand.New(rand.NewSource(3))
		g.Initializer = []*onnx.TensorProto{floatInit("b", []int64{int64(k), int64(n)}, randFloats(r, k*n, 0.5)...)}
	} else {
		g.Input = append(g.Input, floatInfo("b", int64(k), int64(n)))
	}
	return load(t, 13, g)
}

func linearLayers(p *Program) []*Layer {
	var ls []*Layer
	for _, l := range p.Layers {
		if l.Kind == KLinear {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestRLCChoice: the lowering checks a product of two witnesses by random linear
// combination when that is cheaper (rows of the result's last dimension), and keeps
// the direct form for fixed weights (no product to save), for a matrix-vector product
// (nothing to save), and in "bits" mode (no commitment to draw the challenge from).
func TestRLCChoice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m, k, n int
		weights bool
		vis     Visibility
		mode    string
		want    int
	}{
		{"activations", 6, 8, 5, false, Fixed, "lookup", 5},
		{"private weights", 6, 8, 5, true, Private, "lookup", 5},
		{"hashed weights", 6, 8, 5, true, Hashed, "lookup", 5},
		{"fixed weights", 6, 8, 5, true, Fixed, "lookup", 0},
		{"matrix-vector", 1, 8, 5, true, Private, "lookup", 0},
		{"bits mode", 6, 8, 5, false, Fixed, "bits", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ParamVis, cfg.RangeCheck = tc.vis, tc.mode
			g := matmulGraph(t, tc.m, tc.k, tc.n, tc.weights)
			p, err := Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ls := linearLayers(p)
			if len(ls) != 1 {
				t.Fatalf("%d linear layers, want 1", len(ls))
			}
			if ls[0].RLC != tc.want {
				w := p.OperandWitness(ls[0])
				d, _ := DirectCost(ls[0], w)
				t.Errorf("RLC = %d, want %d (direct cost %d)", ls[0].RLC, tc.want, d)
			}
		})
	}
}

// TestRLCPlanMatMul: for Y = A*B (m x k by k x n) the plan multiplies B by the
// challenge powers (k(n-1) products), shares one group per row of B (k groups, each
// used by the m rows of A) and multiplies each entry of A once (mk): kn + mk + mn
// instead of mkn, as docs/soundness.md and the bench notes count.
func TestRLCPlanMatMul(t *testing.T) {
	const m, k, n = 6, 8, 5
	p, err := Lower(matmulGraph(t, m, k, n, false), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := linearLayers(p)[0]
	pl := p.PlanRLC(l)
	if pl.Side != 1 || pl.Rows != m || pl.Cols != n || pl.Products != k*(n-1) || len(pl.GUses) != k || len(pl.POther) != m*k {
		t.Fatalf("plan: side %d, %d x %d, %d products, %d groups, %d pairs", pl.Side, pl.Rows, pl.Cols, pl.Products, len(pl.GUses), len(pl.POther))
	}
	c, _ := pl.Cost()
	want := (n - 2) + k*(n-1) + m*k + k + m*(n-1) + m + 1
	if d, _ := DirectCost(l, p.OperandWitness(l)); c != want || d != m*k*n {
		t.Errorf("cost %d (want %d), direct %d (want %d)", c, want, d, m*k*n)
	}
}

// TestRLCEvalUnchanged: the integer reference computes a checked layer's outputs
// exactly as the direct form (the check changes the proof, not the values).
func TestRLCEvalUnchanged(t *testing.T) {
	g := matmulGraph(t, 6, 8, 5, false)
	r := rand.New(rand.NewSource(5))
	p := checkClose(t, g, testConfig(), randomInputs(r, g, 1), 4, 1e-3)
	l := linearLayers(p)[0]
	if l.RLC == 0 {
		t.Fatal("the layer is not checked")
	}
	qi, err := p.QuantizeInputs(randomInputs(r, g, 1))
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	l.RLC = 0
	b, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Outputs[0], b.Outputs[0]) {
		t.Error("a checked layer evaluates differently")
	}
}

// TestRLCEncoding: a layer's RLC is encoded (tag 2 and the field after the others)
// only when set, so programs without it keep their encodings (and model IDs, pinned by
// TestCanonicalEncodingGolden), and the field changes the encoding when set.
func TestRLCEncoding(t *testing.T) {
	enc := func(p *Program) []byte {
		var b bytes.Buffer
		if err := p.WriteCanonical(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	p := withoutGroups()
	base := enc(p)
	p.Layers[0].RLC = 3
	withRLC := enc(p)
	if bytes.Equal(base, withRLC) || len(withRLC) != len(base)+8 {
		t.Fatalf("encoding with RLC has %d bytes, without %d", len(withRLC), len(base))
	}
	// The only other difference is the layer's tag: 1 becomes 2.
	diff := 0
	for i := range base {
		if base[i] != withRLC[i] {
			diff++
			if base[i] != 1 || withRLC[i] != 2 {
				t.Errorf("byte %d: %d became %d", i, base[i], withRLC[i])
			}
		}
		if diff > 0 {
			break
		}
	}
	const want = "0edb2b1b86eaba3923c594546e4a8bd46bb06b5c5f6baaad0d97bceed04aa03f"
	if got := canonicalHash(t, p); got != want {
		t.Errorf("encoding hash with RLC %s, want %s", got, want)
	}
}
