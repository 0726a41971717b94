package conformance

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// BenchmarkRLC measures the random-linear-combination check of linear layers (#16):
// each model is lowered as the lowering chooses ("rlc") and compiled again with every
// layer forced direct ("direct", what the program was before the check existed), and
// with ZKML_RLC_FIXED=1 also with the check forced onto the layers the lowering leaves
// direct because a fixed operand makes their products free ("forced"). It reports
// Groth16 constraints, the constraint system's serialized size (its memory), the
// compile time, with ZKML_RLC_PLONK=1 the PLONK constraints and, with
// ZKML_RLC_PROVE=1, one Groth16 development setup, prove and verify. Long; not run in
// CI.
func BenchmarkRLC(b *testing.B) {
	type target struct {
		name string
		load func(b *testing.B) (*model.Graph, []*model.Tensor, quant.Config)
	}
	transformer := func(tr onnxgen.Transformer, vis quant.Visibility) func(b *testing.B) (*model.Graph, []*model.Tensor, quant.Config) {
		return func(b *testing.B) (*model.Graph, []*model.Tensor, quant.Config) {
			m, err := tr.Build("bench_" + tr.Style)
			if err != nil {
				b.Fatal(err)
			}
			g, err := model.Load(m.ONNX)
			if err != nil {
				b.Fatal(err)
			}
			ids := model.NewTensor(1, tr.Seq)
			for i := range ids.Data {
				ids.Data[i] = float64((i * 7) % tr.Vocab)
			}
			cfg := Config()
			cfg.ParamVis = vis
			return g, []*model.Tensor{ids}, cfg
		}
	}
	cnn := func(vis quant.Visibility) func(b *testing.B) (*model.Graph, []*model.Tensor, quant.Config) {
		return func(b *testing.B) (*model.Graph, []*model.Tensor, quant.Config) {
			raw, err := os.ReadFile("../../examples/mnist_cnn/network.onnx")
			if err != nil {
				b.Fatal(err)
			}
			g, err := model.Load(raw)
			if err != nil {
				b.Fatal(err)
			}
			ib, err := os.ReadFile("../../examples/mnist_cnn/input.json")
			if err != nil {
				b.Fatal(err)
			}
			in, err := model.ParseInput(ib, g)
			if err != nil {
				b.Fatal(err)
			}
			cfg := quant.DefaultConfig()
			cfg.ParamVis = vis
			return g, in, cfg
		}
	}
	gpt2 := onnxgen.Transformer{Style: "gpt2", Vocab: 64, Seq: 16, DModel: 64, Heads: 2, FF: 256, Layers: 1}
	bert := onnxgen.Transformer{Style: "bert", Vocab: 64, Seq: 16, DModel: 64, Heads: 2, FF: 256, Layers: 1, Pad: 4}
	for _, tg := range []target{
		{"gpt2", transformer(gpt2, quant.Fixed)},
		{"bert", transformer(bert, quant.Fixed)},
		{"gpt2_private", transformer(gpt2, quant.Private)},
		{"mnist_cnn_private", cnn(quant.Private)},
		{"mnist_cnn_fixed", cnn(quant.Fixed)},
	} {
		b.Run(tg.name, func(b *testing.B) {
			g, in, cfg := tg.load(b)
			p, err := quant.Lower(g, cfg)
			if err != nil {
				b.Fatal(err)
			}
			chosen := map[*quant.Layer]int{}
			var names []string
			for _, l := range p.Layers {
				if l.RLC > 0 {
					chosen[l] = l.RLC
					names = append(names, fmt.Sprintf("%s(%s)", l.Name, l.Op))
				}
			}
			b.Logf("%s: %d layers checked by RLC: %v", tg.name, len(chosen), names)
			set := func(mode string) {
				for _, l := range p.Layers {
					l.RLC = 0
					switch {
					case mode == "rlc":
						l.RLC = chosen[l]
					case mode == "forced" && l.Kind == quant.KLinear && (l.Op == "Conv" || l.Op == "Gemm" || l.Op == "MatMul"):
						l.RLC = rowWidth(p, l)
					}
				}
			}
			modes := []string{"direct", "rlc"}
			if os.Getenv("ZKML_RLC_FIXED") == "1" {
				modes = append(modes, "forced")
			}
			for _, mode := range modes {
				set(mode)
				runtime.GC()
				start := time.Now()
				ccs, st, err := circuits.Compile(p, circuits.Groth16)
				if err != nil {
					b.Fatal(err)
				}
				compile := time.Since(start)
				var buf bytes.Buffer
				if _, err := ccs.WriteTo(&buf); err != nil {
					b.Fatal(err)
				}
				line := fmt.Sprintf("%s %s: %d constraints, %d internal variables, constraint system %.1f MiB, compile %.1fs",
					tg.name, mode, st.Constraints, st.Internal, float64(buf.Len())/(1<<20), compile.Seconds())
				if os.Getenv("ZKML_RLC_PROVE") == "1" && mode != "forced" {
					w, err := prover.NewWitness(p, in)
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					if _, err := prover.ProveProgram(p, circuits.Groth16, w); err != nil {
						b.Fatal(err)
					}
					line += fmt.Sprintf(", setup+prove+verify %.1fs", time.Since(start).Seconds())
				}
				if os.Getenv("ZKML_RLC_PLONK") == "1" {
					_, ps, err := circuits.Compile(p, circuits.Plonk)
					if err != nil {
						b.Fatal(err)
					}
					line += fmt.Sprintf(", PLONK %d constraints", ps.Constraints)
				}
				b.Log(line)
			}
			set("rlc")
		})
	}
}

// rowWidth is the row width the lowering gives a Conv (spatial outputs per channel),
// Gemm or MatMul (the result's last dimension).
func rowWidth(p *quant.Program, l *quant.Layer) int {
	s := p.Values[l.Out].Shape
	if l.Op == "Conv" {
		n := 1
		for _, d := range s[2:] {
			n *= d
		}
		return n
	}
	return s[len(s)-1]
}
