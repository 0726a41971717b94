//go:build unix

package prover_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// BenchmarkCompileSqueezeNet measures where memory goes when compiling a scaled-down
// SqueezeNet 1.0 (onnxgen.SqueezeNet): the peak live heap of quantizing (load, lower,
// model ID) and of compiling the Groth16 circuit, per multiply-accumulate of the
// lowered program's linear layers and per constraint. ZKML_SQUEEZENET=SIZE:DIV picks
// the network (default 64:4, about 5 M MACs); with -memprofile the profile is the
// allocation sites. With ZKML_LIVE_PROFILE=FILE the compile is also sampled for its
// live set: whenever the heap has grown 20% above the last live set, a GC runs and the
// heap profile (inuse_space: what is live, by allocation site) is written to FILE, so
// FILE ends up describing the compile's largest live set (this slows the compile and
// lowers its peak). Run with
//
//	ZKML_SQUEEZENET=64:4 go test -run '^$' -bench CompileSqueezeNet -benchtime 1x -memprofile mem.out ./prover/
func BenchmarkCompileSqueezeNet(b *testing.B) {
	size, div := 64, 4
	if v := os.Getenv("ZKML_SQUEEZENET"); v != "" {
		s, d, ok := strings.Cut(v, ":")
		var err1, err2 error
		size, err1 = strconv.Atoi(s)
		div, err2 = strconv.Atoi(d)
		if !ok || err1 != nil || err2 != nil {
			b.Fatalf("ZKML_SQUEEZENET=%q: want SIZE:DIV", v)
		}
	}
	onnx, _, _, err := onnxgen.SqueezeNet{Size: size, Div: div, Classes: 100}.Build()
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("%dx%d_div%d", size, size, div), func(b *testing.B) { measureCompile(b, onnx) })
}

// BenchmarkCompileConv is BenchmarkCompileSqueezeNet on one wide convolution, whose
// multiply-accumulates outnumber its constraints far more than in SqueezeNet's: an
// input of C channels of HxH, Conv C@KxK (same padding), Relu. ZKML_CONV=C:K:H
// (default 32:5:16: 6.5 M MACs, 8192 outputs). Together they separate the memory per
// MAC from the memory per constraint.
func BenchmarkCompileConv(b *testing.B) {
	c, k, h := 32, 5, 16
	if v := os.Getenv("ZKML_CONV"); v != "" {
		if _, err := fmt.Sscanf(v, "%d:%d:%d", &c, &k, &h); err != nil {
			b.Fatalf("ZKML_CONV=%q: want C:K:H", v)
		}
	}
	g := onnxgen.Seeded("conv")
	w := g.Init("w", onnxgen.HeScale(c*k*k), int64(c), int64(c), int64(k), int64(k))
	bias := g.Init("b", 0.05, int64(c))
	p := int64(k / 2)
	x := g.Node("Conv", []string{"input", w, bias}, onnxgen.Ints("kernel_shape", int64(k), int64(k)), onnxgen.Ints("pads", p, p, p, p))
	x = g.Node("Relu", []string{x})
	model, err := g.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, int64(c), int64(h), int64(h))},
		[]*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, int64(c), int64(h), int64(h))}, 7, 13)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("%dx%dx%d_k%d", c, h, h, k), func(b *testing.B) { measureCompile(b, model) })
}

// measureCompile quantizes and compiles a model once per iteration and reports its
// memory (see BenchmarkCompileSqueezeNet).
func measureCompile(b *testing.B, onnx []byte) {
	for b.Loop() {
		gc()
		base := bench.HeapObjects()
		var lowerPeak, compilePeak int64
		stop := bench.SampleHeap(&lowerPeak)
		_, p, err := prover.Build(onnx, quant.DefaultConfig())
		if err == nil {
			_, err = prover.ModelID(p)
		}
		stop()
		if err != nil {
			b.Fatal(err)
		}
		gc()
		program := bench.HeapObjects() - base
		var terms int64
		for _, l := range p.Layers {
			terms += int64(l.NumTerms())
		}
		est, err := bench.EstimateProgram(p, circuits.Groth16)
		if err != nil {
			b.Fatal(err)
		}
		stop = bench.SampleHeap(&compilePeak)
		stopLive := sampleLive(b, os.Getenv("ZKML_LIVE_PROFILE"))
		start := time.Now()
		ccs, st, err := circuits.Compile(p, circuits.Groth16)
		stopLive()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			b.ReportMetric(float64(ru.Maxrss)/1e3, "maxrss-MB") // KiB on Linux; before serializing
		}
		var size countWriter
		if _, err := ccs.WriteTo(&size); err != nil {
			b.Fatal(err)
		}
		n := float64(st.Constraints)
		b.ReportMetric(float64(terms), "MACs")
		b.ReportMetric(n, "constraints")
		b.ReportMetric(float64(program)/float64(terms), "program-B/MAC")
		b.ReportMetric(float64(lowerPeak-base)/1e6, "quantize-peak-MB")
		b.ReportMetric(float64(compilePeak-base)/1e6, "compile-peak-MB")
		b.ReportMetric(float64(compilePeak-base)/float64(terms), "compile-peak-B/MAC")
		b.ReportMetric(float64(size)/1e6, "ccs-file-MB")
		b.ReportMetric(secs, "compile-s")
		b.ReportMetric(float64(est.MemoryBytes)/1e6, "estimate-MB")
		b.Logf("%d MACs, %d constraints: program %.0f MB, quantize peak %.0f MB, compile peak %.0f MB, circuit file %.0f MB, compile %.1fs",
			terms, st.Constraints, float64(program)/1e6, float64(lowerPeak-base)/1e6, float64(compilePeak-base)/1e6, float64(size)/1e6, secs)
	}
}

// gc collects twice, so that what sync.Pools keep (a pool's objects survive one
// collection) is not counted as live.
func gc() {
	runtime.GC()
	runtime.GC()
}

// countWriter counts the bytes written to it.
type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// sampleLive writes the heap profile of the largest live set to path (see
// BenchmarkCompileSqueezeNet) until the returned stop is called; path "" does nothing.
func sampleLive(b *testing.B, path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var live int64
		defer func() { b.Logf("largest live set %.0f MB (profile %s)", float64(live)/1e6, path) }()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if bench.HeapObjects() < live*6/5 {
				continue
			}
			runtime.GC()
			if now := bench.HeapObjects(); now > live {
				live = now
				var buf bytes.Buffer
				if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil || os.WriteFile(path, buf.Bytes(), 0o644) != nil {
					b.Errorf("heap profile: %v", err)
					return
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
