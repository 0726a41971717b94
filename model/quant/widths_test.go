package quant

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// widthModels loads the example models (testdata/models and examples/) with their
// sample inputs.
func widthModels(t *testing.T) map[string]struct {
	g  *model.Graph
	in []*model.Tensor
} {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/models/*/network.onnx")
	more, _ := filepath.Glob("../../examples/*/network.onnx")
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("no example models")
	}
	out := map[string]struct {
		g  *model.Graph
		in []*model.Tensor
	}{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(f), "input.json"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := model.ParseInput(raw, g)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(f))] = struct {
			g  *model.Graph
			in []*model.Tensor
		}{g, in}
	}
	return out
}

// TestStaticBoundsHoldOnRandomInputs is the property the widths rest on: with every
// input limited to a width and nothing else capped (Bits = MaxWidth), each tensor's
// width comes from the static interval bounds alone, and no input within the input
// width makes the integer evaluator produce a value outside its width or its bound.
// Inputs are random, plus the corners (all at the largest or smallest value, and
// alternating), where linear layers reach their extremes.
func TestStaticBoundsHoldOnRandomInputs(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	for name, m := range widthModels(t) {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Bits = MaxWidth
			cfg.Widths = map[string]int{}
			for _, in := range m.g.Inputs {
				cfg.Widths["input "+in.Name] = cfg.Scale + 3 // |x| < 4
			}
			p, err := Lower(m.g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for trial := range 60 {
				qi := make([][]int64, len(p.Inputs))
				for i, id := range p.Inputs {
					lim := int64(1) << (p.InputBits(i) - 1)
					qi[i] = make([]int64, numel(p.Values[id].Shape))
					for j := range qi[i] {
						switch trial {
						case 0:
							qi[i][j] = lim - 1
						case 1:
							qi[i][j] = -lim
						case 2:
							qi[i][j] = []int64{lim - 1, -lim}[j%2]
						case 3:
							qi[i][j] = []int64{-lim, lim - 1}[j%2]
						default:
							qi[i][j] = r.Int63n(2*lim) - lim
						}
					}
				}
				res, err := p.Eval(qi)
				if err != nil {
					t.Fatalf("trial %d: an input within its width fails: %v", trial, err)
				}
				for id, vals := range res.Values {
					for _, v := range vals {
						if math.Abs(float64(v)) > p.Values[id].Bound {
							t.Fatalf("trial %d: value %d = %d exceeds its static bound %g", trial, id, v, p.Values[id].Bound)
						}
					}
				}
			}
		})
	}
}

// TestCalibratedWidths measures widths on each model's sample input and random inputs
// like it, and checks that every keyed tensor's width holds what it takes on them (the
// analysis never gives a width smaller than a value the evaluator produces on the
// calibration inputs), that no width is wider than needed beyond what rounding for
// the range argument allows, and that the program runs every sample.
func TestCalibratedWidths(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	for name, m := range widthModels(t) {
		t.Run(name, func(t *testing.T) {
			samples := [][]*model.Tensor{m.in}
			for range 4 {
				var s []*model.Tensor
				for _, x := range m.in {
					y := x.Clone()
					for i := range y.Data {
						y.Data[i] *= 0.5 + r.Float64()
					}
					s = append(s, y)
				}
				samples = append(samples, s)
			}
			cfg, err := CalibrateWidths(m.g, DefaultConfig(), samples, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Widths) == 0 {
				t.Fatal("no widths measured")
			}
			p, err := Lower(m.g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int64{}
			for i, s := range samples {
				qi, err := p.QuantizeInputs(s)
				if err != nil {
					t.Fatalf("sample %d: %v", i, err)
				}
				if _, err := Run[int64](p, &observer{seen: seen}, qi, p.ParamData()); err != nil {
					t.Fatalf("sample %d: %v", i, err)
				}
			}
			keyed := 0
			for _, l := range p.Layers {
				if l.Key == "" {
					continue
				}
				keyed++
				if v := seen[l.Key]; v >= int64(1)<<(l.Bits-1) {
					t.Errorf("%s: width %d does not hold %d", l.Key, l.Bits, v)
				}
				if w, ok := cfg.Widths[l.Key]; !ok || l.Bits > max(w, cfg.Bits) {
					t.Errorf("%s: width %d beyond its measured width %d (ok %v) and bits %d", l.Key, l.Bits, w, ok, cfg.Bits)
				}
			}
			if keyed != len(cfg.Widths) {
				t.Errorf("%d keyed layers, %d measured widths", keyed, len(cfg.Widths))
			}
		})
	}
}

// TestNarrowedWidthOverflowIsNamed: a value beyond a measured width is an error before
// proving that names the tensor's layer and its width; an input beyond its width
// names the input.
func TestNarrowedWidthOverflowIsNamed(t *testing.T) {
	ms := widthModels(t)
	m := ms["1l_mlp"]
	if m.g == nil {
		t.Skip("1l_mlp not available")
	}
	cfg, err := CalibrateWidths(m.g, DefaultConfig(), [][]*model.Tensor{m.in}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Lower(m.g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var resc *Layer
	for _, l := range p.Layers {
		if l.Kind == KRescale {
			resc = l
		}
	}
	if resc == nil || resc.Bits >= cfg.Bits {
		t.Fatalf("rescale not narrowed: %+v", resc)
	}
	// Scale the input up until the rescale overflows while the input still fits.
	lim := math.Ldexp(1, p.InputBits(0)-1-p.Scale)
	big := m.in[0].Clone()
	amax := 0.0
	for _, v := range big.Data {
		amax = math.Max(amax, math.Abs(v))
	}
	for i := range big.Data {
		big.Data[i] *= 0.99 * lim / amax
	}
	qi, err := p.QuantizeInputs([]*model.Tensor{big})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Eval(qi)
	if err == nil {
		// The input width leaves room below the rescale's width; widen the input.
		wide := cfg
		wide.Widths = map[string]int{}
		for k, v := range cfg.Widths {
			wide.Widths[k] = v
		}
		wide.Widths["input "+p.InputNames[0]] = 24
		p, err = Lower(m.g, wide)
		if err != nil {
			t.Fatal(err)
		}
		for i := range big.Data {
			big.Data[i] *= 64
		}
		qi, err = p.QuantizeInputs([]*model.Tensor{big})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Eval(qi)
	}
	wantOutOfRange(t, err, resc.Name)
	for _, l := range p.Layers {
		if l.Key == resc.Key && !strings.Contains(err.Error(), fmt.Sprintf("the %d signed bits", l.Bits)) {
			t.Fatalf("error %q does not name the width %d", err, l.Bits)
		}
	}
	// An input beyond its width.
	p, err = Lower(m.g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	huge := m.in[0].Clone()
	huge.Data[0] = 2 * lim
	_, err = p.QuantizeInputs([]*model.Tensor{huge})
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), p.InputNames[0]) ||
		!strings.Contains(err.Error(), fmt.Sprintf("%d signed bits", p.InputBits(0))) {
		t.Fatalf("got %v, want ErrOutOfRange naming input %q and width %d", err, p.InputNames[0], p.InputBits(0))
	}
}

// TestCalibrateWidthsCap: an explicit cap below what a tensor needs is an error naming
// the tensor and the width it needs.
func TestCalibrateWidthsCap(t *testing.T) {
	m := widthModels(t)["mnist_cnn"]
	if m.g == nil {
		t.Skip("mnist_cnn not available")
	}
	cfg := DefaultConfig()
	cfg.Bits = 10
	_, err := CalibrateWidths(m.g, cfg, [][]*model.Tensor{m.in}, 10)
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "more than 10") || !strings.Contains(err.Error(), "signed bits") {
		t.Fatalf("got %v, want an error naming a tensor above the cap", err)
	}
}

// TestWidthsGrowBeyondBits: a tensor that needs more than Bits gets it from
// calibration (no overflow for models whose activations grow), where the old global
// width overflowed.
func TestWidthsGrowBeyondBits(t *testing.T) {
	m := widthModels(t)["1l_linear"]
	if m.g == nil {
		t.Skip("1l_linear not available")
	}
	in := m.in[0].Clone()
	for i := range in.Data {
		in.Data[i] = 3000 // 3000 * 2^8 needs 21 bits; the product more
	}
	cfg := DefaultConfig()
	cfg.Bits = 16
	p, err := Lower(m.g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.QuantizeInputs([]*model.Tensor{in}); err == nil {
		t.Fatal("16-bit inputs hold 3000 at scale 8")
	}
	cal, err := CalibrateWidths(m.g, cfg, [][]*model.Tensor{{in}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err = Lower(m.g, cal)
	if err != nil {
		t.Fatal(err)
	}
	if p.InputBits(0) <= 16 {
		t.Fatalf("input width %d, want more than bits 16", p.InputBits(0))
	}
	qi, err := p.QuantizeInputs([]*model.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(qi); err != nil {
		t.Fatal(err)
	}
}

// TestRoundingNeverCostsMore: without measured widths the chosen program's range
// argument is no larger than with one global width (Bits, the program before
// per-tensor widths) in cost, queries and low limbs, so neither R1CS nor PLONK grows;
// with measured widths it is no larger than with the narrowest widths.
func TestRoundingNeverCostsMore(t *testing.T) {
	for name, m := range widthModels(t) {
		for _, cal := range []bool{false, true} {
			cfg := DefaultConfig()
			ref := widthPlan{global: true}
			if cal {
				var err error
				if cfg, err = CalibrateWidths(m.g, cfg, [][]*model.Tensor{m.in}, 0); err != nil {
					t.Fatal(err)
				}
				ref = widthPlan{}
			}
			r, err := lowerPlanned(m.g, cfg, ref)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Lower(m.g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, want := sizeOf(p), sizeOf(r)
			if cal && got.cost > want.cost || !cal && !want.covers(got) {
				t.Errorf("%s (calibrated %v): chosen %+v, reference %+v", name, cal, *got, *want)
			}
		}
	}
}

func TestLimbQueries(t *testing.T) {
	for _, c := range []struct{ b, t, want int }{
		{0, 8, 0}, {1, 8, 0}, {2, 8, 2}, {8, 8, 1}, {9, 8, 3}, {16, 8, 2}, {20, 12, 3}, {24, 12, 2}, {23, 12, 3},
	} {
		if got := LimbQueries(c.b, c.t); got != c.want {
			t.Errorf("LimbQueries(%d, %d) = %d, want %d", c.b, c.t, got, c.want)
		}
	}
	if roundUp(20, 24, 12, 0) != 24 || roundUp(20, 22, 12, 0) != 20 || roundUp(20, 30, 12, -1) != 25 || roundUp(20, 30, 0, 0) != 20 {
		t.Error("roundUp")
	}
}

// TestFoldedBiasWidens: when a bias add folds into the rescale before it, the rescale
// checks the sum; a width that came from the rescale's own static bound must grow to
// the sum's (here x*1 with |x| < 2 needs 11 bits, x*1 + 100 needs 16), or inputs
// within their width would fail.
func TestFoldedBiasWidens(t *testing.T) {
	g := load(t, 13, &onnx.GraphProto{
		Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 1)},
		Output:      []*onnx.ValueInfoProto{floatInfo("y", 1, 1)},
		Initializer: []*onnx.TensorProto{floatInit("w", []int64{1, 1}, 1), floatInit("b", []int64{1}, 100)},
		Node:        []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Add", []string{"h", "b"}, []string{"y"})},
	})
	cfg := DefaultConfig()
	cfg.Widths = map[string]int{"input x": cfg.Scale + 2}
	for _, plan := range []widthPlan{{}, {t: 4}, {t: 12}} {
		p, err := lowerPlanned(g, cfg, plan)
		if err != nil {
			t.Fatal(err)
		}
		folded := false
		for _, l := range p.Layers {
			folded = folded || l.Kind == KAdd && p.Values[l.Out].Scale == cfg.Scale+cfg.ParamScale
		}
		if !folded {
			t.Fatal("the bias add did not fold into the rescale")
		}
		lim := int64(1)<<(p.InputBits(0)-1) - 1
		for _, x := range []int64{lim, -lim - 1} {
			if _, err := p.Eval([][]int64{{x}}); err != nil {
				t.Errorf("plan %+v, x = %d: %v", plan, x, err)
			}
		}
	}
}
