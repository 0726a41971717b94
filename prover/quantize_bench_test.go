//go:build unix

package prover_test

import (
	"os"
	"testing"

	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// BenchmarkQuantize measures quantizing (load, lower with per-tensor widths, model ID)
// on its own: time, bytes allocated (b.ReportAllocs) and the peak of the Go heap
// (objects, including garbage not yet collected, sampled every 2 ms; see
// BenchmarkCompileSqueezeNet), for the example MNIST CNN, the zoo-shaped MNIST CNN
// (onnxgen.ZooMNIST) and a SqueezeNet 1.0 at 64x64 with a quarter of the channels
// (onnxgen.SqueezeNet{64, 4, 100}), the last two also with widths measured on their
// sample input (quant.CalibrateWidths, done before timing). Run with
//
//	go test -run '^$' -bench Quantize -benchtime 3x ./prover/
func BenchmarkQuantize(b *testing.B) {
	mnist, err := os.ReadFile("../examples/mnist_cnn/network.onnx")
	if err != nil {
		b.Fatal(err)
	}
	zoo, zooIn, err := onnxgen.ZooMNIST()
	if err != nil {
		b.Fatal(err)
	}
	squeeze, squeezeIn, _, err := onnxgen.SqueezeNet{Size: 64, Div: 4, Classes: 100}.Build()
	if err != nil {
		b.Fatal(err)
	}
	calibrated := func(onnx, input []byte) quant.Config {
		cfg := quant.DefaultConfig()
		g, err := model.Load(onnx)
		if err != nil {
			b.Fatal(err)
		}
		in, err := model.ParseInput(input, g)
		if err != nil {
			b.Fatal(err)
		}
		if cfg, err = quant.CalibrateWidths(g, cfg, [][]*model.Tensor{in}, 0); err != nil {
			b.Fatal(err)
		}
		return cfg
	}
	def := quant.DefaultConfig()
	for _, m := range []struct {
		name string
		onnx []byte
		cfg  quant.Config
	}{
		{"mnist_cnn", mnist, def},
		{"zoo_mnist", zoo, def},
		{"squeezenet_64x64_div4", squeeze, def},
		{"zoo_mnist_calibrated", zoo, calibrated(zoo, zooIn)},
		{"squeezenet_64x64_div4_calibrated", squeeze, calibrated(squeeze, squeezeIn)},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			var peak int64
			for b.Loop() {
				b.StopTimer()
				gc()
				base := bench.HeapObjects()
				var iterPeak int64
				stop := bench.SampleHeap(&iterPeak)
				b.StartTimer()
				_, p, err := prover.Build(m.onnx, m.cfg)
				if err == nil {
					_, err = prover.ModelID(p)
				}
				b.StopTimer()
				stop()
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, iterPeak-base)
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
		})
	}
}

// BenchmarkLowerFullSize lowers a full-size network (onnxgen's ResNet-50 or VGG-16 at
// 224x224, 1000 classes, weights as ConstantOfShape fills) once and computes its model
// ID: the time and Go heap peak of loading and lowering a network whose convolutions
// have billions of multiply-accumulates (structured layers, #16 item 0). It runs only
// when ZKML_BENCH_FULLSIZE names the network (resnet50 or vgg16): the load alone takes
// gigabytes. Run with
//
//	ZKML_BENCH_FULLSIZE=resnet50 go test -run '^$' -bench LowerFullSize -benchtime 1x ./prover/
func BenchmarkLowerFullSize(b *testing.B) {
	name := os.Getenv("ZKML_BENCH_FULLSIZE")
	if name == "" {
		b.Skip("set ZKML_BENCH_FULLSIZE=resnet50 or vgg16")
	}
	arch, err := onnxgen.ParseArch(name, 224, 1, 1000, true)
	if err != nil {
		b.Fatal(err)
	}
	onnx, _, _, err := arch.Build()
	if err != nil {
		b.Fatal(err)
	}
	// As zkml bench --arch: the float shape inference at load exceeds the per-node
	// work limit of full-size VGG-16.
	defer func(old int64) { model.MaxNodeWork = old }(model.MaxNodeWork)
	model.MaxNodeWork = 1 << 40
	b.ReportAllocs()
	var peak int64
	for b.Loop() {
		b.StopTimer()
		gc()
		base := bench.HeapObjects()
		var iterPeak int64
		stop := bench.SampleHeap(&iterPeak)
		b.StartTimer()
		_, p, err := prover.Build(onnx, quant.DefaultConfig())
		if err == nil {
			_, err = prover.ModelID(p)
		}
		b.StopTimer()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		terms := 0
		for _, l := range p.Layers {
			if l.Kind == quant.KLinear {
				terms += l.NumTerms()
			}
		}
		b.ReportMetric(float64(terms), "terms")
		peak = max(peak, iterPeak-base)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
}
