package prover

import (
	"math"
	"math/big"
	"slices"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	"github.com/consensys/gnark-crypto/utils"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkml/zkml/srs"
)

// initPhase2 initializes phase 2 like gnark's Phase2.Initialize, byte for byte (tested),
// but takes the Lagrange bases from a prepared ptau (checked on import) instead of
// computing them: gnark computes four FFTs over affine curve points, which dominate the
// initialization (minutes at 2^16). Without the bases (a plain file) it is gnark's own
// Initialize. The code after the bases follows gnark v0.16.3's Initialize
// (backend/groth16/bn254/mpcsetup/phase2.go, Apache-2.0).
func initPhase2(p *gmpc.Phase2, r1cs *cs.R1CS, commons *gmpc.SrsCommons, s *srs.SRS) gmpc.Phase2Evaluations {
	n := len(commons.G1.AlphaTau)
	if len(s.LagrangeG2) != n || len(s.LagrangeG1) != n || n < r1cs.GetNbConstraints() {
		return p.Initialize(r1cs, commons)
	}
	coeffTau1, coeffTau2, coeffAlphaTau1, coeffBetaTau1 := s.LagrangeG1, s.LagrangeG2, s.LagrangeAlphaG1, s.LagrangeBetaG1

	accumulateG1 := accumulator[curve.G1Affine](r1cs)
	accumulateG2 := accumulator[curve.G2Affine](r1cs)

	nbInternal, nbSecret, nbPublic := r1cs.GetNbVariables()
	nWires := nbInternal + nbSecret + nbPublic
	var evals gmpc.Phase2Evaluations
	commitments := r1cs.CommitmentInfo.(constraint.Groth16Commitments)
	evals.PublicAndCommitmentCommitted = commitments.GetPublicAndCommitmentCommitted(commitments.CommitmentIndexes(), nbPublic)
	evals.G1.A = make([]curve.G1Affine, nWires)
	evals.G1.B = make([]curve.G1Affine, nWires)
	evals.G2.B = make([]curve.G2Affine, nWires)
	bA := make([]curve.G1Affine, nWires)
	aB := make([]curve.G1Affine, nWires)
	C := make([]curve.G1Affine, nWires)

	i := 0
	it := r1cs.GetR1CIterator()
	for c := it.Next(); c != nil; c = it.Next() {
		for _, t := range c.L {
			accumulateG1(&evals.G1.A[t.WireID()], t, &coeffTau1[i])
			accumulateG1(&bA[t.WireID()], t, &coeffBetaTau1[i])
		}
		for _, t := range c.R {
			accumulateG1(&evals.G1.B[t.WireID()], t, &coeffTau1[i])
			accumulateG2(&evals.G2.B[t.WireID()], t, &coeffTau2[i])
			accumulateG1(&aB[t.WireID()], t, &coeffAlphaTau1[i])
		}
		for _, t := range c.O {
			accumulateG1(&C[t.WireID()], t, &coeffTau1[i])
		}
		i++
	}

	_, _, g1, g2 := curve.Generators()
	p.Parameters.G1.Delta = g1
	p.Parameters.G2.Delta = g2

	// Z[i] = τⁱ(τⁿ - 1) = τ⁽ⁱ⁺ⁿ⁾ - τⁱ for i ∈ [0, n-2], bit-reversed over n entries.
	p.Parameters.G1.Z = make([]curve.G1Affine, n)
	for i := range n - 1 {
		p.Parameters.G1.Z[i].Sub(&commons.G1.Tau[i+n], &commons.G1.Tau[i])
	}
	utils.BitReverse(p.Parameters.G1.Z)
	p.Parameters.G1.Z = p.Parameters.G1.Z[:n-1]

	evals.G1.CKK = make([][]curve.G1Affine, len(commitments))
	p.Sigmas = make([]mpcsetup.UpdateProof, len(commitments))
	p.Parameters.G1.SigmaCKK = make([][]curve.G1Affine, len(commitments))
	p.Parameters.G2.Sigma = make([]curve.G2Affine, len(commitments))
	for j := range commitments {
		evals.G1.CKK[j] = make([]curve.G1Affine, 0, len(commitments[j].PrivateCommitted))
		p.Parameters.G2.Sigma[j] = g2
	}

	private := commitments.GetPrivateCommitted()
	nbCommitted := 0
	for _, c := range private {
		nbCommitted += len(c)
	}
	p.Parameters.G1.PKK = make([]curve.G1Affine, 0, nbInternal+nbSecret-nbCommitted-len(commitments))
	evals.G1.VKK = make([]curve.G1Affine, 0, nbPublic+len(commitments))
	committed := newMergeIterator(private)
	nbCommitmentsSeen := 0
	for j := 0; j < nWires; j++ {
		// δ = γ = 1 so far: VKK and PKK are both βA + αB + C.
		var tmp curve.G1Affine
		tmp.Add(&bA[j], &aB[j])
		tmp.Add(&tmp, &C[j])
		commitmentIndex := committed.indexIfNext(j)
		isCommitment := nbCommitmentsSeen < len(commitments) && commitments[nbCommitmentsSeen].CommitmentIndex == j
		if commitmentIndex != -1 {
			evals.G1.CKK[commitmentIndex] = append(evals.G1.CKK[commitmentIndex], tmp)
		} else if j < nbPublic || isCommitment {
			evals.G1.VKK = append(evals.G1.VKK, tmp)
		} else {
			p.Parameters.G1.PKK = append(p.Parameters.G1.PKK, tmp)
		}
		if isCommitment {
			nbCommitmentsSeen++
		}
	}
	for j := range commitments {
		p.Parameters.G1.SigmaCKK[j] = slices.Clone(evals.G1.CKK[j])
	}
	p.Challenge = nil
	return evals
}

// affine is a G1 or G2 point in affine coordinates.
type affine[T any] interface {
	*T
	Add(a, b *T) *T
	Sub(a, b *T) *T
	ScalarMultiplication(a *T, s *big.Int) *T
}

// accumulator returns the function that adds coefficient·value to res for a term of
// r1cs (gnark's accumulateG1/G2).
func accumulator[T any, P affine[T]](r1cs *cs.R1CS) func(res *T, t constraint.Term, value *T) {
	return func(res *T, t constraint.Term, value *T) {
		switch cID := t.CoeffID(); cID {
		case constraint.CoeffIdZero:
		case constraint.CoeffIdOne:
			P(res).Add(res, value)
		case constraint.CoeffIdMinusOne:
			P(res).Sub(res, value)
		case constraint.CoeffIdTwo:
			P(res).Add(res, value)
			P(res).Add(res, value)
		default:
			var tmp T
			var vBi big.Int
			r1cs.Coefficients[cID].BigInt(&vBi)
			P(&tmp).ScalarMultiplication(value, &vBi)
			P(res).Add(res, &tmp)
		}
	}
}

// mergeIterator walks the union of sorted slices in order (gnark's internal one).
type mergeIterator struct {
	slices [][]int
	least  int
}

func newMergeIterator(s [][]int) *mergeIterator {
	m := &mergeIterator{slices: slices.Clone(s)}
	m.findLeast()
	return m
}

func (m *mergeIterator) findLeast() {
	value := math.MaxInt
	m.least = -1
	for j := range m.slices {
		if len(m.slices[j]) > 0 && m.slices[j][0] < value {
			value, m.least = m.slices[j][0], j
		}
	}
}

// indexIfNext returns the slice holding value and advances past it if value is next,
// and -1 otherwise.
func (m *mergeIterator) indexIfNext(value int) int {
	if m.least == -1 || m.slices[m.least][0] != value {
		return -1
	}
	idx := m.least
	m.slices[idx] = m.slices[idx][1:]
	m.findLeast()
	return idx
}

// verifyPhase2 is gnark's VerifyPhase2 on an initialization by initPhase2: it verifies
// the contributions in order and seals the last with the beacon.
func verifyPhase2(r1cs *cs.R1CS, commons *gmpc.SrsCommons, s *srs.SRS, beacon []byte, c ...*gmpc.Phase2) (*gmpc.Phase2, gmpc.Phase2Evaluations, error) {
	prev := new(gmpc.Phase2)
	evals := initPhase2(prev, r1cs, commons, s)
	for i := range c {
		if err := verifyStep(prev, c[i], i+1); err != nil {
			return nil, evals, err
		}
		prev = c[i]
	}
	return prev, evals, nil
}
