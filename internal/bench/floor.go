package bench

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/constraint/solver"
	fcs "github.com/consensys/gnark/frontend/cs"
)

// Floor is the work a Groth16 prover cannot avoid for a circuit, timed with
// gnark-crypto alone. Counted from gnark v0.16.3 backend/groth16/bn254/prove.go:
//
//   - G1 MSMs: [A] over the wires not at infinity in A (len pk.G1.A), [B]₁ likewise
//     (len pk.G1.B), [K] over the private wires (len pk.G1.K), [Z] over the quotient
//     h (domain size - 1), and per BSB22 commitment a Pedersen commitment and its proof
//     of knowledge over the privately committed wires (len Basis, twice);
//   - one G2 MSM: [B]₂ (len pk.G2.B);
//   - 7 FFTs of the domain size in computeH: 3 inverse FFTs (DIF), 3 coset FFTs (DIT)
//     and 1 inverse coset FFT (DIF), plus an element-wise product.
//
// Scalars are uniformly random field elements: the cost of a generic witness. Real
// witnesses hold many small values (range-check limbs, booleans), which gnark-crypto's
// MSM processes faster, so a prover can come in under this floor on the MSM part.
type Floor struct {
	G1Sizes []int   `json:"g1_msm_sizes"`
	G2Size  int     `json:"g2_msm_size"`
	FFTSize int     `json:"fft_size"`
	NbFFT   int     `json:"fft_count"`
	G1S     float64 `json:"g1_msm_s"`
	G2S     float64 `json:"g2_msm_s"`
	FFTS    float64 `json:"fft_s"`
	TotalS  float64 `json:"total_s"`
	// The same MSMs with the circuit's own wire values as scalars (solved from the
	// benchmark witness; [Z] keeps random scalars, as h is full-width): the floor for
	// this witness. Zero when not measured.
	WitG1S    float64 `json:"witness_g1_msm_s,omitempty"`
	WitG2S    float64 `json:"witness_g2_msm_s,omitempty"`
	WitTotalS float64 `json:"witness_total_s,omitempty"`
}

// MeasureFloor times the MSMs and FFTs a Groth16 proof with pk must do, each phase the
// median of n runs, using pk's own points and domain.
func MeasureFloor(pk *groth16bn254.ProvingKey, n int) *Floor {
	card := int(pk.Domain.Cardinality)
	f := &Floor{FFTSize: card, NbFFT: 7, G2Size: len(pk.G2.B)}
	g1 := [][]curve.G1Affine{pk.G1.A, pk.G1.B, pk.G1.K, pk.G1.Z[:min(len(pk.G1.Z), card-1)]}
	for _, ck := range pk.CommitmentKeys {
		g1 = append(g1, ck.Basis, ck.BasisExpSigma)
	}
	maxLen := card
	for _, pts := range g1 {
		f.G1Sizes = append(f.G1Sizes, len(pts))
		maxLen = max(maxLen, len(pts))
	}
	maxLen = max(maxLen, len(pk.G2.B))
	scalars := randomScalars(maxLen)
	cfg := ecc.MultiExpConfig{}
	var t1, t2, tf []float64
	for range max(n, 1) {
		start := time.Now()
		for _, pts := range g1 {
			var acc curve.G1Jac
			_, _ = acc.MultiExp(pts, scalars[:len(pts)], cfg)
		}
		t1 = append(t1, time.Since(start).Seconds())

		start = time.Now()
		var acc2 curve.G2Jac
		_, _ = acc2.MultiExp(pk.G2.B, scalars[:len(pk.G2.B)], cfg)
		t2 = append(t2, time.Since(start).Seconds())

		a := append([]fr.Element(nil), scalars[:card]...)
		b := append([]fr.Element(nil), scalars[:card]...)
		c := append([]fr.Element(nil), scalars[:card]...)
		start = time.Now()
		fftWork(&pk.Domain, a, b, c)
		tf = append(tf, time.Since(start).Seconds())
	}
	f.G1S, f.G2S, f.FFTS = median(t1), median(t2), median(tf)
	f.TotalS = f.G1S + f.G2S + f.FFTS
	return f
}

// MeasureWitnessFloor adds to f the MSM times with the wire values of full (solved on
// ccs) as scalars, in the layout gnark's prover uses: wires not at infinity for [A] and
// [B], private wires for [K] (commitment wires not removed: same length, close values).
func (f *Floor) MeasureWitnessFloor(pk *groth16bn254.ProvingKey, ccs constraint.ConstraintSystem, full witness.Witness, n int) error {
	id := solver.GetHintID(fcs.Bsb22CommitmentComputePlaceholder)
	// Any challenge satisfies a correct log-derivative argument, so a fixed one solves.
	sol, err := ccs.Solve(full, solver.OverrideHint(id, func(_ *big.Int, _ []*big.Int, out []*big.Int) error {
		out[0].SetUint64(0x5eed)
		return nil
	}))
	if err != nil {
		return err
	}
	rs, ok := sol.(*csbn254.R1CSSolution)
	if !ok {
		return fmt.Errorf("floor: not a BN254 R1CS solution")
	}
	w := []fr.Element(rs.W)
	filter := func(inf []bool, n int) []fr.Element {
		out := make([]fr.Element, 0, n)
		for i, v := range w {
			if i < len(inf) && inf[i] {
				continue
			}
			out = append(out, v)
		}
		return out[:min(n, len(out))]
	}
	nbPub := ccs.GetNbPublicVariables()
	type job struct {
		pts []curve.G1Affine
		sc  []fr.Element
	}
	rnd := randomScalars(int(pk.Domain.Cardinality))
	g1 := []job{{pk.G1.A, filter(pk.InfinityA, len(pk.G1.A))}, {pk.G1.B, filter(pk.InfinityB, len(pk.G1.B))},
		{pk.G1.K, w[nbPub:min(len(w), nbPub+len(pk.G1.K))]}, {pk.G1.Z[:f.G1Sizes[3]], rnd[:f.G1Sizes[3]]}}
	for _, ck := range pk.CommitmentKeys {
		sc := w[nbPub:min(len(w), nbPub+len(ck.Basis))]
		g1 = append(g1, job{ck.Basis, sc}, job{ck.BasisExpSigma, sc})
	}
	b2 := filter(pk.InfinityB, len(pk.G2.B))
	cfg := ecc.MultiExpConfig{}
	var t1, t2 []float64
	for range max(n, 1) {
		start := time.Now()
		for _, j := range g1 {
			var acc curve.G1Jac
			k := min(len(j.pts), len(j.sc))
			if _, err := acc.MultiExp(j.pts[:k], j.sc[:k], cfg); err != nil {
				return err
			}
		}
		t1 = append(t1, time.Since(start).Seconds())
		start = time.Now()
		var acc2 curve.G2Jac
		k := min(len(pk.G2.B), len(b2))
		if _, err := acc2.MultiExp(pk.G2.B[:k], b2[:k], cfg); err != nil {
			return err
		}
		t2 = append(t2, time.Since(start).Seconds())
	}
	f.WitG1S, f.WitG2S = median(t1), median(t2)
	f.WitTotalS = f.WitG1S + f.WitG2S + f.FFTS
	return nil
}

// fftWork is computeH's FFT work (without its padding copies).
func fftWork(d *fft.Domain, a, b, c []fr.Element) {
	d.FFTInverse(a, fft.DIF)
	d.FFTInverse(b, fft.DIF)
	d.FFTInverse(c, fft.DIF)
	d.FFT(a, fft.DIT, fft.OnCoset())
	d.FFT(b, fft.DIT, fft.OnCoset())
	d.FFT(c, fft.DIT, fft.OnCoset())
	parallel(len(a), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a[i].Mul(&a[i], &b[i]).Sub(&a[i], &c[i])
		}
	})
	d.FFTInverse(a, fft.DIF, fft.OnCoset())
}

// parallel splits [0, n) over the CPUs, as gnark's utils.Parallelize does.
func parallel(n int, f func(lo, hi int)) {
	k := runtime.NumCPU()
	var wg sync.WaitGroup
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		wg.Add(1)
		go func() { defer wg.Done(); f(lo, hi) }()
	}
	wg.Wait()
}

// randomScalars returns n pseudo-random field elements (full-width: below 2^253 in
// Montgomery form, so valid and uniformly spread).
func randomScalars(n int) []fr.Element {
	rng := rand.New(rand.NewPCG(1, 2))
	s := make([]fr.Element, n)
	for i := range s {
		s[i] = fr.Element{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64() >> 3}
	}
	return s
}
