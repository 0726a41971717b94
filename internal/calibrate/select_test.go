package calibrate

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

func loadExample(t *testing.T, name string) (*model.Graph, [][]*model.Tensor) {
	t.Helper()
	dir := filepath.Join("../../testdata/models", name)
	b, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(ib, g)
	if err != nil {
		t.Fatal(err)
	}
	return g, [][]*model.Tensor{in}
}

// TestSelect chooses settings for bundled example models: the choice meets the error
// target (checked again here against the float reference), is the cheapest of the
// settings tried that meet it, and a looser target costs no more.
func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		model string
		rel   float64
	}{{"1l_mlp", 1e-3}, {"2l_relu_sigmoid_small", 1e-2}, {"1l_softmax", 1e-2}} {
		t.Run(tc.model, func(t *testing.T) {
			g, samples := loadExample(t, tc.model)
			ch, err := Select(g, samples, quant.DefaultConfig(), Target{RelError: tc.rel})
			if err != nil {
				t.Fatal(err)
			}
			if ch.MaxAbsErr > ch.Target || ch.Target != tc.rel*ch.Range {
				t.Fatalf("chose error %g for the target %g (range %g)", ch.MaxAbsErr, ch.Target, ch.Range)
			}
			for _, c := range ch.Tried {
				if c.Err == "" && c.Constraints < ch.Constraints {
					t.Errorf("%+v meets the target with %d constraints, fewer than the choice's %d", c.Config, c.Constraints, ch.Constraints)
				}
			}
			// The error, measured independently on the chosen program.
			p, err := quant.Lower(g, ch.Config)
			if err != nil {
				t.Fatal(err)
			}
			want, err := g.Eval(samples[0])
			if err != nil {
				t.Fatal(err)
			}
			qi, err := p.QuantizeInputs(samples[0])
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Eval(qi)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range p.Dequantize(r.Outputs) {
				for j, v := range o.Data {
					if e := math.Abs(v - want[i].Data[j]); e > ch.Target {
						t.Fatalf("output %d[%d]: error %g above the target %g", i, j, e, ch.Target)
					}
				}
			}
			loose, err := Select(g, samples, quant.DefaultConfig(), Target{RelError: 10 * tc.rel})
			if err != nil {
				t.Fatal(err)
			}
			if loose.Constraints > ch.Constraints {
				t.Errorf("a 10x looser target costs more: %d > %d constraints", loose.Constraints, ch.Constraints)
			}
			t.Logf("target %.3g: scale %d, param scale %d, lookup bits %d, bits %d, error %.3g, %d constraints (estimate); 10x looser: scale %d, %d constraints",
				ch.Target, ch.Config.Scale, ch.Config.ParamScale, ch.Config.LookupBits, ch.Config.Bits, ch.MaxAbsErr, ch.Constraints, loose.Config.Scale, loose.Constraints)
		})
	}
}

// TestSelectValidatesExplicitSettings: explicit settings are kept, and one that cannot
// meet the target, or whose tables would not fit, is an error naming it.
func TestSelectValidatesExplicitSettings(t *testing.T) {
	g, samples := loadExample(t, "1l_mlp")
	base := quant.DefaultConfig()
	base.Scale = 3
	_, err := Select(g, samples, base, Target{FixedScale: true})
	if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "--scale 3") {
		t.Fatalf("scale 3 fixed: want an error naming --scale 3, got %v", err)
	}
	// Fixed and good enough: kept as given.
	base.Scale, base.ParamScale = 12, 12
	ch, err := Select(g, samples, base, Target{FixedScale: true, FixedParamScale: true, FixedBits: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := ch.Config; c.Scale != 12 || c.ParamScale != 12 || c.Bits != base.Bits {
		t.Fatalf("explicit settings changed: %+v", c)
	}
	// Sigmoid at scale 24 with 40 bits: no table of 2^16 entries covers the input's
	// range, even a half table read at 2^-8 resolution.
	g, samples = loadExample(t, "1l_sigmoid")
	base = quant.DefaultConfig()
	base.Scale, base.Bits = 24, 40
	_, err = Select(g, samples, base, Target{FixedScale: true, FixedBits: true, RelError: 0.5})
	if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "--scale 24, --bits 40") || !strings.Contains(err.Error(), "Sigmoid") {
		t.Fatalf("scale 24 fixed: want an error naming --scale 24, --bits 40 and the layer, got %v", err)
	}
	if _, err := Select(g, nil, base, Target{}); err == nil {
		t.Error("no samples: want an error")
	}
}
