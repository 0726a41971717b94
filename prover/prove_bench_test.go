package prover_test

import (
	"bytes"

	"testing"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// benchModels are the models the Go benchmarks run on (see internal/bench).
var benchModels = []string{"mnist_mlp", "mnist_cnn"}

func benchProgram(b *testing.B, name string) (*quant.Program, []*model.Tensor) {
	b.Helper()
	m, err := bench.SyntheticModel(name)
	if err != nil {
		b.Fatal(err)
	}
	g, p, err := prover.Build(m.ONNX, m.Config)
	if err != nil {
		b.Fatal(err)
	}
	in, err := model.ParseInput(m.Input, g)
	if err != nil {
		b.Fatal(err)
	}
	return p, in
}

// BenchmarkNewWitness measures witness generation: quantize inputs, run the integer
// reference, assign the circuit and build gnark's witness.
func BenchmarkNewWitness(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			p, in := benchProgram(b, name)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := prover.NewWitness(p, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroth16Prove measures gnark's Groth16 prover (solver included) with zkml's
// prover options; compile and setup are outside the timed loop.
func BenchmarkGroth16Prove(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			p, in := benchProgram(b, name)
			w, err := prover.NewWitness(p, in)
			if err != nil {
				b.Fatal(err)
			}
			ccs, _, err := circuits.Compile(p, circuits.Groth16)
			if err != nil {
				b.Fatal(err)
			}
			pk, _, err := groth16.Setup(ccs)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := groth16.Prove(ccs, pk, w.Full, prover.ProverOptions(circuits.Groth16)...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
		})
	}
}

// directWitness is the proposed replacement for frontend.NewWitness in
// prover.NewWitness: it fills gnark's witness straight from the layout, in the order
// gnark's schema uses (public then secret), without walking the circuit by reflection.
func directWitness(p *quant.Program, qi, outs [][]int64) (witness.Witness, error) {
	c, err := circuits.Assign(p, qi, outs)
	if err != nil {
		return nil, err
	}
	w, err := witness.New(circuits.Field)
	if err != nil {
		return nil, err
	}
	ch := make(chan any, 256)
	go func() {
		defer close(ch)
		for _, v := range c.Public {
			ch <- v
		}
		for _, v := range c.Secret {
			ch <- v
		}
	}()
	return w, w.Fill(len(c.Public), len(c.Secret), ch)
}

// BenchmarkWitnessDirect measures the proposed witness construction (directWitness) and
// checks it encodes the same witness as prover.NewWitness.
func BenchmarkWitnessDirect(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			p, in := benchProgram(b, name)
			ref, err := prover.NewWitness(p, in)
			if err != nil {
				b.Fatal(err)
			}
			want, _ := ref.Full.MarshalBinary()
			b.ReportAllocs()
			for b.Loop() {
				qi, err := p.QuantizeInputs(in)
				if err != nil {
					b.Fatal(err)
				}
				r, err := p.Eval(qi)
				if err != nil {
					b.Fatal(err)
				}
				w, err := directWitness(p, qi, r.Outputs)
				if err != nil {
					b.Fatal(err)
				}
				if got, _ := w.MarshalBinary(); !bytes.Equal(got, want) {
					b.Fatal("direct witness differs from frontend.NewWitness")
				}
			}
		})
	}
}
