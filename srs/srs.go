package srs

import (
	"crypto/rand"
	"fmt"
	"math/bits"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	"github.com/consensys/gnark-crypto/ecc/bn254/kzg"
	"github.com/consensys/gnark-crypto/utils"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
)

// Kind says which points an import reads: each setup needs a different part of the file.
type Kind string

const (
	// KZG reads what PLONK's KZG SRS needs for a domain of N points: [τ⁰..τᴺ⁺²]₁,
	// [τ⁰, τ¹]₂ and the Lagrange basis [L₀(τ)..Lᴺ₋₁(τ)]₁ (from a prepared file's Lagrange
	// section, checked against the powers, or computed from the powers).
	KZG Kind = "kzg"
	// Groth16 reads the phase-1 commons of a Groth16 phase-2 ceremony for N points:
	// [τ⁰..τ²ᴺ⁻²]₁, [τ⁰..τᴺ⁻¹]₂, [ατ⁰..ατᴺ⁻¹]₁, [βτ⁰..βτᴺ⁻¹]₁ and [β]₂.
	Groth16 Kind = "groth16"
)

// Source identifies the .ptau file an SRS was imported from.
type Source struct {
	// Hash is the BLAKE2b-512 of the whole file, hex: the checksum the Perpetual Powers of
	// Tau and Hermez ceremonies publish (b2sum), so a user can compare it.
	Hash          string         `json:"hash"`
	Power         int            `json:"power"`
	CeremonyPower int            `json:"ceremony_power"`
	Prepared      bool           `json:"prepared"`
	Contributions []Contribution `json:"contributions"`
}

// SRS is the checked, truncated part of a .ptau file that one kind of setup needs for a
// domain of 2^Power points. Slices a kind does not need are empty.
type SRS struct {
	Kind       Kind
	Power      int
	Source     Source
	TauG1      []curve.G1Affine
	TauG2      []curve.G2Affine
	AlphaTauG1 []curve.G1Affine
	BetaTauG1  []curve.G1Affine
	BetaG2     curve.G2Affine
	// LagrangeG1 is [Lᵢ(τ)]₁ (KZG, and Groth16 from a prepared file).
	LagrangeG1 []curve.G1Affine
	// The other Lagrange bases of a prepared file, for a Groth16 import: [Lᵢ(τ)]₂,
	// [αLᵢ(τ)]₁, [βLᵢ(τ)]₁. They spare phase 2 its FFTs over curve points.
	LagrangeG2      []curve.G2Affine
	LagrangeAlphaG1 []curve.G1Affine
	LagrangeBetaG1  []curve.G1Affine
}

// PowerFor returns log2 of the smallest power-of-two domain holding n points.
func PowerFor(n uint64) int {
	if n <= 1 {
		return 0
	}
	return bits.Len64(n - 1)
}

// Import reads and checks the part of the .ptau file at path that kind needs for a domain
// of 2^power points. It checks every point read (canonical, on the curve, in the
// subgroup, not infinity) and that the powers come from one τ (α, β): see checkPowers.
func Import(path string, power int, kind Kind) (*SRS, error) {
	hash, err := FileHash(path)
	if err != nil {
		return nil, err
	}
	p, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return importFile(p, hash, power, kind)
}

func importFile(p *File, hash string, power int, kind Kind) (*SRS, error) {
	if power > p.Power {
		return nil, fmt.Errorf("the circuit needs a ptau file of power %d (2^%d points) or more; this one has power %d", power, power, p.Power)
	}
	if kind == KZG && power < 2 {
		power = 2 // gnark's KZG needs N+3 powers, which a power-1 file lacks
		if power > p.Power {
			return nil, fmt.Errorf("PLONK needs a ptau file of power 2 or more; this one has power %d", p.Power)
		}
	}
	contribs, err := p.Contributions()
	if err != nil {
		return nil, err
	}
	s := &SRS{Kind: kind, Power: power, Source: Source{Hash: hash, Power: p.Power, CeremonyPower: p.CeremonyPower, Prepared: p.Prepared, Contributions: contribs}}
	n := 1 << power
	switch kind {
	case KZG:
		if s.TauG1, err = p.ReadG1(secTauG1, 0, n+3); err != nil {
			return nil, err
		}
		if s.TauG2, err = p.ReadG2(secTauG2, 0, 2); err != nil {
			return nil, err
		}
	case Groth16:
		if s.TauG1, err = p.ReadG1(secTauG1, 0, 2*n-1); err != nil {
			return nil, err
		}
		if s.TauG2, err = p.ReadG2(secTauG2, 0, n); err != nil {
			return nil, err
		}
		if s.AlphaTauG1, err = p.ReadG1(secAlphaTauG1, 0, n); err != nil {
			return nil, err
		}
		if s.BetaTauG1, err = p.ReadG1(secBetaTauG1, 0, n); err != nil {
			return nil, err
		}
		b, err := p.ReadG2(secBetaG2, 0, 1)
		if err != nil {
			return nil, err
		}
		s.BetaG2 = b[0]
	default:
		return nil, fmt.Errorf("unknown SRS kind %q", kind)
	}
	if err := s.checkPowers(); err != nil {
		return nil, err
	}
	if kind == KZG {
		if err := s.lagrange(p); err != nil {
			return nil, err
		}
	}
	if kind == Groth16 && p.Prepared {
		if err := s.groth16Lagrange(p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// groth16Lagrange reads the four Lagrange bases of a prepared file for 2^Power points
// and checks each against its powers (see checkLagrangeG1).
func (s *SRS) groth16Lagrange(p *File) error {
	n := 1 << s.Power
	var err error
	for _, l := range []struct {
		id    uint32
		dst   *[]curve.G1Affine
		canon []curve.G1Affine
	}{{secLagTauG1, &s.LagrangeG1, s.TauG1[:n]}, {secLagAlphaTauG1, &s.LagrangeAlphaG1, s.AlphaTauG1}, {secLagBetaTauG1, &s.LagrangeBetaG1, s.BetaTauG1}} {
		if *l.dst, err = p.ReadG1(l.id, n-1, n); err != nil {
			return err
		}
		if err := checkLagrange(*l.dst, l.canon, sectionNames[l.id], msmG1); err != nil {
			return err
		}
	}
	if s.LagrangeG2, err = p.ReadG2(secLagTauG2, n-1, n); err != nil {
		return err
	}
	return checkLagrange(s.LagrangeG2, s.TauG2, sectionNames[secLagTauG2], msmG2)
}

// msmG1 returns Σ sᵢ·pᵢ in G1.
func msmG1(p []curve.G1Affine, sc []fr.Element) (curve.G1Affine, error) {
	var j curve.G1Jac
	var a curve.G1Affine
	if _, err := j.MultiExp(p, sc, ecc.MultiExpConfig{}); err != nil {
		return a, err
	}
	a.FromJacobian(&j)
	return a, nil
}

// msmG2 returns Σ sᵢ·pᵢ in G2.
func msmG2(p []curve.G2Affine, sc []fr.Element) (curve.G2Affine, error) {
	var j curve.G2Jac
	var a curve.G2Affine
	if _, err := j.MultiExp(p, sc, ecc.MultiExpConfig{}); err != nil {
		return a, err
	}
	a.FromJacobian(&j)
	return a, nil
}

// checkLagrange checks that lag is the Lagrange basis, over gnark's domain of len(lag)
// points in natural order, of the monomial basis canon (its first len(lag) points), with
// one random linear combination: Σ rᵢ·lagᵢ must equal Σ cⱼ·canonⱼ where c are the
// coefficients of the polynomial whose values on the domain are r. Two MSMs, no FFT over
// curve points.
func checkLagrange[P any, PP interface {
	*P
	Equal(*P) bool
}](lag, canon []P, name string, msm func([]P, []fr.Element) (P, error)) error {
	n := len(lag)
	r, err := randomScalars(n)
	if err != nil {
		return err
	}
	c := make([]fr.Element, n)
	copy(c, r)
	fft.NewDomain(uint64(n)).FFTInverse(c, fft.DIF)
	utils.BitReverse(c)
	lhs, err := msm(lag, r)
	if err != nil {
		return err
	}
	rhs, err := msm(canon[:n], c)
	if err != nil {
		return err
	}
	if !PP(&lhs).Equal(&rhs) {
		return invalid("the %s section (prepare phase2) does not match the powers for %d points", name, n)
	}
	return nil
}

// randomScalars returns n uniformly random scalars for a random linear combination.
func randomScalars(n int) ([]fr.Element, error) {
	r := make([]fr.Element, n)
	buf := make([]byte, 32)
	for i := range r {
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		r[i].SetBytes(buf)
	}
	return r, nil
}

// combineShifted returns Σ rᵢ·pᵢ and Σ rᵢ·pᵢ₊₁ over i < len(p)-1: if p is geometric
// with ratio x (pᵢ₊₁ = x·pᵢ), the second is x times the first; otherwise it is not,
// except with probability 1/r over the choice of the rᵢ.
func combineShifted(p []curve.G1Affine, r []fr.Element) (a, b curve.G1Affine, err error) {
	m := len(p) - 1
	var ja, jb curve.G1Jac
	if _, err = ja.MultiExp(p[:m], r[:m], ecc.MultiExpConfig{}); err != nil {
		return a, b, err
	}
	if _, err = jb.MultiExp(p[1:], r[:m], ecc.MultiExpConfig{}); err != nil {
		return a, b, err
	}
	a.FromJacobian(&ja)
	b.FromJacobian(&jb)
	return a, b, nil
}

// sameRatio reports e(a₁, b₂) = e(c₁, d₂).
func sameRatio(a curve.G1Affine, b curve.G2Affine, c curve.G1Affine, d curve.G2Affine) (bool, error) {
	var na curve.G1Affine
	na.Neg(&a)
	return curve.PairingCheck([]curve.G1Affine{na, c}, []curve.G2Affine{b, d})
}

// checkPowers checks that the points read are powers of one secret: [τⁱ]₁ and [τⁱ]₂
// start at the generators and grow by the τ of [τ]₂ (resp. [τ]₁), [ατⁱ]₁ and [βτⁱ]₁
// grow by the same τ, and [β]₂ matches [β]₁. Each sequence costs two multi-scalar
// multiplications and one pairing check (random linear combinations), not a pairing per
// point. A file whose τ is 1 (no contribution at all) is refused.
func (s *SRS) checkPowers() error {
	_, _, g1, g2 := curve.Generators()
	if !s.TauG1[0].Equal(&g1) {
		return invalid("tauG1[0] is not the generator of G1")
	}
	if !s.TauG2[0].Equal(&g2) {
		return invalid("tauG2[0] is not the generator of G2")
	}
	if s.TauG1[1].Equal(&g1) {
		return invalid("τ is 1: the file has no contribution (made by `powersoftau new` alone)")
	}
	tau2 := s.TauG2[1]
	if ok, err := sameRatio(s.TauG1[1], g2, g1, tau2); err != nil || !ok {
		return invalid("tauG1[1] and tauG2[1] are not the same power of τ (pairing check failed)")
	}
	r, err := randomScalars(len(s.TauG1))
	if err != nil {
		return err
	}
	for _, seq := range []struct {
		name string
		pts  []curve.G1Affine
	}{{"tauG1", s.TauG1}, {"alphaTauG1", s.AlphaTauG1}, {"betaTauG1", s.BetaTauG1}} {
		if len(seq.pts) < 2 {
			continue
		}
		a, b, err := combineShifted(seq.pts, r)
		if err != nil {
			return err
		}
		// b = τ·a  ⇔  e(a, [τ]₂) = e(b, g₂)
		if ok, err := sameRatio(a, tau2, b, g2); err != nil || !ok {
			return invalid("%s is not a sequence of successive powers of τ (pairing check on a random linear combination failed)", seq.name)
		}
	}
	if len(s.TauG2) > 2 {
		m := len(s.TauG2) - 1
		var ja, jb curve.G2Jac
		if _, err := ja.MultiExp(s.TauG2[:m], r[:m], ecc.MultiExpConfig{}); err != nil {
			return err
		}
		if _, err := jb.MultiExp(s.TauG2[1:], r[:m], ecc.MultiExpConfig{}); err != nil {
			return err
		}
		var a, b curve.G2Affine
		a.FromJacobian(&ja)
		b.FromJacobian(&jb)
		if ok, err := sameRatio(s.TauG1[1], a, g1, b); err != nil || !ok {
			return invalid("tauG2 is not a sequence of successive powers of τ (pairing check on a random linear combination failed)")
		}
	}
	if s.Kind == Groth16 {
		if ok, err := sameRatio(s.BetaTauG1[0], g2, g1, s.BetaG2); err != nil || !ok {
			return invalid("betaG2 does not match betaTauG1[0] (pairing check failed)")
		}
	}
	return nil
}

// lagrange sets LagrangeG1 to [Lᵢ(τ)]₁ over gnark's domain of 2^Power points, in natural
// order. A prepared file's Lagrange section is read and checked against the powers with
// one random linear combination (two MSMs, no FFT over curve points): Σ rᵢ[Lᵢ(τ)]₁ must
// equal Σ cⱼ[τʲ]₁ where c are the coefficients of the polynomial with values r on the
// domain. Otherwise the basis is computed from the powers (an FFT over G1).
func (s *SRS) lagrange(p *File) error {
	n := 1 << s.Power
	if !p.Prepared {
		lag, err := kzg.ToLagrangeG1(s.TauG1[:n])
		if err != nil {
			return fmt.Errorf("lagrange basis: %w", err)
		}
		s.LagrangeG1 = lag
		return nil
	}
	// Section 12 holds the bases for sizes 2⁰, 2¹, ...: the one for 2^Power starts after
	// 2^Power - 1 points.
	lag, err := p.ReadG1(secLagTauG1, n-1, n)
	if err != nil {
		return err
	}
	if err := checkLagrange(lag, s.TauG1, sectionNames[secLagTauG1], msmG1); err != nil {
		return err
	}
	s.LagrangeG1 = lag
	return nil
}

// KZGSRS returns the canonical and Lagrange KZG SRS of a KZG import, in the form gnark's
// plonk.Setup takes.
func (s *SRS) KZGSRS() (canonical, lagrange *kzg.SRS, err error) {
	if s.Kind != KZG {
		return nil, nil, fmt.Errorf("SRS imported for %s, not for KZG", s.Kind)
	}
	var vk kzg.VerifyingKey
	vk.G1 = s.TauG1[0]
	vk.G2 = [2]curve.G2Affine{s.TauG2[0], s.TauG2[1]}
	vk.Lines[0] = curve.PrecomputeLines(vk.G2[0])
	vk.Lines[1] = curve.PrecomputeLines(vk.G2[1])
	canonical = &kzg.SRS{Pk: kzg.ProvingKey{G1: s.TauG1}, Vk: vk}
	lagrange = &kzg.SRS{Pk: kzg.ProvingKey{G1: s.LagrangeG1}, Vk: vk}
	return canonical, lagrange, nil
}

// Commons returns the phase-1 commons of a Groth16 import for gnark's mpcsetup.
func (s *SRS) Commons() (*mpcsetup.SrsCommons, error) {
	if s.Kind != Groth16 {
		return nil, fmt.Errorf("SRS imported for %s, not for a Groth16 ceremony", s.Kind)
	}
	var c mpcsetup.SrsCommons
	c.G1.Tau = s.TauG1
	c.G1.AlphaTau = s.AlphaTauG1
	c.G1.BetaTau = s.BetaTauG1
	c.G2.Tau = s.TauG2
	c.G2.Beta = s.BetaG2
	return &c, nil
}
