package bench

import (
	"errors"
	"runtime"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// smallArchs are scaled-down versions of the four architectures (tiny inputs, channels
// divided by 32 or more): every op of the full-size networks, in seconds.
var smallArchs = []onnxgen.Arch{
	onnxgen.SqueezeNet{Size: 32, Div: 32, Classes: 4},
	onnxgen.ResNet50{Size: 32, Div: 32, Classes: 4},
	onnxgen.VGG16{Size: 32, Div: 32, Classes: 4},
	onnxgen.AlexNet{Size: 64, Div: 48, Classes: 4},
}

// TestEstimateGraphCalibrated compares the structural estimate (no lowering) with the
// estimate of the lowered program and with the compiled circuit, on scaled-down
// versions of SqueezeNet 1.0, ResNet-50, VGG-16 and AlexNet:
//   - constraints and terms within 5% of EstimateProgram's in both systems (Groth16's
//     are equal: the same counting arithmetic runs on representative elements);
//   - constraints within [-0%, +20%] of the compiled Groth16 circuit (and of the PLONK
//     circuit, for SqueezeNet), i.e. an upper bound that is not loose;
//   - memory at least EstimateProgram's (itself above every compile measured), never
//     below it: the structural estimate is what refuses a model before lowering.
func TestEstimateGraphCalibrated(t *testing.T) {
	cfg := quant.DefaultConfig()
	for i, a := range smallArchs {
		b, _, _, err := a.Build()
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		ge, err := EstimateGraph(g, cfg)
		if err != nil {
			t.Fatalf("%s: %v", a.Name(), err)
		}
		p, err := quant.Lower(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
			pe, err := EstimateProgram(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			se := ge.Estimate(sys)
			within := func(what string, got, want int64, lo, hi float64) {
				t.Helper()
				if r := float64(got) / float64(want); r < lo || r > hi {
					t.Errorf("%s %s: %s %d against %d (ratio %.3f, want [%.2f, %.2f])", a.Name(), sys, what, got, want, r, lo, hi)
				}
			}
			within("constraints vs program estimate", se.Constraints, pe.Constraints, 0.95, 1.05)
			within("terms vs program", se.Terms, pe.Terms, 1, 1)
			if se.MemoryBytes < pe.MemoryBytes {
				t.Errorf("%s %s: memory %d MiB below the program estimate's %d MiB", a.Name(), sys, se.MemoryBytes>>20, pe.MemoryBytes>>20)
			}
			if sys == circuits.Groth16 || i == 0 {
				_, st, err := circuits.Compile(p, sys)
				if err != nil {
					t.Fatal(err)
				}
				within("constraints vs compiled", se.Constraints, int64(st.Constraints), 1, 1.2)
			}
		}
		var sum int64
		for _, n := range ge.Nodes {
			sum += n.R1CS
		}
		if sum != ge.Groth16.Constraints {
			t.Errorf("%s: nodes sum to %d of %d constraints", a.Name(), sum, ge.Groth16.Constraints)
		}
	}
}

// TestEstimateGraphAlexNet224: at the published input size (channels / 16), the
// MACs the estimate counts are the architecture's less the padding taps the circuit
// never sums, and the parameters are the model's.
func TestEstimateGraphAlexNet224(t *testing.T) {
	b, _, macs, err := onnxgen.AlexNet{Size: 224, Div: 16, Classes: 1000, FillWeights: true}.Build()
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ge, err := EstimateGraph(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Conv 6@11x11x3, 16@5x5x3 (2 groups), 24@3x3x16, 24@3x3x12 and 16@3x3x12 (2
	// groups) and the fully connected 576x256, 256x256, 256x1000, with their biases.
	want := int64(6*363 + 6 + 16*75 + 16 + 24*144 + 24 + 24*108 + 24 + 16*108 + 16 + 256*576 + 256 + 256*256 + 256 + 1000*256 + 1000)
	if ge.Params != want || ge.MACs > macs || ge.MACs < macs*9/10 {
		t.Errorf("params %d (want %d), MACs %d (with padding taps: %d)", ge.Params, want, ge.MACs, macs)
	}
}

// TestEstimateGraphUnmodeled: an op the structural model does not cost is reported
// (wrapping ErrUnmodeled), so callers fall back to lowering.
func TestEstimateGraphUnmodeled(t *testing.T) {
	b := onnxgen.New("sig", nil)
	x := b.Node("Sigmoid", []string{"input"})
	bytes, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, 4)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 4)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EstimateGraph(g, quant.DefaultConfig()); !errors.Is(err, ErrUnmodeled) {
		t.Fatalf("err %v, want ErrUnmodeled", err)
	}
}

// TestEstimateGraphZeroWeights is the regression test of a memory estimate below the
// program's: in a BVLC AlexNet at 64x64 with channels / 8, conv2's sums have 150 taps
// of two-term inputs (after MaxPool), 301 terms with the bias, just over gnark's
// compress threshold, but most outputs have a weight that quantizes to 0 and no term
// for it: their sums stay below the threshold and cost EstimateBytesPerTerm a term.
func TestEstimateGraphZeroWeights(t *testing.T) {
	b, _, _, err := onnxgen.AlexNet{Size: 64, Div: 8, Classes: 10}.Build()
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ge, err := EstimateGraph(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p, err := quant.Lower(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pe, err := EstimateProgram(p, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	if ge.Groth16.MemoryBytes < pe.MemoryBytes {
		t.Errorf("structural memory %d below the program estimate's %d", ge.Groth16.MemoryBytes, pe.MemoryBytes)
	}
}

// TestEstimateGraphSettings: the structural estimate follows the settings the way
// the program estimate does: witness (private, public, hashed) params, inputs and
// outputs, and bit-decomposed range checks, on the small SqueezeNet and ResNet-50.
// Layers with two witness operands may be checked by random linear combination in the
// lowered program (quant.RLCPlan), which the structural estimate does not model: it
// charges them as direct products, so with witness params it only bounds the program
// estimate's Groth16 constraints.
func TestEstimateGraphSettings(t *testing.T) {
	var cfgs []quant.Config
	for _, vis := range []quant.Visibility{quant.Private, quant.Public, quant.Hashed} {
		cfg := quant.DefaultConfig()
		cfg.ParamVis, cfg.InputVis, cfg.OutputVis = vis, vis, vis
		cfgs = append(cfgs, cfg)
	}
	bitsCfg := quant.DefaultConfig()
	bitsCfg.RangeCheck = "bits"
	cfgs = append(cfgs, bitsCfg)
	for _, a := range smallArchs[:2] {
		b, _, _, err := a.Build()
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range cfgs {
			ge, err := EstimateGraph(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := quant.Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
				pe, err := EstimateProgram(p, sys)
				if err != nil {
					t.Fatal(err)
				}
				se := ge.Estimate(sys)
				lo, hi := 0.95, 1.05
				if cfg.ParamVis != quant.Fixed && sys == circuits.Groth16 {
					lo, hi = 1, 2.5
				}
				if r := float64(se.Constraints) / float64(pe.Constraints); r < lo || r > hi || se.MemoryBytes < pe.MemoryBytes {
					t.Errorf("%s, params %s, range checks %s, %s: %d constraints and %d MiB against %d and %d MiB",
						a.Name(), cfg.ParamVis, cfg.RangeCheck, sys, se.Constraints, se.MemoryBytes>>20, pe.Constraints, pe.MemoryBytes>>20)
				}
			}
		}
	}
}

// TestLoweringBytes: the lowering estimate of a sharded model (LoweringBytes) charges
// index lists only for the terms the lowered program holds as lists (pools), not for
// the structured Conv, Gemm and MatMul layers, on the scaled-down architectures; and on
// SqueezeNet 64x64/4, where the per-parameter and per-activation costs dominate the
// fixed ones, it bounds everything loading and lowering allocate (an upper bound of
// their live heap).
func TestLoweringBytes(t *testing.T) {
	cfg := quant.DefaultConfig()
	for i, a := range append([]onnxgen.Arch{onnxgen.SqueezeNet{Size: 64, Div: 4, Classes: 100}}, smallArchs...) {
		b, _, _, err := a.Build()
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g, err := model.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		p, err := quant.Lower(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		ge, err := EstimateGraph(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var listed, structured int64
		for _, l := range p.Layers {
			switch {
			case l.Kind != quant.KLinear:
			case l.Conv != nil || l.Mat != nil:
				structured += int64(l.NumTerms())
			default:
				listed += int64(l.NumTerms())
			}
		}
		if structured == 0 || ge.ListedTerms() < listed || ge.ListedTerms() >= ge.Groth16.Terms {
			t.Errorf("%s: estimated listed terms %d of %d, lowered %d listed and %d structured", a.Name(), ge.ListedTerms(), ge.Groth16.Terms, listed, structured)
		}
		want := EstimateBaseMemory + ge.ListedTerms()*EstimateProgramBytesPerTerm +
			ge.Params*EstimateLoweringBytesPerParam + ge.Activations*EstimateLoweringBytesPerActivation
		if got := ge.LoweringBytes(); got != want || got >= EstimateBaseMemory+ge.Groth16.Terms*EstimateProgramBytesPerTerm {
			t.Errorf("%s: LoweringBytes %d, want %d, below the listed bound of every term", a.Name(), got, want)
		}
		if lb := ge.LoweringBytes() - EstimateBaseMemory; i == 0 && lb < alloc {
			t.Errorf("%s: lowering estimate %d bytes (beyond the base) below the %d bytes loading and lowering allocated", a.Name(), lb, alloc)
		}
		t.Logf("%s: estimate %d KiB beyond the base, allocated %d KiB; listed terms %d (lowered %d), structured %d; params %d, activations %d",
			a.Name(), (ge.LoweringBytes()-EstimateBaseMemory)>>10, alloc>>10, ge.ListedTerms(), listed, structured, ge.Params, ge.Activations)
	}
}
