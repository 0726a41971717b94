// Package ptautest writes Powers of Tau files in the snarkjs .ptau layout from secrets it
// chooses itself, for benchmarks at powers where running snarkjs would take too long.
// The secrets are known to the caller: the files are INSECURE, for measurements only.
// (Tests of the format itself use files made by snarkjs: srs/testdata/make-ptau.sh.)
package ptautest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Write writes a plain (sections 1-7) .ptau file of the given power with secrets τ, α, β
// and one contribution record named "insecure test".
func Write(path string, power int, tau, alpha, beta int64) error {
	n := 1 << power
	var t, a, b fr.Element
	t.SetInt64(tau)
	a.SetInt64(alpha)
	b.SetInt64(beta)
	pow := make([]fr.Element, 2*n-1)
	pow[0].SetOne()
	for i := 1; i < len(pow); i++ {
		pow[i].Mul(&pow[i-1], &t)
	}
	scaled := func(k *fr.Element) []fr.Element {
		s := make([]fr.Element, n)
		for i := range s {
			s[i].Mul(&pow[i], k)
		}
		return s
	}
	_, _, g1, g2 := curve.Generators()
	tauG1 := curve.BatchScalarMultiplicationG1(&g1, pow)
	tauG2 := curve.BatchScalarMultiplicationG2(&g2, pow[:n])
	alphaG1 := curve.BatchScalarMultiplicationG1(&g1, scaled(&a))
	betaG1 := curve.BatchScalarMultiplicationG1(&g1, scaled(&b))
	var betaG2 curve.G2Affine
	var bb big.Int
	betaG2.ScalarMultiplication(&g2, b.BigInt(&bb))

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
	g1s := func(id uint32, pts []curve.G1Affine) {
		u32(id)
		u64(uint64(len(pts) * 64))
		for i := range pts {
			fe(&pts[i].X)
			fe(&pts[i].Y)
		}
	}
	g2s := func(id uint32, pts []curve.G2Affine) {
		u32(id)
		u64(uint64(len(pts) * 128))
		for i := range pts {
			fe(&pts[i].X.A0)
			fe(&pts[i].X.A1)
			fe(&pts[i].Y.A0)
			fe(&pts[i].Y.A1)
		}
	}
	w.WriteString("ptau")
	u32(1)
	u32(7)
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
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
