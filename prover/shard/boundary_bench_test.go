package shard

import (
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// BenchmarkBoundaries compiles (Groth16) every segment of two plans and the whole
// program, and reports the boundary cost (docs/bench-notes.md, "DAG boundaries"):
// committed boundary values (every value each segment commits, on either side),
// boundary commitments, the segments' constraints and their excess over the whole
// program's. It uses only what a chain plan had too (Split, SplitBudget, Segment.In
// and Out), so the same file measures an older checkout.
//
//	go test ./prover/shard -run '^$' -bench Boundaries -benchtime 1x -v
//
// Models: a ResNet-50 v1 at 32x32 with a sixteenth of the channels, cut at every
// second allowed cut where more than one value is live (inside residual blocks), or
// at every one of them, and
// SqueezeNet 1.0 at 64x64 with a quarter of the channels and 100 classes, cut by
// SplitBudget at 4 GiB and 400,000 constraints (the sharded proof of the notes).
func BenchmarkBoundaries(b *testing.B) {
	for _, c := range []struct {
		name string
		arch onnxgen.Arch
		cuts func(p *quant.Program) ([]int, error)
	}{
		{"resnet50-32-div16", onnxgen.ResNet50{Size: 32, Div: 16, Classes: 10}, inBlocks(2)},
		{"resnet50-32-div16-every", onnxgen.ResNet50{Size: 32, Div: 16, Classes: 10}, inBlocks(1)},
		{"squeezenet-64-div4", onnxgen.SqueezeNet{Size: 64, Div: 4, Classes: 100}, func(p *quant.Program) ([]int, error) {
			pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, bench.Limits{MaxMemoryBytes: 4 << 30, MaxConstraints: 400000})
			if err != nil {
				return nil, err
			}
			return pl.Cuts(), nil
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				m, _, _, err := c.arch.Build()
				if err != nil {
					b.Fatal(err)
				}
				p := lower(b, m, quant.DefaultConfig())
				cuts, err := c.cuts(p)
				if err != nil {
					b.Fatal(err)
				}
				pl, err := Split(p, cuts)
				if err != nil {
					b.Fatal(err)
				}
				values, commitments, total, boundary := 0, 0, 0, 0
				for _, s := range pl.Segments {
					l := circuits.NewLayout(s.Program)
					for _, h := range l.Hashes {
						if h.Domain == circuits.TagBoundary {
							commitments++
						}
					}
					if s.Program.InputVis == quant.Boundary {
						for _, sl := range l.Inputs {
							values += sl.Len
						}
					}
					if s.Program.OutputVis == quant.Boundary {
						for _, sl := range l.Outputs {
							values += sl.Len
						}
					}
					_, st, err := circuits.Compile(s.Program, circuits.Groth16)
					if err != nil {
						b.Fatal(err)
					}
					_, cst, err := circuits.Compile(core(s.Program), circuits.Groth16)
					if err != nil {
						b.Fatal(err)
					}
					total += st.Constraints
					boundary += st.Constraints - cst.Constraints
				}
				_, whole, err := circuits.Compile(p, circuits.Groth16)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%s: %d layers, cuts %v: %d segments, %d boundary values committed, %d boundary commitments, %d boundary constraints, %d constraints (whole program %d, +%d, %.1f%%)",
					c.name, len(p.Layers), cuts, len(pl.Segments), values, commitments, boundary, total, whole.Constraints,
					total-whole.Constraints, 100*float64(total-whole.Constraints)/float64(whole.Constraints))
				b.ReportMetric(float64(values), "boundary-values")
				b.ReportMetric(float64(boundary), "boundary-constraints")
				b.ReportMetric(float64(total-whole.Constraints), "excess-constraints")
			}
		})
	}
}

// core is a segment program without its boundaries: boundary sides private (no
// commitments, no groups) and the boundary range layers dropped (their readers read
// the inputs). A segment's boundary constraints are its own less its core's.
func core(p *quant.Program) *quant.Program {
	q := *p
	for _, f := range []*quant.Visibility{&q.InputVis, &q.OutputVis} {
		if *f == quant.Boundary {
			*f = quant.Private
		}
	}
	// Built field by field, without the boundary groups (which an older checkout's
	// Program does not have), so that this file compiles there too.
	q = quant.Program{Config: q.Config, Values: q.Values, Inputs: q.Inputs, Outputs: q.Outputs, Params: q.Params,
		Tables: q.Tables, InputNames: q.InputNames, OutputNames: q.OutputNames, InputQuant: q.InputQuant, OutputQuant: q.OutputQuant}
	src := map[int]int{}
	for _, l := range p.Layers {
		if l.Op == "Boundary" && l.Kind == quant.KRangeChk {
			src[l.Out] = l.In[0]
			continue
		}
		cp := *l
		cp.In = make([]int, len(l.In))
		for j, id := range l.In {
			cp.In[j] = id
			if s, ok := src[id]; ok {
				cp.In[j] = s
			}
		}
		q.Layers = append(q.Layers, &cp)
	}
	q.Outputs = make([]int, len(p.Outputs))
	for j, id := range p.Outputs {
		q.Outputs[j] = id
		if s, ok := src[id]; ok {
			q.Outputs[j] = s
		}
	}
	return &q
}

// inBlocks cuts at every k-th allowed cut where more than one value is live: inside
// residual blocks (the block's input crosses the cut to its Add).
func inBlocks(k int) func(p *quant.Program) ([]int, error) {
	return func(p *quant.Program) ([]int, error) {
		lv := analyze(p)
		var in []int
		for _, c := range allowed(p) {
			if len(lv.live(c)) > 1 {
				in = append(in, c)
			}
		}
		var cuts []int
		for i := 0; i < len(in); i += k {
			cuts = append(cuts, in[i])
		}
		return cuts, nil
	}
}
