package prover_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/ptautest"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/srs"
)

// BenchmarkProductionSetup measures the production setup paths on the synthetic models
// sized for 2^16, 2^18 and 2^20 Groth16 constraints: ptau import and check (Groth16
// commons, and the KZG SRS for PLONK), phase-2 initialization, one contribution, its
// verification, the seal, and PLONK setup on the imported SRS. The ptau is written by
// ptautest (insecure, known secrets: the checks cost the same as for a real file), in
// the prepared layout. PLONK needs 2-5x the constraints of Groth16, so its domain is
// larger (reported as plonk-domain-log2).
// Each phase is reported as its own metric (seconds), and printed to stderr as soon as
// it ends; run with -benchtime=1x, e.g.
//
//	go test -run '^$' -bench 'ProductionSetup/cnn_2e16' -benchtime 1x -timeout 60m ./prover/
//
// With ZKML_BENCH_SETUP=groth16 only the Groth16 ceremony path runs (the ptau then has
// the Groth16 domain's power: writing one for PLONK's larger domain, with its Lagrange
// blocks, is what takes longest at 2^18 and up).
func BenchmarkProductionSetup(b *testing.B) {
	for _, name := range []string{"cnn_2e16", "cnn_2e18", "cnn_2e20"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchSetup(b, name)
			}
		})
	}
}

func benchSetup(b *testing.B, name string) {
	sm, err := bench.SyntheticModel(name)
	if err != nil {
		b.Fatal(err)
	}
	m, err := prover.Create(b.TempDir(), sm.ONNX, sm.Config)
	if err != nil {
		b.Fatal(err)
	}
	phase := func(metric string, f func() error) {
		b.Helper()
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", metric, err)
		}
		d := time.Since(start).Seconds()
		b.ReportMetric(d, metric)
		fmt.Fprintf(os.Stderr, "%s %s %.2f\n", name, metric, d) // at once: also when a later phase fails or times out
	}
	plonk := os.Getenv("ZKML_BENCH_SETUP") != "groth16"
	syss := []circuits.System{circuits.Groth16}
	if plonk {
		syss = append(syss, circuits.Plonk)
	}
	var gPower, pPower int
	phase("compile-s", func() error {
		for _, sys := range syss {
			if _, err := m.Compile(sys); err != nil {
				return err
			}
		}
		g, _ := m.Circuit(circuits.Groth16)
		gPower, pPower = prover.Groth16Power(g), 0
		if plonk {
			p, _ := m.Circuit(circuits.Plonk)
			pPower = prover.PlonkPower(p)
		}
		return nil
	})
	b.ReportMetric(float64(gPower), "groth16-domain-log2")
	b.ReportMetric(float64(pPower), "plonk-domain-log2")
	// A prepared file at the larger of the two domains, with the Lagrange blocks both
	// setups read.
	ptau := filepath.Join(b.TempDir(), "bench.ptau")
	lagrange := []int{gPower}
	if plonk {
		lagrange = append(lagrange, pPower)
	}
	written := time.Now()
	if err := ptautest.WritePrepared(ptau, max(gPower, pPower), 5, 7, 11, lagrange...); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s ptau written (not a phase) %.2f\n", name, time.Since(written).Seconds())
	if st, err := os.Stat(ptau); err == nil {
		b.ReportMetric(float64(st.Size())/(1<<20), "ptau-MiB")
	}
	cache := b.TempDir()
	phase("import-groth16-s", func() error { _, err := srs.Load(ptau, gPower, srs.Groth16, cache); return err })
	if plonk {
		phase("import-kzg-s", func() error { _, err := srs.Load(ptau, pPower, srs.KZG, cache); return err })
	}
	phase("import-cached-s", func() error { _, err := srs.Load(ptau, gPower, srs.Groth16, cache); return err })
	var c *prover.Ceremony
	phase("phase2-init-s", func() (err error) { c, err = m.CeremonyInit(ptau, cache); return err })
	next := filepath.Join(b.TempDir(), "next.bin")
	phase("contribute-s", func() error { _, err := prover.ContributeFile(c.CurrentFile(), next); return err })
	phase("accept-verify-s", func() error {
		data, err := os.ReadFile(next)
		if err != nil {
			return err
		}
		_, err = c.Accept(data, "bench")
		return err
	})
	phase("seal-s", func() error { return c.Seal(ptau, cache, "beac0000") })
	if plonk {
		phase("plonk-setup-srs-s", func() error { return m.SetupUniversal(ptau, cache) })
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "%s: groth16 2^%d, plonk 2^%d\n", name, gPower, pPower)
	}
}
