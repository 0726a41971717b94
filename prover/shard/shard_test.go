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
func residualNet(t testing.TB) []byte { return residualNetOutputs(t, false) }

// residualNetOutputs is residualNet, with a second model output (a) if early.
func residualNetOutputs(t testing.TB, early bool) []byte {
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
	outs := []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 3)}
	if early {
		outs = append(outs, onnxgen.ValueInfo(a, 1, 4, 4, 4))
	}
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, 2, 4, 4)}, outs, 7, 13)
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
	pl := split(t, p, residualCuts(t, p))
	if len(pl.Segments) != 3 || len(pl.Segments[1].In) < 2 {
		t.Fatalf("want 3 segments, the second carrying the skip value: %+v", pl.Segments)
	}
	checkChain(t, pl, p, 1)
	// Boundary inputs are range-checked to their bounds in the segment program.
	s := pl.Segments[1].Program
	if s.InputVis != quant.Boundary || s.Layers[0].Kind != quant.KRangeChk || s.Layers[0].In[0] != s.Inputs[0] {
		t.Fatalf("segment 1 does not range-check its boundary inputs first: %+v", s.Layers[0])
	}
	// The whole program's model ID is unchanged by splitting; the plan ID depends on
	// the cuts.
	id, _ := prover.ModelID(p)
	other := split(t, p, allowed(p)[:1])
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
	p := tinySqueezeNet(t)
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
	checkChain(t, pl, p, 2)
	if _, err := SplitBudget(p, []circuits.System{circuits.Groth16}, bench.Limits{MaxConstraints: 100}); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("a budget no layer fits: got %v", err)
	}
}

// TestSplitSqueezeNet cuts a tiny SqueezeNet at every fourth allowed cut (inside fire
// modules too, where the squeeze output crosses to the second expand convolution):
// the segments, run one after another, compute the whole program's outputs.
func TestSplitSqueezeNet(t *testing.T) {
	p := tinySqueezeNet(t)
	var cuts []int
	for i, c := range allowed(p) {
		if i%4 == 3 {
			cuts = append(cuts, c)
		}
	}
	pl := split(t, p, cuts)
	crossing := 0
	for _, s := range pl.Segments[1:] {
		crossing = max(crossing, len(s.In))
	}
	if len(pl.Segments) < 3 || crossing < 2 {
		t.Fatalf("%d segments, at most %d values crossing a cut", len(pl.Segments), crossing)
	}
	checkChain(t, pl, p, 3)
}

// TestBundleGroth16 proves the residual net in 3 segments (the skip value crossing the
// first cut) and checks that every tampering of the bundle fails to verify.
func TestBundleGroth16(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	f := proveBundle(t, p, split(t, p, residualCuts(t, p)), circuits.Groth16)
	pl, ins, outs := f.pl, f.ins, f.outs
	for i, st := range f.keys.Stats {
		t.Logf("segment %d: %d constraints", i, st.Constraints)
	}
	// Another input's run: its segments verify on their own, but not in this bundle.
	other := f.prove(t, 2)
	if _, err := f.verify(other); err != nil {
		t.Fatal(err)
	}
	// A forged boundary activation: segment 1 proven over values that are not segment
	// 0's outputs (a valid proof of another statement).
	forgedIn := edited(ins[1], 0, func(x []int64) {
		for j := range x {
			x[j] += 64
		}
	})
	forged, forgedOut := f.proveOn(t, pl.Segments[1], forgedIn)
	if slices.EqualFunc(forgedOut, outs[1], slices.Equal) {
		t.Fatal("the forged input gives the true outputs")
	}
	// Segment 1 proven over the forged input, claiming the true outputs: no proof.
	if _, err := f.proveSegment(pl.Segments[1], forgedIn, outs[1]); err == nil {
		t.Fatal("proved segment 1 on a forged input with the true outputs")
	}
	// A forged boundary value above its bound (the range layer refuses it).
	wide := edited(ins[1], 0, func(x []int64) { x[0] = 1 << 40 })
	if _, err := f.proveSegment(pl.Segments[1], wide, outs[1]); err == nil {
		t.Fatal("proved segment 1 on a boundary input above its bound")
	}
	with := f.tampered
	for name, bad := range map[string]*Bundle{
		"segment from another input": with(func(c *Bundle) { c.Segments[1] = other.Segments[1] }),
		"last segment from another input": with(func(c *Bundle) {
			c.Segments[2] = other.Segments[2]
			c.IntOutputs = other.IntOutputs
		}),
		"forged boundary activation": with(func(c *Bundle) { c.Segments[1] = forged }),
		"reordered": with(func(c *Bundle) {
			c.Segments[0], c.Segments[1] = c.Segments[1], c.Segments[0]
		}),
		"reordered, indices relabelled": with(func(c *Bundle) {
			s0, s1 := *c.Segments[0], *c.Segments[1]
			s0.Index, s0.ID, s1.Index, s1.ID = 1, s1.ID, 0, s0.ID
			c.Segments[0], c.Segments[1] = &s1, &s0
		}),
		"dropped":                        with(func(c *Bundle) { c.Segments = slices.Delete(c.Segments, 1, 2) }),
		"duplicated":                     with(func(c *Bundle) { c.Segments = slices.Insert(c.Segments, 1, c.Segments[1]) }),
		"duplicated in place of another": with(func(c *Bundle) { c.Segments[2] = c.Segments[1] }),
		"wrong claimed output": with(func(c *Bundle) {
			c.IntOutputs[0] = slices.Clone(c.IntOutputs[0])
			c.IntOutputs[0][0]++
		}),
		"another model": with(func(c *Bundle) { c.ModelID = "00" + c.ModelID[2:] }),
	} {
		if _, err := f.verify(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	// A bundle of another split of the same model (one segment), and its segment
	// spliced in.
	b2 := proveBundle(t, p, split(t, p, nil), f.sys).b
	relabelled := *b2
	relabelled.PlanID = pl.ID
	spliced := with(func(c *Bundle) { c.Segments[0] = b2.Segments[0] })
	for name, bad := range map[string]*Bundle{"another split": b2, "another split, relabelled": &relabelled, "spliced": spliced} {
		if _, err := f.verify(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

// TestBundlePlonkHashed proves the residual net in 2 segments with PLONK, inputs,
// outputs and params hashed: the first segment's input commitment and the last
// segment's output commitment are the unsharded model's, each segment commits to its
// own params, and a wrong claimed output fails the output commitment.
func TestBundlePlonkHashed(t *testing.T) {
	p := lower(t, residualNet(t), hashedConfig())
	f := proveBundle(t, p, split(t, p, residualCuts(t, p)[:1]), circuits.Plonk)
	f.checkWholeCommitments(t)
	if _, ok := f.v.Commitments["params/1"]; !ok || f.v.Commitments["params/0"] == f.v.Commitments["params/1"] {
		t.Fatalf("want one params commitment per segment: %v", f.v.Commitments)
	}
	wrong := f.tampered(func(c *Bundle) { c.IntOutputs = edited(c.IntOutputs, 0, func(x []int64) { x[1]-- }) })
	if _, err := f.verify(wrong); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong claimed output: got %v", err)
	}
	reordered := f.tampered(func(c *Bundle) { c.Segments[0], c.Segments[1] = c.Segments[1], c.Segments[0] })
	if _, err := f.verify(reordered); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reordered: got %v", err)
	}
}

// checkLinks checks that the bundle lists every pair's commitments, the producer's
// for the consumer equal to the consumer's for the producer.
func checkLinks(t testing.TB, pl *Plan, b *Bundle) {
	t.Helper()
	for _, pr := range pl.Pairs {
		var out, in string
		for _, l := range b.Segments[pr.From].OutCommitments {
			if l.Segment == pr.To {
				out = l.Commitment
			}
		}
		for _, l := range b.Segments[pr.To].InCommitments {
			if l.Segment == pr.From {
				in = l.Commitment
			}
		}
		if out == "" || out != in {
			t.Fatalf("pair %d -> %d: commitments %q, %q", pr.From, pr.To, out, in)
		}
	}
}
