//go:build unix

package prover_test

import (
	"fmt"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/scs"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/prover"
)

// BenchmarkModelProve proves mnist_mlp from a model directory as `zkml prove` does,
// one fresh Open per iteration with the cache of decoded objects emptied (as in a new
// process), for each system; compile and setup are outside the timed loop. Besides
// ns/op (the whole sequence) it reports each phase in seconds per proof:
//
//	open-s     prover.Open: read the manifest, rebuild and check the quantized model
//	circuit-s  decode the stored constraint system
//	pk-s       read, checksum and decode the stored proving key
//	vk-s       the same for the verifying key
//	witness-s  prover.NewWitness (quantize the input, integer reference, gnark witness)
//	gnark-s    gnark's prover, solver included (Proof.ProveSeconds)
//	rest-s     the rest of Model.Prove: its own witness, verifying the fresh proof,
//	           serializing it and its public inputs
//	cpu-s      the process's CPU time (user + system, all threads) for the sequence
//	prove-cpu-s  the same for Model.Prove alone
//
// plus the circuit's constraints and log2 of its FFT domain. On a shared machine the
// wall times grow with the load, the CPU times much less: CPU time divided by the
// cores is a lower bound of the wall time on the same machine idle (reached when
// every core is kept busy). For example
//
//	nice go test -run '^$' -bench ModelProve -benchtime 5x ./prover/
func BenchmarkModelProve(b *testing.B) {
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		b.Run(string(sys)+"/mnist_mlp", func(b *testing.B) {
			m, in := setupBenchModel(b, "mnist_mlp", sys)
			ccs, err := m.Circuit(sys)
			if err != nil {
				b.Fatal(err)
			}
			power := prover.PlonkPower(ccs)
			if sys == circuits.Groth16 {
				power = prover.Groth16Power(ccs)
			}
			var sum [9]float64
			for b.Loop() {
				cpu0 := cpuSeconds(b)
				prover.DropDecodedForTest()
				var t [9]float64
				lap := func(i int, f func() error) {
					start := time.Now()
					if err := f(); err != nil {
						b.Fatal(err)
					}
					t[i] = time.Since(start).Seconds()
				}
				var om *prover.Model
				lap(0, func() (err error) { om, err = prover.Open(m.Dir); return err })
				lap(1, func() error { _, err := om.Circuit(sys); return err })
				lap(2, func() error { _, err := om.ProvingKey(sys); return err })
				lap(3, func() error { _, err := om.VerifyingKey(sys); return err })
				lap(4, func() error { _, err := prover.NewWitness(om.Program, in); return err })
				var p *prover.Proof
				cpu1 := cpuSeconds(b)
				lap(6, func() (err error) { p, err = om.Prove(sys, in); return err })
				cpu2 := cpuSeconds(b)
				t[5], t[6] = p.ProveSeconds, t[6]-p.ProveSeconds
				t[7], t[8] = cpu2-cpu0, cpu2-cpu1
				for i := range t {
					sum[i] += t[i]
				}
			}
			for i, name := range []string{"open-s", "circuit-s", "pk-s", "vk-s", "witness-s", "gnark-s", "rest-s", "cpu-s", "prove-cpu-s"} {
				b.ReportMetric(sum[i]/float64(b.N), name)
			}
			b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
			b.ReportMetric(float64(power), "domain-log2")
		})
	}
}

// setupBenchModel makes a model directory for the synthetic model name with sys
// compiled and its development keys, and returns it with the model's sample input.
func setupBenchModel(b *testing.B, name string, sys circuits.System) (*prover.Model, []*model.Tensor) {
	b.Helper()
	sm, err := bench.SyntheticModel(name)
	if err != nil {
		b.Fatal(err)
	}
	m, err := prover.Create(b.TempDir(), sm.ONNX, sm.Config)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Compile(sys); err != nil {
		b.Fatal(err)
	}
	if err := m.Setup(sys); err != nil {
		b.Fatal(err)
	}
	in, err := model.ParseInput(sm.Input, m.Graph)
	if err != nil {
		b.Fatal(err)
	}
	return m, in
}

// cpuSeconds is the process's CPU time so far, user and system, in seconds.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// squareChain is a PLONK circuit of about N gates: N squarings of a secret, the last
// one public, with one BSB22 commitment (as a lookup range argument makes).
type squareChain struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
	N int               `gnark:"-"`
}

func (c *squareChain) Define(api frontend.API) error {
	v := c.X
	var early []frontend.Variable
	for i := range c.N {
		v = api.Mul(v, v)
		if i < 8 {
			early = append(early, v)
		}
	}
	cm, err := api.(frontend.Committer).Commit(early...)
	if err != nil {
		return err
	}
	api.AssertIsDifferent(cm, 0)
	api.AssertIsEqual(v, c.Y)
	return nil
}

// BenchmarkPlonkProveDomain measures gnark's PLONK prover with zkml's prover options
// on circuits that fill 7/8 of FFT domains of 2^12 to 2^16 rows (mnist_mlp fills 88%
// of 2^16), reporting the process's CPU time per proof (cpu-s): how PLONK's prove
// time scales with the domain, whatever the circuit, on this machine.
func BenchmarkPlonkProveDomain(b *testing.B) {
	for k := 12; k <= 16; k++ {
		b.Run(fmt.Sprintf("2^%d", k), func(b *testing.B) {
			n := (1<<k)*7/8 - 16
			ccs, err := frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, &squareChain{N: n})
			if err != nil {
				b.Fatal(err)
			}
			if got := prover.PlonkPower(ccs); got != k {
				b.Fatalf("domain 2^%d, want 2^%d", got, k)
			}
			x := big.NewInt(3)
			y := new(big.Int).Set(x)
			for range n {
				y.Mul(y, y).Mod(y, ecc.BN254.ScalarField())
			}
			full, err := frontend.NewWitness(&squareChain{X: x, Y: y, N: n}, ecc.BN254.ScalarField())
			if err != nil {
				b.Fatal(err)
			}
			pk, _, err := prover.SetupKeys(ccs, circuits.Plonk)
			if err != nil {
				b.Fatal(err)
			}
			var cpu float64
			for b.Loop() {
				c0 := cpuSeconds(b)
				if _, err := prover.ProveWitness(circuits.Plonk, ccs, pk, full); err != nil {
					b.Fatal(err)
				}
				cpu += cpuSeconds(b) - c0
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s")
			b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
		})
	}
}
