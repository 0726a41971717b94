// Package ptautest writes Powers of Tau files in the snarkjs .ptau layout from secrets it
// chooses itself, for benchmarks at powers where running snarkjs would take too long.
// The secrets are known to the caller: the files are INSECURE, for measurements only.
// (Tests of the format itself use files made by snarkjs: srs/testdata/make-ptau.sh.)
package ptautest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	"github.com/consensys/gnark-crypto/utils"
)

// Write writes a plain (sections 1-7) .ptau file of the given power with secrets τ, α, β
// and one contribution record named "insecure test".
func Write(path string, power int, tau, alpha, beta uint64) error {
	return write(path, power, tau, alpha, beta, nil)
}

// WritePrepared is Write with the Lagrange sections of `snarkjs powersoftau prepare
// phase2` (12-15). Only the blocks for the listed powers are computed (those an import
// truncated to them reads); the others are zero-filled: the right sizes, but not points.
func WritePrepared(path string, power int, tau, alpha, beta uint64, lagrangePowers ...int) error {
	return write(path, power, tau, alpha, beta, lagrangePowers)
}

// lagrangeBlocks are the four Lagrange bases for one size.
type lagrangeBlocks struct {
	tau1, alpha1, beta1 []curve.G1Affine
	tau2                []curve.G2Affine
}

func write(path string, power int, tau, alpha, beta uint64, lagrangePowers []int) error {
	n := 1 << power
	_, _, g1, g2 := curve.Generators()
	// Successive powers by small-scalar multiplication (a few group operations each),
	// so that writing a power-20 file takes seconds.
	tauG1 := make([]curve.G1Jac, 2*n-1)
	tauG1[0].FromAffine(&g1)
	for i := 1; i < len(tauG1); i++ {
		tauG1[i] = mulSmallG1(tauG1[i-1], tau)
	}
	tauG2 := make([]curve.G2Jac, n)
	tauG2[0].FromAffine(&g2)
	for i := 1; i < n; i++ {
		tauG2[i] = mulSmallG2(tauG2[i-1], tau)
	}
	alphaG1 := make([]curve.G1Jac, n)
	betaG1 := make([]curve.G1Jac, n)
	for i := range n {
		alphaG1[i] = mulSmallG1(tauG1[i], alpha)
		betaG1[i] = mulSmallG1(tauG1[i], beta)
	}
	betaG2J := mulSmallG2(tauG2[0], beta)
	var betaG2 curve.G2Affine
	betaG2.FromJacobian(&betaG2J)
	var lag map[int]lagrangeBlocks
	if lagrangePowers != nil {
		lag = map[int]lagrangeBlocks{}
	}
	for _, q := range lagrangePowers {
		// [Lᵢ(τ)] over gnark's domain of 2^q points: the inverse FFT of the powers of τ.
		m := 1 << q
		l := make([]fr.Element, m)
		var t, a, b fr.Element
		t.SetUint64(tau)
		a.SetUint64(alpha)
		b.SetUint64(beta)
		l[0].SetOne()
		for i := 1; i < m; i++ {
			l[i].Mul(&l[i-1], &t)
		}
		fft.NewDomain(uint64(m)).FFTInverse(l, fft.DIF)
		utils.BitReverse(l)
		scaled := func(k *fr.Element) []fr.Element {
			out := make([]fr.Element, m)
			for i := range out {
				out[i].Mul(&l[i], k)
			}
			return out
		}
		lag[q] = lagrangeBlocks{
			tau1:   curve.BatchScalarMultiplicationG1(&g1, l),
			tau2:   curve.BatchScalarMultiplicationG2(&g2, l),
			alpha1: curve.BatchScalarMultiplicationG1(&g1, scaled(&a)),
			beta1:  curve.BatchScalarMultiplicationG1(&g1, scaled(&b)),
		}
	}
	return writeFile(path, power, curve.BatchJacobianToAffineG1(tauG1), batchG2(tauG2),
		curve.BatchJacobianToAffineG1(alphaG1), curve.BatchJacobianToAffineG1(betaG1), betaG2, lag)
}

// jacobian is a curve point in Jacobian coordinates (G1Jac, G2Jac).
type jacobian[T any] interface {
	*T
	DoubleAssign() *T
	AddAssign(*T) *T
}

// mulSmall returns k·p by double-and-add from the point at infinity (cheap for small k).
func mulSmall[T any, P jacobian[T]](p T, infinity T, k uint64) T {
	r := infinity
	for i := bits.Len64(k) - 1; i >= 0; i-- {
		P(&r).DoubleAssign()
		if k>>uint(i)&1 == 1 {
			P(&r).AddAssign(&p)
		}
	}
	return r
}

func mulSmallG1(p curve.G1Jac, k uint64) curve.G1Jac { return mulSmall(p, g1Infinity, k) }

func mulSmallG2(p curve.G2Jac, k uint64) curve.G2Jac { return mulSmall(p, g2Infinity, k) }

var (
	g1Infinity = curve.G1Jac{X: fpOne(), Y: fpOne()}
	g2Infinity = func() (p curve.G2Jac) {
		p.X.A0, p.Y.A0 = fpOne(), fpOne()
		return p
	}()
)

func fpOne() (e fp.Element) {
	e.SetOne()
	return e
}

func batchG2(pts []curve.G2Jac) []curve.G2Affine {
	out := make([]curve.G2Affine, len(pts))
	for i := range pts {
		out[i].FromJacobian(&pts[i])
	}
	return out
}

func writeFile(path string, power int, tauG1 []curve.G1Affine, tauG2 []curve.G2Affine, alphaG1, betaG1 []curve.G1Affine, betaG2 curve.G2Affine, lag map[int]lagrangeBlocks) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	u32 := func(v uint32) { _ = binary.Write(w, binary.LittleEndian, v) }
	u64 := func(v uint64) { _ = binary.Write(w, binary.LittleEndian, v) }
	fe := func(e *fp.Element) {
		for _, l := range e { // Montgomery form, little endian: the limbs as they are
			_ = binary.Write(w, binary.LittleEndian, l)
		}
	}
	g1pts := func(pts []curve.G1Affine) {
		for i := range pts {
			fe(&pts[i].X)
			fe(&pts[i].Y)
		}
	}
	g2pts := func(pts []curve.G2Affine) {
		for i := range pts {
			fe(&pts[i].X.A0)
			fe(&pts[i].X.A1)
			fe(&pts[i].Y.A0)
			fe(&pts[i].Y.A1)
		}
	}
	g1s := func(id uint32, pts []curve.G1Affine) {
		u32(id)
		u64(uint64(len(pts) * 64))
		g1pts(pts)
	}
	g2s := func(id uint32, pts []curve.G2Affine) {
		u32(id)
		u64(uint64(len(pts) * 128))
		g2pts(pts)
	}
	w.WriteString("ptau")
	u32(1)
	if lag != nil {
		u32(11)
	} else {
		u32(7)
	}
	u32(1) // header: n8, q, power, ceremony power
	u64(44)
	u32(32)
	q := fp.Modulus().FillBytes(make([]byte, 32))
	for i := 31; i >= 0; i-- {
		w.WriteByte(q[i])
	}
	u32(uint32(power))
	u32(uint32(power))
	g1s(2, tauG1)
	g2s(3, tauG2)
	g1s(4, alphaG1)
	g1s(5, betaG1)
	g2s(6, []curve.G2Affine{betaG2})
	// One contribution record: points and keys zeroed (the reader does not use them),
	// type 0, a name parameter.
	name := "insecure test"
	const fixed = 3*64 + 2*128 + 6*64 + 3*128 + 216 + 64
	params := append([]byte{1, byte(len(name))}, name...)
	u32(7)
	u64(uint64(4 + fixed + 4 + 4 + len(params)))
	u32(1)
	w.Write(make([]byte, fixed))
	u32(0)
	u32(uint32(len(params)))
	w.Write(params)
	if lag != nil {
		zeros := func(count int, size int) {
			chunk := make([]byte, 64*size)
			for ; count > 0; count -= 64 {
				w.Write(chunk[:min(count, 64)*size])
			}
		}
		// Each section holds the bases for 2^0, 2^1, ..., 2^power points (and 2^(power+1)
		// for τ in G1), one block after the other.
		for _, sec := range []struct {
			id   uint32
			size int
			top  int
			put  func(b lagrangeBlocks)
		}{
			{12, 64, power + 1, func(b lagrangeBlocks) { g1pts(b.tau1) }},
			{13, 128, power, func(b lagrangeBlocks) { g2pts(b.tau2) }},
			{14, 64, power, func(b lagrangeBlocks) { g1pts(b.alpha1) }},
			{15, 64, power, func(b lagrangeBlocks) { g1pts(b.beta1) }},
		} {
			u32(sec.id)
			u64(uint64((1<<(sec.top+1) - 1) * sec.size))
			for q := 0; q <= sec.top; q++ {
				if b, ok := lag[q]; ok {
					sec.put(b)
				} else {
					zeros(1<<q, sec.size)
				}
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
