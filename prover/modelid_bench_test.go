package prover

import (
	"testing"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// BenchmarkModelID measures the model ID of a SqueezeNet 1.0 at 64x64 with half the
// channels (about 14 M multiply-accumulates, each two int32 index entries in the
// lowered program): the canonical streaming hash, and the JSON-based ID of zkml before
// #16 (jsonModelID, still computed to open old model directories). Run with
//
//	go test -run '^$' -bench ModelID -benchtime 3x ./prover/
func BenchmarkModelID(b *testing.B) {
	onnx, _, macs, err := onnxgen.SqueezeNet{Size: 64, Div: 2, Classes: 100}.Build()
	if err != nil {
		b.Fatal(err)
	}
	_, p, err := Build(onnx, quant.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var terms int
	for _, l := range p.Layers {
		terms += l.NumTerms()
	}
	b.Logf("%d conv MACs, %d linear terms in the program", macs, terms)
	for _, c := range []struct {
		name string
		id   func(*quant.Program) (string, error)
	}{{"canonical", ModelID}, {"json", jsonModelID}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.id(p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(terms), "terms")
		})
	}
}
