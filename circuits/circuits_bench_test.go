package circuits_test

import (
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// BenchmarkCompile measures circuits.Compile (Define through gnark's builder) of the
// synthetic MNIST models for both proving systems.
func BenchmarkCompile(b *testing.B) {
	for _, name := range []string{"mnist_mlp", "mnist_cnn"} {
		m, err := bench.SyntheticModel(name)
		if err != nil {
			b.Fatal(err)
		}
		g, err := model.Load(m.ONNX)
		if err != nil {
			b.Fatal(err)
		}
		p, err := quant.Lower(g, m.Config)
		if err != nil {
			b.Fatal(err)
		}
		for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
			b.Run(name+"/"+string(sys), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					ccs, _, err := circuits.Compile(p, sys)
					if err != nil {
						b.Fatal(err)
					}
					n = ccs.GetNbConstraints()
				}
				b.ReportMetric(float64(n), "constraints")
			})
		}
	}
}
