package quant

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
)

// lowerWidthsPerPlan is the width choice as first written (#15): the graph lowered once
// per candidate plan (the unrounded widths, one global width, every limb width's
// rounding), each costed by sizeOf, the cheapest kept. Lower must return the same
// program while lowering the graph once.
func lowerWidthsPerPlan(g *model.Graph, cfg Config) (*Program, error) {
	base, err := lowerPlanned(g, cfg, widthPlan{})
	if err != nil || base.RangeCheck == "bits" {
		return base, err
	}
	plan := widthPlan{relu: map[string]bool{}}
	for _, l := range base.Layers {
		if l.Kind == KRescale && l.Relu && l.Key != "" {
			plan.relu[l.Key] = true
		}
	}
	best, bestSize := base, sizeOf(base)
	var ref *rangeSize
	if len(cfg.Widths) == 0 {
		global, err := lowerPlanned(g, cfg, widthPlan{global: true})
		if err != nil {
			return nil, err
		}
		ref = sizeOf(global)
		if !ref.covers(bestSize) {
			best, bestSize = global, ref
		}
	}
	for t := MinLimbBits; t <= MaxLimbBits && 1<<t < bestSize.cost; t++ {
		plan.t = t
		p, err := lowerPlanned(g, cfg, plan)
		if err != nil {
			return nil, err
		}
		if s := sizeOf(p); s.cost < bestSize.cost && (ref == nil || ref.covers(s)) {
			best, bestSize = p, s
		}
	}
	return best, nil
}

func canonical(t *testing.T, p *Program) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteCanonical(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLowerOnceMatchesPerPlan: Lower chooses the widths from one lowering's summary and
// gives exactly the program of lowering the graph once per candidate plan (the same
// canonical encoding, so the same model ID and constraints), for the example models,
// the zoo-shaped MNIST CNN and a small SqueezeNet, under several widths, with and
// without measured widths; without measured widths (or with measured widths that cap
// no static bound below Bits) it lowers the graph once.
func TestLowerOnceMatchesPerPlan(t *testing.T) {
	type entry struct {
		g  *model.Graph
		in []*model.Tensor
	}
	models := map[string]entry{}
	for name, m := range widthModels(t) {
		models[name] = entry{m.g, m.in}
	}
	build := func(name string, onnxBytes, inputJSON []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(onnxBytes)
		if err != nil {
			t.Fatal(err)
		}
		in, err := model.ParseInput(inputJSON, g)
		if err != nil {
			t.Fatal(err)
		}
		models[name] = entry{g, in}
	}
	zoo, zin, err := onnxgen.ZooMNIST()
	build("zoo_mnist", zoo, zin, err)
	sq, sqin, _, err := onnxgen.SqueezeNet{Size: 32, Div: 8, Classes: 10}.Build()
	build("squeezenet32", sq, sqin, err)
	// Tanh and Softmax after wide sums: at scale 16 their tables are range-reduced
	// (lower_sym.go, lower_softmax.go), fitted to the static bounds of the rescales.
	r := rand.New(rand.NewSource(15))
	wide := load(t, 13, &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 16)},
		Output: []*onnx.ValueInfoProto{floatInfo("y", 1, 16)},
		Initializer: []*onnx.TensorProto{floatInit("w1", []int64{16, 16}, randFloats(r, 256, 2)...),
			floatInit("w2", []int64{16, 16}, randFloats(r, 256, 2)...)},
		Node: []*onnx.NodeProto{node("MatMul", []string{"x", "w1"}, []string{"h"}), node("Tanh", []string{"h"}, []string{"a"}),
			node("MatMul", []string{"a", "w2"}, []string{"z"}), node("Softmax", []string{"z"}, []string{"y"}, intAttr("axis", -1))},
	})
	models["wide_tanh_softmax"] = entry{wide, randomInputs(r, wide, 1)}

	bitsTried := []int{16, 24, 32}
	if testing.Short() {
		bitsTried = []int{24}
	}
	for name, m := range models {
		for _, bits := range bitsTried {
			for _, cal := range []bool{false, true} {
				cfg := DefaultConfig()
				cfg.Bits = bits
				if name == "wide_tanh_softmax" {
					cfg.Scale, cfg.LookupBits, cfg.Bits = 16, 16, min(bits+16, MaxWidth)
				}
				if cal {
					c, err := CalibrateWidths(m.g, cfg, [][]*model.Tensor{m.in}, 0)
					if err != nil {
						t.Logf("%s bits %d: not calibrated: %v", name, bits, err)
						continue
					}
					cfg = c
				}
				want, werr := lowerWidthsPerPlan(m.g, cfg)
				before := lowerings.Load()
				got, gerr := Lower(m.g, cfg)
				n := lowerings.Load() - before
				if (werr != nil) != (gerr != nil) {
					t.Fatalf("%s bits %d calibrated %v: errors %v and %v", name, bits, cal, werr, gerr)
				}
				if werr != nil {
					continue
				}
				if !bytes.Equal(canonical(t, got), canonical(t, want)) {
					t.Errorf("%s bits %d calibrated %v: Lower's program differs from lowering per plan (sizes %+v, %+v)",
						name, bits, cal, *sizeOf(got), *sizeOf(want))
				}
				if capsBound(t, m.g, cfg) {
					t.Logf("%s bits %d calibrated %v: a measured width caps a bound below Bits; %d lowerings", name, bits, cal, n)
				} else if n != 1 {
					t.Errorf("%s bits %d calibrated %v: Lower lowered the graph %d times, want once", name, bits, cal, n)
				}
			}
		}
	}
}

// capsBound reports whether lowering g with cfg has a width site that is not free.
func capsBound(t *testing.T, g *model.Graph, cfg Config) bool {
	t.Helper()
	_, lw, err := lowerFused(g, cfg, widthPlan{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range lw.sites {
		if !s.free {
			return true
		}
	}
	return false
}

// TestLowerOnceRangeCheckBits: with range_check "bits" Lower lowers once and keeps the
// unrounded widths.
func TestLowerOnceRangeCheckBits(t *testing.T) {
	for name, m := range widthModels(t) {
		cfg := DefaultConfig()
		cfg.RangeCheck = "bits"
		want, err := lowerPlanned(m.g, cfg, widthPlan{})
		if err != nil {
			continue // lookup tables need range_check lookup
		}
		before := lowerings.Load()
		got, err := Lower(m.g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := lowerings.Load() - before; n != 1 {
			t.Errorf("%s: %d lowerings, want 1", name, n)
		}
		if !bytes.Equal(canonical(t, got), canonical(t, want)) {
			t.Errorf("%s: program differs from the unrounded one", name)
		}
	}
}
