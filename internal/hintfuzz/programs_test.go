package hintfuzz

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// progBuilder assembles a small program by hand, layer by layer, for gadget tests
// that must not depend on model files.
type progBuilder struct{ p *quant.Program }

// newProg starts a program whose inputs (one per shape) are range-checked to bits,
// as the lowering does; it returns the checked values' ids.
func newProg(bits int, shapes ...[]int) (*progBuilder, []int) {
	b := &progBuilder{p: &quant.Program{Config: quant.DefaultConfig()}}
	var ids []int
	for i, s := range shapes {
		raw := b.value(s, b.p.Scale, math.Ldexp(1, bits-1))
		b.p.Inputs = append(b.p.Inputs, raw)
		b.p.InputNames = append(b.p.InputNames, fmt.Sprintf("x%d", i))
		ids = append(ids, b.layer(&quant.Layer{Op: "Input", Kind: quant.KRangeChk, In: []int{raw}, Bits: bits}, s, b.p.Scale, math.Ldexp(1, bits-1)))
	}
	return b, ids
}

func (b *progBuilder) value(shape []int, scale int, bound float64) int {
	b.p.Values = append(b.p.Values, quant.Value{Shape: shape, Scale: scale, Bound: bound})
	return len(b.p.Values) - 1
}

func (b *progBuilder) layer(l *quant.Layer, shape []int, scale int, bound float64) int {
	l.Out = b.value(shape, scale, bound)
	l.Name = fmt.Sprintf("%s_%d", l.Kind, len(b.p.Layers))
	if l.Op == "" {
		l.Op = string(l.Kind)
	}
	b.p.Layers = append(b.p.Layers, l)
	return l.Out
}

// output marks ids as the program's outputs and returns it.
func (b *progBuilder) output(ids ...int) *quant.Program {
	for _, id := range ids {
		b.p.Outputs = append(b.p.Outputs, id)
		b.p.OutputNames = append(b.p.OutputNames, fmt.Sprintf("y%d", id))
	}
	return b.p
}

func iota32(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// gadgetPrograms are one small program per gadget, each with inputs at its edges:
// ties, equal elements, zero, the ends of the range.
func gadgetPrograms() []struct {
	gadget string
	prog   *quant.Program
	inputs [][][]int64
} {
	type gp = struct {
		gadget string
		prog   *quant.Program
		inputs [][][]int64
	}
	var out []gp
	groups := [][]int32{{0, 1}, {2, 3, 4}, {5, 6, 7}}
	rowsIn := [][][]int64{
		{{5, 5, -3, 7, 7, -32768, 32767, 0}},
		{{-1, 0, 1, 1, -1, 3, 3, 3}},
	}
	for _, minimum := range []bool{false, true} {
		b, x := newProg(16, []int{8})
		m := b.layer(&quant.Layer{Op: "MaxPool", Kind: quant.KMax, In: x, Groups: groups, Bits: 16, Min: minimum}, []int{3}, 8, 1<<15)
		out = append(out, gp{fmt.Sprintf("Max (min=%v)", minimum), b.output(m), rowsIn})
	}
	{
		b, x := newProg(16, []int{6})
		c := b.layer(&quant.Layer{Kind: quant.KClamp, In: x, Lo: -100, Hi: 50, Bits: 16}, []int{6}, 8, 100)
		out = append(out, gp{"clamp", b.output(c), [][][]int64{{{-32768, -101, -100, 50, 51, 32767}}, {{0, -1, 1, -99, 49, 7}}}})
	}
	{
		// Where(x > y, x, y): c = clamp(x - y, 0, 1), out = c*(x - y) + y.
		b, xy := newProg(16, []int{4}, []int{4})
		id := iota32(4)
		d := b.layer(&quant.Layer{Kind: quant.KAdd, In: xy, IA: id, IB: id, MA: 1, MB: -1}, []int{4}, 8, 1<<16)
		c := b.layer(&quant.Layer{Op: "Greater", Kind: quant.KClamp, In: []int{d}, Lo: 0, Hi: 1, Bits: 18}, []int{4}, 0, 1)
		ts := make([]int32, 5)
		for i := range ts {
			ts[i] = int32(i)
		}
		w := b.layer(&quant.Layer{Op: "Where", Kind: quant.KLinear, In: []int{c, d, xy[1]}, TermStart: ts, TA: id, TB: id, Bias: id}, []int{4}, 8, 1<<15)
		out = append(out, gp{"comparison and Where", b.output(c, w), [][][]int64{
			{{1, 0, -5, 32767}, {0, 0, -4, -32768}},
			{{-32768, 7, 7, 2}, {32767, 7, 8, 1}},
		}})
	}
	for _, v := range []struct {
		name                  string
		minimum, last, onehot bool
	}{{"ArgMax", false, false, false}, {"ArgMin", true, false, false}, {"ArgMax last", false, true, false}, {"Hardmax", false, false, true}} {
		b, x := newProg(16, []int{8})
		shape := []int{3}
		if v.onehot {
			shape = []int{8}
		}
		a := b.layer(&quant.Layer{Op: v.name, Kind: quant.KArgMax, In: x, Groups: groups, Bits: 16, Min: v.minimum, Last: v.last, OneHot: v.onehot}, shape, 0, 8)
		out = append(out, gp{v.name, b.output(a), rowsIn})
	}
	{
		b, x := newProg(12, []int{6})
		b.p.LookupBits = 6 // a 64-entry exp table keeps the exhaustive run short
		size := int64(1) << b.p.LookupBits
		t := &quant.Table{Name: "exp", Lo: -(size - 1)}
		for i := t.Lo; i <= 0; i++ {
			t.Values = append(t.Values, int64(math.Round(math.Exp(float64(i)/256)*256)))
		}
		s := b.layer(&quant.Layer{Op: "Softmax", Kind: quant.KSoftmax, In: x, Groups: [][]int32{{0, 1, 2}, {3, 4, 5}}, Bits: 12, Table: t}, []int{6}, 8, 256)
		out = append(out, gp{"Softmax", b.output(s), [][][]int64{{{0, 0, 0, -2048, 2047, 2047}}, {{20, -42, 5, -2048, -2048, -2047}}, {{0, -63, -64, 63, 1, 0}}}})
	}
	{
		// round(relu(x)*256 / (relu(y) + 256)): a runtime divisor.
		b, xy := newProg(16, []int{4}, []int{4})
		rx := b.layer(&quant.Layer{Kind: quant.KRelu, In: xy[:1], Bits: 16}, []int{4}, 8, 1<<15)
		ry := b.layer(&quant.Layer{Kind: quant.KRelu, In: xy[1:], Bits: 16}, []int{4}, 8, 1<<15)
		q := b.layer(&quant.Layer{Op: "Div", Kind: quant.KDiv, In: []int{rx, ry}, MA: 256, MB: 256, NumBits: 26, DenBits: 18, Bits: 17}, []int{4}, 8, 1<<16)
		out = append(out, gp{"runtime Div", b.output(q), [][][]int64{{{0, 32767, 383, 128}, {0, 0, 256, -5}}, {{1, 32767, 100, 77}, {32767, 32767, 44, 0}}}})
	}
	{
		// int8 requantization, two channels with multipliers 0.5 and 1.5 (ties on odd
		// inputs), zero point 3, saturated to [-128, 127].
		b, x := newProg(9, []int{4})
		q := b.layer(&quant.Layer{Op: "QuantizeLinear", Kind: quant.KRequant, In: x, IA: []int32{0, 1, 0, 1},
			Mult: []int64{1 << 15, 3 << 15}, Off: []int64{0, 0}, Shift: 16, Zero: 3, Lo: -128, Hi: 127, NumBits: 10, Bits: 10}, []int{4}, 0, 128)
		out = append(out, gp{"int8 requantization", b.output(q), [][][]int64{{{-256, 255, 1, 3}}, {{-1, -3, 5, -85}}, {{255, 85, -255, 83}}}})
	}
	return out
}

// TestForgedGadgetPrograms forges, exhaustively (every call of every hint, every
// perturbation, R1CS and PLONK; in CI PLONK on the first input set only), one small hand-built program per gadget that has no
// gadget-level forgery test: Max/Min (max pooling), clamp, comparison and Where,
// ArgMax/ArgMin/Hardmax, Softmax, runtime Div, int8 requantization. It needs no model
// files; TestForgedOperators does the same through ONNX node tests.
func TestForgedGadgetPrograms(t *testing.T) {
	quiet(t)
	for _, g := range gadgetPrograms() {
		t.Run(g.gadget, func(t *testing.T) {
			tl := newTally()
			for k, in := range g.inputs {
				c := Case{Name: fmt.Sprintf("%s/input %d", g.gadget, k), Prog: g.prog, Inputs: in}
				systems := []circuits.System{circuits.Groth16, circuits.Plonk}
				if testing.Short() || (k > 0 && !fullBudget(t)) {
					systems = systems[:1] // CI: PLONK on the first input set
				}
				for _, sys := range systems {
					tg, err := Compile(c, sys)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewSource(seed(c.Name)))
					var trials []trial
					for _, s := range tg.Sites() {
						for _, p := range Perturbations(s, rng, -1) {
							trials = append(trials, trial{s, p})
						}
					}
					tl.add(runTrials(t, tg, trials))
				}
			}
			if tl.tried == 0 {
				t.Fatal("no perturbation was tried")
			}
			report(t, g.gadget, tl)
		})
	}
}

// TestLayerAttribution: a failure names the layer of the hint call. In a program of
// an input check and a max pooling, the Relu signs belong to the pooling layer and
// the range argument's limbs and multiplicities to the deferred arguments.
func TestLayerAttribution(t *testing.T) {
	quiet(t)
	g := gadgetPrograms()[0]
	tg, err := Compile(Case{Name: g.gadget, Prog: g.prog, Inputs: g.inputs[0]}, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"circuits.signHint":       fmt.Sprintf("%s (MaxPool)", g.prog.Layers[1].Name),
		"circuits.limbsHint":      Deferred,
		"circuits.rangeCountHint": Deferred,
	}
	seen := map[string]bool{}
	for _, s := range tg.Sites() {
		layer, err := tg.Layer(s)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[s.Name]; ok && layer != w {
			t.Errorf("%s call %d attributed to %q, want %q", s.Name, s.Rank, layer, w)
		}
		seen[s.Name] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no call of %s", name)
		}
	}
}
