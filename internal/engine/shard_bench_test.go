package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// squeezeSharded compiles the SqueezeNet of the service's TestShardedProofTiming as it
// is compiled there (2 segments) and returns its directory and an input.
func squeezeSharded(b *testing.B, setup bool) (string, []byte) {
	onnx, input, _, err := onnxgen.SqueezeNet{Size: 32, Div: 16, Classes: 4}.Build()
	if err != nil {
		b.Fatal(err)
	}
	_, p, err := prover.Build(onnx, quant.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	whole, err := bench.EstimateProgram(p, circuits.Plonk)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e := &Engine{}
	dir := b.TempDir()
	if _, err := e.Compile(ctx, dir, onnx, fmt.Appendf(nil, `{"shard":{"segment_constraints":%d}}`, whole.Constraints*3/4)); err != nil {
		b.Fatal(err)
	}
	if setup {
		if _, err := e.Setup(ctx, dir, "groth16"); err != nil {
			b.Fatal(err)
		}
	}
	return dir, input
}

// BenchmarkShardedSteps times the steps of one sharded Groth16 proof of that model
// (evaluate, each segment, assemble), in this process and in child processes,
// reporting each step's milliseconds and, of the segments' time, gnark's prover's
// (the rest is mostly reading the segment's circuit and proving key).
func BenchmarkShardedSteps(b *testing.B) {
	dir, input := squeezeSharded(b, true)
	ctx := context.Background()
	for _, child := range []bool{false, true} {
		e := &Engine{}
		name := "in-process"
		if child {
			b.Setenv("ZKML_ENGINE_CHILD", "1")
			e.ChildCommand, name = []string{os.Args[0]}, "child"
		}
		b.Run(name, func(b *testing.B) {
			var prep, segs, asm time.Duration
			var gnark float64
			for b.Loop() {
				t := time.Now()
				acts, n, err := e.PrepareSegments(ctx, dir, "groth16", input)
				if err != nil {
					b.Fatal(err)
				}
				prep += time.Since(t)
				var sps [][]byte
				for i := range n {
					t = time.Now()
					sp, err := e.ProveSegment(ctx, dir, "groth16", acts, i)
					if err != nil {
						b.Fatal(err)
					}
					segs += time.Since(t)
					sps = append(sps, sp)
					var rec struct {
						ProveSeconds float64 `json:"prove_seconds"`
					}
					if err := json.Unmarshal(sp, &rec); err != nil {
						b.Fatal(err)
					}
					gnark += rec.ProveSeconds
				}
				t = time.Now()
				if _, err := e.AssembleBundle(ctx, dir, "groth16", acts, sps); err != nil {
					b.Fatal(err)
				}
				asm += time.Since(t)
			}
			ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
			b.ReportMetric(ms(prep), "prepare-ms")
			b.ReportMetric(ms(segs), "segments-ms")
			b.ReportMetric(gnark*1000/float64(b.N), "gnark-prove-ms")
			b.ReportMetric(ms(asm), "assemble-ms")
		})
	}
}

// BenchmarkShardedSegments times what a worker does for every job of a sharded model
// before running it (Engine.Segments) on the SqueezeNet of the service's
// TestShardedProofTiming, compiled as it is there (2 segments). Figures in
// docs/bench-notes.md.
func BenchmarkShardedSegments(b *testing.B) {
	dir, _ := squeezeSharded(b, false)
	ctx := context.Background()
	e := &Engine{}
	for b.Loop() {
		if n, err := e.Segments(ctx, dir); err != nil || n != 2 {
			b.Fatalf("%d segments, %v", n, err)
		}
	}
}

// BenchmarkShardedSegmentLoad times what a segment job reads before it proves: the
// model directory and plan (openSharded), and every segment's Groth16 circuit and
// proving key (checksummed, decoded), reported per segment.
func BenchmarkShardedSegmentLoad(b *testing.B) {
	dir, _ := squeezeSharded(b, true)
	var open, ccs, pk time.Duration
	var n int
	for b.Loop() {
		t := time.Now()
		m, pl, sys, err := openSharded(dir, "groth16")
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(t)
		n = len(pl.Segments)
		d := shard.Dir{M: m, Sys: sys}
		for i := range n {
			t = time.Now()
			if _, err := d.Circuit(i); err != nil {
				b.Fatal(err)
			}
			ccs += time.Since(t)
			t = time.Now()
			if _, err := d.ProvingKey(i); err != nil {
				b.Fatal(err)
			}
			pk += time.Since(t)
		}
	}
	ms := func(d time.Duration, per int) float64 { return float64(d.Milliseconds()) / float64(b.N*per) }
	b.ReportMetric(ms(open, 1), "open-ms")
	b.ReportMetric(ms(ccs, n), "circuit-ms/segment")
	b.ReportMetric(ms(pk, n), "pk-ms/segment")
}
