package shard

import (
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// split is Split, failing the test on an error.
func split(t testing.TB, p *quant.Program, cuts []int) *Plan {
	t.Helper()
	pl, err := Split(p, cuts)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// eval is p.Eval's outputs, failing the test on an error.
func eval(t testing.TB, p *quant.Program, in [][]int64) [][]int64 {
	t.Helper()
	r, err := p.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	return r.Outputs
}

// checkChain checks that pl's segments, run one after another on inputs(t, p, seed)
// (chainEval), compute the whole program's outputs.
func checkChain(t testing.TB, pl *Plan, p *quant.Program, seed int) {
	t.Helper()
	qi := inputs(t, p, seed)
	want := eval(t, p, qi)
	if got := chainEval(t, pl, p, qi); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("segments compute %v, the whole program %v", got, want)
	}
}

// checkFits fails the test for each segment of pl whose Groth16 estimate is over limits.
func checkFits(t testing.TB, pl *Plan, limits bench.Limits) {
	t.Helper()
	for _, s := range pl.Segments {
		e, err := bench.EstimateProgram(s.Program, circuits.Groth16)
		if err != nil {
			t.Fatal(err)
		}
		if err := limits.Check(e); err != nil {
			t.Errorf("segment %d: %v", s.Index, err)
		}
	}
}

// checkSegments checks that each segment of pl, run on the tensors the whole program
// gives it on qi (Activations), computes its own outputs, and returns the last
// segment's outputs.
func checkSegments(t testing.TB, pl *Plan, p *quant.Program, qi [][]int64) [][]int64 {
	t.Helper()
	ins, outs, _, err := pl.Activations(p, qi)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range pl.Segments {
		r, err := s.Program.Eval(ins[i])
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if !slices.EqualFunc(r.Outputs, outs[i], slices.Equal) {
			t.Fatalf("segment %d computes other outputs than the whole program's", i)
		}
	}
	return outs[len(outs)-1]
}

// hashedConfig is the default config with inputs, outputs and params hashed.
func hashedConfig() quant.Config {
	cfg := quant.DefaultConfig()
	cfg.InputVis, cfg.OutputVis, cfg.ParamVis = quant.Hashed, quant.Hashed, quant.Hashed
	return cfg
}

// tinySqueezeNet is a SqueezeNet at 32x32 with a sixteenth of the channels and 4
// classes, lowered with the default config.
func tinySqueezeNet(t testing.TB) *quant.Program {
	t.Helper()
	m, _, _, err := onnxgen.SqueezeNet{Size: 32, Div: 16, Classes: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	return lower(t, m, quant.DefaultConfig())
}

// softmaxNet is a softmax over axis 1 of a rows x cols input, lowered with the
// default config.
func softmaxNet(t testing.TB, seed string, rows, cols int64) *quant.Program {
	t.Helper()
	b := onnxgen.Seeded(seed)
	x := b.Node("Softmax", []string{"input"}, onnxgen.Int("axis", 1))
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", rows, cols)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, rows, cols)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	return lower(t, m, quant.DefaultConfig())
}

// clonePairs copies a pair table, each pair too.
func clonePairs(ps []*Pair) []*Pair {
	out := make([]*Pair, len(ps))
	for i, pr := range ps {
		c := *pr
		out[i] = &c
	}
	return out
}

// pairsOf lists the plan's pairs as producer and consumer.
func pairsOf(pl *Plan) [][2]int {
	var out [][2]int
	for _, pr := range pl.Pairs {
		out = append(out, [2]int{pr.From, pr.To})
	}
	return out
}

// bumped is a copy of the tensors in with tensor j's first element one more (the
// other tensors shared).
func bumped(in [][]int64, j int) [][]int64 {
	return edited(in, j, func(x []int64) { x[0]++ })
}

// edited is a copy of the tensors in with tensor j copied and changed by f (the other
// tensors shared).
func edited[T any](in [][]T, j int, f func(x []T)) [][]T {
	c := slices.Clone(in)
	c[j] = slices.Clone(c[j])
	f(c[j])
	return c
}

// bundleFixture is a bundle proved and verified with development keys, for tests to
// tamper with.
type bundleFixture struct {
	p    *quant.Program // the whole program
	pl   *Plan
	sys  circuits.System
	keys *MemKeys
	qi   [][]int64 // the inputs proved: inputs(t, p, 1)
	b    *Bundle
	v    *Verified
	// want is the whole program's outputs on qi; ins and outs each segment's input and
	// output tensors (Plan.Activations).
	want      [][]int64
	ins, outs [][][]int64
}

// proveBundle runs the development setup of pl (split from p) for sys, proves the
// inference on inputs(t, p, 1) and verifies the bundle, and checks that the verified
// outputs are the whole program's and that the bundle lists every pair's commitments
// (checkLinks).
func proveBundle(t testing.TB, p *quant.Program, pl *Plan, sys circuits.System) *bundleFixture {
	t.Helper()
	keys, err := SetupDev(pl, sys)
	if err != nil {
		t.Fatal(err)
	}
	f := &bundleFixture{p: p, pl: pl, sys: sys, keys: keys, qi: inputs(t, p, 1)}
	f.b = f.prove(t, 1)
	if f.v, err = Verify(pl, sys, keys.VerifyingKey, f.b); err != nil {
		t.Fatal(err)
	}
	f.want = eval(t, p, f.qi)
	if !slices.EqualFunc(f.v.Outputs, f.want, slices.Equal) {
		t.Fatalf("verified outputs %v, the whole program's %v", f.v.Outputs, f.want)
	}
	checkLinks(t, pl, f.b)
	if f.ins, f.outs, _, err = pl.Activations(p, f.qi); err != nil {
		t.Fatal(err)
	}
	return f
}

// prove proves the inference on inputs(t, p, seed) with the fixture's keys.
func (f *bundleFixture) prove(t testing.TB, seed int) *Bundle {
	t.Helper()
	b, err := Prove(f.pl, f.p, f.sys, f.keys, inputs(t, f.p, seed))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify is Verify of bad against the fixture's plan and keys.
func (f *bundleFixture) verify(bad *Bundle) (*Verified, error) {
	return Verify(f.pl, f.sys, f.keys.VerifyingKey, bad)
}

// proveOn proves segment s (one of the plan's, or a copy of one with another
// program) with the keys of segment s.Index, on the input tensors in and the outputs
// s's program computes on them: a valid proof of another statement. It returns the
// proof and those outputs.
func (f *bundleFixture) proveOn(t testing.TB, s *Segment, in [][]int64) (*SegmentProof, [][]int64) {
	t.Helper()
	out := eval(t, s.Program, in)
	sp, err := f.proveSegment(s, in, out)
	if err != nil {
		t.Fatal(err)
	}
	return sp, out
}

// proveSegment is ProveSegment of s with the keys of segment s.Index.
func (f *bundleFixture) proveSegment(s *Segment, in, out [][]int64) (*SegmentProof, error) {
	i := s.Index
	return ProveSegment(s, f.sys, f.keys.CCS[i], f.keys.PK[i], f.keys.VK[i], in, out)
}

// tampered is a copy of the fixture's bundle (its segment list and outputs copied)
// changed by edit.
func (f *bundleFixture) tampered(edit func(c *Bundle)) *Bundle {
	c := *f.b
	c.Segments = slices.Clone(f.b.Segments)
	c.IntOutputs = slices.Clone(f.b.IntOutputs)
	c.Outputs = slices.Clone(f.b.Outputs)
	edit(&c)
	return &c
}

// checkWholeCommitments checks that the verified bundle's input and output
// commitments are the unsharded program's.
func (f *bundleFixture) checkWholeCommitments(t testing.TB) {
	t.Helper()
	whole, err := circuits.Commitments(f.p, f.qi, f.want)
	if err != nil {
		t.Fatal(err)
	}
	// The whole program's commitments, in layout order: inputs, outputs, params.
	if f.v.Commitments["inputs"] != whole[0].String() || f.v.Commitments["outputs"] != whole[1].String() {
		t.Fatalf("bundle commitments %v, unsharded %v", f.v.Commitments, whole)
	}
}

// claim sets c's claimed outputs to the integer outputs out and their dequantized
// values, as Prove does.
func (f *bundleFixture) claim(c *Bundle, out [][]int64) {
	c.IntOutputs, c.Outputs = out, nil
	for _, o := range f.p.Dequantize(out) {
		c.Outputs = append(c.Outputs, o.Data)
	}
}
