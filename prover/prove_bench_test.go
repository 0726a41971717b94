package prover_test

import (
	"testing"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// benchModels are the models the Go benchmarks run on (see internal/bench).
var benchModels = []string{"mnist_mlp", "mnist_cnn"}

func benchProgram(b testing.TB, name string) (*quant.Program, []*model.Tensor) {
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

// benchCircuit returns model name's witness and its circuit compiled for sys.
func benchCircuit(b *testing.B, name string, sys circuits.System) (constraint.ConstraintSystem, *prover.Witness) {
	b.Helper()
	p, in := benchProgram(b, name)
	w, err := prover.NewWitness(p, in)
	if err != nil {
		b.Fatal(err)
	}
	ccs, _, err := circuits.Compile(p, sys)
	if err != nil {
		b.Fatal(err)
	}
	return ccs, w
}

// BenchmarkGroth16Prove measures gnark's Groth16 prover (solver included) with zkml's
// prover options; compile and setup are outside the timed loop.
func BenchmarkGroth16Prove(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			ccs, w := benchCircuit(b, name, circuits.Groth16)
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

// BenchmarkPlonkProve measures gnark's PLONK prover (solver included) with zkml's
// prover options on keys from the development setup, as BenchmarkGroth16Prove does for
// Groth16; compile and setup are outside the timed loop. It reports the circuit's
// constraints and log2 of the FFT domain the prover works on (its quotient is computed
// on a coset domain four times that size).
func BenchmarkPlonkProve(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			ccs, w := benchCircuit(b, name, circuits.Plonk)
			pk, _, err := prover.SetupKeys(ccs, circuits.Plonk)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plonk.Prove(ccs, pk.(plonk.ProvingKey), w.Full, prover.ProverOptions(circuits.Plonk)...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
			b.ReportMetric(float64(prover.PlonkPower(ccs)), "domain-log2")
		})
	}
}
