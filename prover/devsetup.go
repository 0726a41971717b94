package prover

import (
	"fmt"
	"math/big"
	"math/bits"
	"runtime"
	"sync"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/pedersen"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/constraint"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
)

// devSetupGroth16 is the development (single-party, random toxic waste) Groth16 setup
// of gnark's groth16/bn254.Setup, producing the same keys (same layout, same
// serialization, same verifier), with the key points computed by fixed-base combs.
//
// Every key point is [s]G for one of the two generators, and gnark's
// BatchScalarMultiplicationG1/G2 pay about 254 doublings per point (a shared window
// table, then double-and-add per scalar): on the small and medium circuits of the test
// suites that made the setup several times the cost of the proof. A comb precomputes
// d·2^(w·j)·G for every window j and digit d once, so a point costs ceil(254/w) mixed
// additions and no doubling (about 6x less work for G1 and G2).
func devSetupGroth16(r1cs *csbn254.R1CS) (*groth16bn254.ProvingKey, *groth16bn254.VerifyingKey, error) {
	pk, vk := &groth16bn254.ProvingKey{}, &groth16bn254.VerifyingKey{}
	nbPublic := r1cs.GetNbPublicVariables()
	nbWires := r1cs.NbInternalVariables + nbPublic + r1cs.GetNbSecretVariables()

	commitmentInfo, ok := r1cs.CommitmentInfo.(constraint.Groth16Commitments)
	if !ok {
		return nil, nil, fmt.Errorf("groth16 setup: unexpected commitment info %T", r1cs.CommitmentInfo)
	}
	commitmentWires := commitmentInfo.CommitmentIndexes()
	privateCommitted := commitmentInfo.GetPrivateCommitted()
	isCommitment := make(map[int]bool, len(commitmentWires))
	for _, w := range commitmentWires {
		isCommitment[w] = true
	}
	// committedBy[w] is the commitment of private committed wire w, or -1. (A wire in
	// two commitments would leave the K counts short, refused below.)
	committedBy := make([]int, nbWires)
	for i := range committedBy {
		committedBy[i] = -1
	}
	nbPrivateCommitted := 0
	for i, ws := range privateCommitted {
		nbPrivateCommitted += len(ws)
		for _, w := range ws {
			if committedBy[w] < 0 {
				committedBy[w] = i
			}
		}
	}
	// A commitment is computed by a hint (private to the solver), but the verifier
	// injects it: for Groth16 it is public.
	nbPublicWires := nbPublic + len(commitmentInfo)
	nbPrivateWires := nbWires - nbPublic - nbPrivateCommitted - len(commitmentInfo)

	domain := fft.NewDomain(uint64(r1cs.GetNbConstraints()))
	tw, err := newToxicWaste()
	if err != nil {
		return nil, nil, err
	}
	A, B, C := lagrangeABC(r1cs, domain, &tw)

	// K: (β·A(τ) + α·B(τ) + C(τ)) / γ for the public wires, the commitments and the
	// committed private wires; / δ for the other private wires.
	pkK := make([]fr.Element, 0, nbPrivateWires)
	vkK := make([]fr.Element, 0, nbPublicWires)
	ckK := make([][]fr.Element, len(commitmentInfo))
	for i := range A {
		var k, t fr.Element
		k.Mul(&A[i], &tw.beta)
		t.Mul(&B[i], &tw.alpha)
		k.Add(&k, &t).Add(&k, &C[i])
		ci := committedBy[i]
		switch {
		case i < nbPublic || isCommitment[i]:
			vkK = append(vkK, *k.Mul(&k, &tw.gammaInv))
		case ci >= 0:
			ckK[ci] = append(ckK[ci], *k.Mul(&k, &tw.gammaInv))
		default:
			pkK = append(pkK, *k.Mul(&k, &tw.deltaInv))
		}
	}
	if len(vkK) != nbPublicWires || len(pkK) != nbPrivateWires {
		return nil, nil, fmt.Errorf("groth16 setup: %d public and %d private K terms, want %d and %d", len(vkK), len(pkK), nbPublicWires, nbPrivateWires)
	}

	// Z: (τ^n - 1)·τ^i / δ over the domain.
	Z := make([]fr.Element, domain.Cardinality)
	var zdt fr.Element
	one := fr.One()
	zdt.Exp(tw.t, new(big.Int).SetUint64(domain.Cardinality)).Sub(&zdt, &one).Mul(&zdt, &tw.deltaInv)
	for i := range Z {
		Z[i] = zdt
		zdt.Mul(&zdt, &tw.t)
	}

	// A and B keep their nonzero entries only (the prover skips the others).
	pk.InfinityA, pk.InfinityB = make([]bool, nbWires), make([]bool, nbWires)
	A = dropZeros(A, pk.InfinityA)
	B = dropZeros(B, pk.InfinityB)
	pk.NbInfinityA, pk.NbInfinityB = uint64(nbWires-len(A)), uint64(nbWires-len(B))

	_, _, g1, g2 := curve.Generators()
	g1s := make([]fr.Element, 0, 3+len(A)+len(B)+len(Z)+nbWires+nbPrivateCommitted)
	g1s = append(g1s, tw.alpha, tw.beta, tw.delta)
	g1s = append(append(append(append(append(g1s, A...), B...), Z...), vkK...), pkK...)
	// The commitments' Pedersen keys: bases [k]G and [σ·k]G, one σ per commitment
	// (pedersen.Setup's keys, without its serial scalar multiplication per base).
	sigmas := make([]fr.Element, len(ckK))
	for i, k := range ckK {
		for sigmas[i].IsZero() {
			if _, err := sigmas[i].SetRandom(); err != nil {
				return nil, nil, err
			}
		}
		g1s = append(g1s, k...)
		for _, e := range k {
			g1s = append(g1s, *e.Mul(&e, &sigmas[i]))
		}
	}
	p1 := combG1(&g1, g1s)
	next := func(n int) []curve.G1Affine {
		out := p1[:n:n]
		p1 = p1[n:]
		return out
	}
	ab := next(3)
	pk.G1.Alpha, pk.G1.Beta, pk.G1.Delta = ab[0], ab[1], ab[2]
	pk.G1.A = next(len(A))
	pk.G1.B = next(len(B))
	z := next(len(Z))
	bitReverse(z)
	pk.G1.Z = z[:len(z)-1] // deg H = n - 2
	vk.G1.K = next(len(vkK))
	pk.G1.K = next(len(pkK))
	if len(commitmentInfo) > 0 {
		cG2, err := curve.RandomOnG2()
		if err != nil {
			return nil, nil, err
		}
		pk.CommitmentKeys = make([]pedersen.ProvingKey, len(commitmentInfo))
		vk.CommitmentKeys = make([]pedersen.VerifyingKey, len(commitmentInfo))
		for i := range ckK {
			pk.CommitmentKeys[i].Basis = next(len(ckK[i]))
			pk.CommitmentKeys[i].BasisExpSigma = next(len(ckK[i]))
			var negSigma fr.Element
			negSigma.Neg(&sigmas[i])
			vk.CommitmentKeys[i].G = cG2
			vk.CommitmentKeys[i].GSigmaNeg.ScalarMultiplication(&cG2, negSigma.BigInt(new(big.Int)))
		}
	}
	if len(p1) != 0 {
		return nil, nil, fmt.Errorf("groth16 setup: %d G1 points left over", len(p1))
	}
	vk.PublicAndCommitmentCommitted = commitmentInfo.GetPublicAndCommitmentCommitted(commitmentWires, nbPublic)

	p2 := combG2(&g2, append(B, tw.beta, tw.delta, tw.gamma))
	pk.G2.B = p2[:len(B)]
	pk.G2.Beta, pk.G2.Delta = p2[len(B)], p2[len(B)+1]
	vk.G2.Beta, vk.G2.Delta, vk.G2.Gamma = p2[len(B)], p2[len(B)+1], p2[len(B)+2]
	vk.G1.Alpha, vk.G1.Beta, vk.G1.Delta = pk.G1.Alpha, pk.G1.Beta, pk.G1.Delta
	if err := vk.Precompute(); err != nil {
		return nil, nil, err
	}
	pk.Domain = *domain
	return pk, vk, nil
}

// toxicWaste is the setup's secret: τ (t), α, β, γ, δ, and the inverses of γ and δ.
type toxicWaste struct {
	t, alpha, beta, gamma, delta fr.Element
	gammaInv, deltaInv           fr.Element
}

func newToxicWaste() (toxicWaste, error) {
	var tw toxicWaste
	for _, e := range []*fr.Element{&tw.t, &tw.alpha, &tw.beta, &tw.gamma, &tw.delta} {
		for e.IsZero() {
			if _, err := e.SetRandom(); err != nil {
				return tw, err
			}
		}
	}
	tw.gammaInv.Inverse(&tw.gamma)
	tw.deltaInv.Inverse(&tw.delta)
	return tw, nil
}

// lagrangeABC evaluates, per wire, Σ_i coeff·L_i(τ) over the constraints' L, R and O
// terms (L_i the i-th Lagrange polynomial of the domain).
func lagrangeABC(r1cs *csbn254.R1CS, domain *fft.Domain, tw *toxicWaste) (A, B, C []fr.Element) {
	nbWires := r1cs.NbInternalVariables + r1cs.GetNbPublicVariables() + r1cs.GetNbSecretVariables()
	A, B, C = make([]fr.Element, nbWires), make([]fr.Element, nbWires), make([]fr.Element, nbWires)
	n := r1cs.GetNbConstraints()
	// τ - ω^i and its inverse, for i <= n.
	d := make([]fr.Element, n+1)
	wi := fr.One()
	for i := range d {
		d[i].Sub(&tw.t, &wi)
		wi.Mul(&wi, &domain.Generator)
	}
	dInv := fr.BatchInvert(d)
	// L_0(τ) = (τ^N - 1) / (N·(τ - 1)); L_{i+1} = ω·L_i·(τ - ω^i)/(τ - ω^{i+1}).
	var L fr.Element
	one := fr.One()
	L.Exp(tw.t, new(big.Int).SetUint64(domain.Cardinality)).Sub(&L, &one).Mul(&L, &dInv[0]).Mul(&L, &domain.CardinalityInv)
	add := func(res *fr.Element, t constraint.Term) {
		var v fr.Element
		switch t.CoeffID() {
		case constraint.CoeffIdZero:
			return
		case constraint.CoeffIdOne:
			res.Add(res, &L)
			return
		case constraint.CoeffIdMinusOne:
			res.Sub(res, &L)
			return
		case constraint.CoeffIdTwo:
			v.Double(&L)
		default:
			v.Mul(&r1cs.Coefficients[t.CoeffID()], &L)
		}
		res.Add(res, &v)
	}
	it := r1cs.GetR1CIterator()
	for j, c := 0, it.Next(); c != nil; j, c = j+1, it.Next() {
		for _, t := range c.L {
			add(&A[t.WireID()], t)
		}
		for _, t := range c.R {
			add(&B[t.WireID()], t)
		}
		for _, t := range c.O {
			add(&C[t.WireID()], t)
		}
		L.Mul(&L, &domain.Generator).Mul(&L, &d[j]).Mul(&L, &dInv[j+1])
	}
	return A, B, C
}

// dropZeros removes the zero entries of s in place, marking them in inf.
func dropZeros(s []fr.Element, inf []bool) []fr.Element {
	n := 0
	for i := range s {
		if s[i].IsZero() {
			inf[i] = true
			continue
		}
		s[n] = s[i]
		n++
	}
	return s[:n]
}

// bitReverse permutes a (of power-of-two length) into bit-reversed index order.
func bitReverse(a []curve.G1Affine) {
	n := uint64(len(a))
	if n < 2 {
		return
	}
	shift := 64 - uint64(bits.TrailingZeros64(n))
	for i := uint64(0); i < n; i++ {
		if j := bits.Reverse64(i) >> shift; i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
}

// combWindow picks the comb's digit width for n scalars: ceil(256/w) additions per
// scalar against ceil(256/w)·2^w table entries.
func combWindow(n int) int {
	best, bestCost := 4, -1
	for w := 4; w <= 14; w++ {
		windows := (256 + w - 1) / w
		cost := windows*n + windows<<w
		if bestCost < 0 || cost < bestCost {
			best, bestCost = w, cost
		}
	}
	return best
}

// digit is bits [w·j, w·j+w) of the 256-bit little-endian limbs s.
func digit(s *[4]uint64, w, j int) uint64 {
	lo := w * j
	if lo >= 256 {
		return 0
	}
	limb, off := lo/64, uint(lo%64)
	d := s[limb] >> off
	if off+uint(w) > 64 && limb+1 < 4 {
		d |= s[limb+1] << (64 - off)
	}
	return d & (1<<uint(w) - 1)
}

// forChunks runs f over [0, n) split between the CPUs.
func forChunks(n int, f func(lo, hi int)) {
	k := min(runtime.NumCPU(), max(1, n/64))
	var wg sync.WaitGroup
	for c := range k {
		lo, hi := c*n/k, (c+1)*n/k
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// combG1 returns [s]base for every scalar s.
func combG1(base *curve.G1Affine, scalars []fr.Element) []curve.G1Affine {
	w := combWindow(len(scalars))
	windows := (256 + w - 1) / w
	size := 1<<uint(w) - 1
	// table[j·size + d-1] = d·2^(w·j)·base
	jac := make([]curve.G1Jac, windows*size)
	var b curve.G1Jac
	b.FromAffine(base)
	for j := range windows {
		row := jac[j*size : (j+1)*size]
		row[0] = b
		for d := 1; d < size; d++ {
			row[d] = row[d-1]
			row[d].AddAssign(&b)
		}
		for range w {
			b.DoubleAssign()
		}
	}
	table := curve.BatchJacobianToAffineG1(jac)
	out := make([]curve.G1Jac, len(scalars))
	forChunks(len(scalars), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s := scalars[i].Bits()
			var p curve.G1Jac // Z = 0: infinity
			for j := range windows {
				if d := digit(&s, w, j); d != 0 {
					p.AddMixed(&table[j*size+int(d)-1])
				}
			}
			out[i] = p
		}
	})
	return curve.BatchJacobianToAffineG1(out)
}

// combG2 is combG1 on G2.
func combG2(base *curve.G2Affine, scalars []fr.Element) []curve.G2Affine {
	w := combWindow(len(scalars))
	windows := (256 + w - 1) / w
	size := 1<<uint(w) - 1
	jac := make([]curve.G2Jac, windows*size)
	var b curve.G2Jac
	b.FromAffine(base)
	forChunks(windows, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			var bj curve.G2Jac
			bj.Set(&b)
			for range w * j {
				bj.DoubleAssign()
			}
			row := jac[j*size : (j+1)*size]
			row[0] = bj
			for d := 1; d < size; d++ {
				row[d] = row[d-1]
				row[d].AddAssign(&bj)
			}
		}
	})
	table := batchG2ToAffine(jac)
	out := make([]curve.G2Jac, len(scalars))
	forChunks(len(scalars), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s := scalars[i].Bits()
			var p curve.G2Jac // Z = 0: infinity
			for j := range windows {
				if d := digit(&s, w, j); d != 0 {
					p.AddMixed(&table[j*size+int(d)-1])
				}
			}
			out[i] = p
		}
	})
	return batchG2ToAffine(out)
}

// batchG2ToAffine converts Jacobian points to affine with one field inversion in all
// (Montgomery's trick; gnark-crypto has this for G1 only). Infinity (Z = 0) becomes
// the affine (0, 0).
func batchG2ToAffine(pts []curve.G2Jac) []curve.G2Affine {
	res := make([]curve.G2Affine, len(pts))
	var acc curve.G2Jac // acc.Z: the running product of the Z coordinates
	acc.Z.SetOne()
	for i := range pts {
		if pts[i].Z.IsZero() {
			continue
		}
		res[i].X = acc.Z // the product of the Zs before i
		acc.Z.Mul(&acc.Z, &pts[i].Z)
	}
	acc.Z.Inverse(&acc.Z)
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].Z.IsZero() {
			continue
		}
		res[i].X.Mul(&res[i].X, &acc.Z) // 1/Z_i
		acc.Z.Mul(&acc.Z, &pts[i].Z)
	}
	forChunks(len(pts), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if pts[i].Z.IsZero() {
				continue
			}
			inv := res[i].X
			var inv2 curve.G2Jac
			inv2.Z.Square(&inv)
			res[i].X.Mul(&pts[i].X, &inv2.Z)
			res[i].Y.Mul(&pts[i].Y, &inv2.Z).Mul(&res[i].Y, &inv)
		}
	})
	return res
}
