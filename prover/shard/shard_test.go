package shard

import (
	"errors"
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// residualNet is a small CNN with a skip connection: conv-relu (a), conv-relu (b),
// a+b, conv 1x1, relu, global average pool, flatten.
func residualNet(t testing.TB) []byte {
	t.Helper()
	b := onnxgen.Seeded("shard_residual")
	conv := func(in string, cin, cout, k, pad int64) string {
		w := b.Init("w", onnxgen.HeScale(int(cin*k*k)), cout, cin, k, k)
		bias := b.Init("b", 0.05, cout)
		y := b.Node("Conv", []string{in, w, bias}, onnxgen.Ints("kernel_shape", k, k), onnxgen.Ints("pads", pad, pad, pad, pad))
		return b.Node("Relu", []string{y})
	}
	a := conv("input", 2, 4, 3, 1)
	c := conv(a, 4, 4, 3, 1)
	x := b.Node("Add", []string{a, c})
	x = conv(x, 4, 3, 1, 0)
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, onnxgen.Int("axis", 1))
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, 2, 5, 5)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 3)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lower(t testing.TB, m []byte, cfg quant.Config) *quant.Program {
	t.Helper()
	_, p, err := prover.Build(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inputs quantizes a deterministic float input (seed varies it).
func inputs(t testing.TB, p *quant.Program, seed int) [][]int64 {
	t.Helper()
	var ts []*model.Tensor
	for _, id := range p.Inputs {
		x := model.NewTensor(p.Values[id].Shape...)
		for i := range x.Data {
			x.Data[i] = float64((i*7+seed*13)%17) / 17
		}
		ts = append(ts, x)
	}
	qi, err := p.QuantizeInputs(ts)
	if err != nil {
		t.Fatal(err)
	}
	return qi
}

// allowed lists the cuts Split accepts.
func allowed(p *quant.Program) []int {
	lv := analyze(p)
	var cuts []int
	for c := 1; c < len(p.Layers); c++ {
		if cutAllowed(p, lv, c) == "" {
			cuts = append(cuts, c)
		}
	}
	return cuts
}

// residualCuts picks two cuts of the residual net: the first where a skip value
// crosses (more than one value live), the second a later allowed cut.
func residualCuts(t testing.TB, p *quant.Program) []int {
	t.Helper()
	lv := analyze(p)
	for _, c := range allowed(p) {
		if len(lv.live(c)) < 2 {
			continue
		}
		for _, d := range allowed(p) {
			if d > c+1 {
				return []int{c, d}
			}
		}
	}
	t.Fatal("no cut carries a skip connection")
	return nil
}

// chainEval runs the segments one after another, each on the previous one's outputs
// (its own programs, not the whole program's values), and returns the last outputs.
func chainEval(t testing.TB, pl *Plan, p *quant.Program, qi [][]int64) [][]int64 {
	t.Helper()
	vals := map[int][]int64{}
	for j, id := range p.Inputs {
		vals[id] = qi[j]
	}
	var out [][]int64
	for _, s := range pl.Segments {
		var in [][]int64
		for _, id := range s.In {
			in = append(in, vals[id])
		}
		r, err := s.Program.Eval(in)
		if err != nil {
			t.Fatalf("segment %d: %v", s.Index, err)
		}
		for j, id := range s.Out {
			vals[id] = r.Outputs[j]
		}
		out = r.Outputs
	}
	return out
}

func TestSplitResidual(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	pl, err := Split(p, residualCuts(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Segments) != 3 || len(pl.Segments[1].In) < 2 {
		t.Fatalf("want 3 segments, the second carrying the skip value: %+v", pl.Segments)
	}
	qi := inputs(t, p, 1)
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if got := chainEval(t, pl, p, qi); !slices.EqualFunc(got, want.Outputs, slices.Equal) {
		t.Fatalf("segments compute %v, the whole program %v", got, want.Outputs)
	}
	// Boundary inputs are range-checked to their bounds in the segment program.
	s := pl.Segments[1].Program
	if s.InputVis != quant.Boundary || s.Layers[0].Kind != quant.KRangeChk || s.Layers[0].In[0] != s.Inputs[0] {
		t.Fatalf("segment 1 does not range-check its boundary inputs first: %+v", s.Layers[0])
	}
	// The whole program's model ID is unchanged by splitting; the plan ID depends on
	// the cuts.
	id, _ := prover.ModelID(p)
	other, err := Split(p, allowed(p)[:1])
	if err != nil {
		t.Fatal(err)
	}
	if pl.ModelID != id || other.ModelID != id || other.ID == pl.ID {
		t.Fatal("model ID or plan ID wrong")
	}
	refused := 0
	for c := 1; c < len(p.Layers); c++ {
		if p.Layers[c-1].Kind == quant.KLinear {
			if _, err := Split(p, []int{c}); !errors.Is(err, ErrBadCut) {
				t.Fatalf("cut %d after linear layer %s: got %v, want ErrBadCut", c, p.Layers[c-1].Name, err)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no linear layer")
	}
}

func TestSplitBudgetSqueezeNet(t *testing.T) {
	m, _, _, err := onnxgen.SqueezeNet{Size: 32, Div: 16, Classes: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := lower(t, m, quant.DefaultConfig())
	whole, err := bench.EstimateProgram(p, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("whole: %d constraints, %d MiB", whole.Constraints, whole.MemoryBytes>>20)
	// Boundary commitments cost constraints of their own, and the first convolution is
	// most of this tiny network (a budget below it fails, tested below): 2 segments.
	budget := bench.Limits{MaxConstraints: whole.Constraints * 3 / 4}
	pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, budget)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Segments) < 2 {
		t.Fatalf("%d segments, want at least 2", len(pl.Segments))
	}
	for _, s := range pl.Segments {
		e, err := bench.EstimateProgram(s.Program, circuits.Groth16)
		if err != nil {
			t.Fatal(err)
		}
		if budget.Check(e) != nil {
			t.Fatalf("segment %d over budget: %v", s.Index, budget.Check(e))
		}
		t.Logf("segment %d: layers [%d, %d), %d in, %d out, %d constraints, %d MiB", s.Index, s.First, s.End, len(s.In), len(s.Out), e.Constraints, e.MemoryBytes>>20)
	}
	qi := inputs(t, p, 2)
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if got := chainEval(t, pl, p, qi); !slices.EqualFunc(got, want.Outputs, slices.Equal) {
		t.Fatal("segments compute another output than the whole program")
	}
	if _, err := SplitBudget(p, []circuits.System{circuits.Groth16}, bench.Limits{MaxConstraints: 100}); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("a budget no layer fits: got %v", err)
	}
}

// TestSplitSqueezeNet cuts a tiny SqueezeNet at every fourth allowed cut (inside fire
// modules too, where the squeeze output crosses to the second expand convolution):
// the segments, run one after another, compute the whole program's outputs.
func TestSplitSqueezeNet(t *testing.T) {
	m, _, _, err := onnxgen.SqueezeNet{Size: 32, Div: 16, Classes: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := lower(t, m, quant.DefaultConfig())
	var cuts []int
	for i, c := range allowed(p) {
		if i%4 == 3 {
			cuts = append(cuts, c)
		}
	}
	pl, err := Split(p, cuts)
	if err != nil {
		t.Fatal(err)
	}
	crossing := 0
	for _, s := range pl.Segments[1:] {
		crossing = max(crossing, len(s.In))
	}
	if len(pl.Segments) < 3 || crossing < 2 {
		t.Fatalf("%d segments, at most %d values crossing a cut", len(pl.Segments), crossing)
	}
	qi := inputs(t, p, 3)
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if got := chainEval(t, pl, p, qi); !slices.EqualFunc(got, want.Outputs, slices.Equal) {
		t.Fatal("segments compute another output than the whole program")
	}
}
