package circuits

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
)

// dotSums asserts that each of Sums dot products Dot(X, 3...) + 1 equals Total (the
// same X: the circuit's one wire is shared by its materialized sums).
type dotSums struct {
	X     []frontend.Variable
	Total frontend.Variable `gnark:",public"`
	sums  int
}

func (c *dotSums) Define(api frontend.API) error {
	a := newArith(api, nil)
	w := make([]frontend.Variable, len(c.X))
	for i := range w {
		w[i] = 3
	}
	for range c.sums {
		api.AssertIsEqual(a.Dot(c.X, w, 1), c.Total)
	}
	return nil
}

func dotAssignment(n int, off int) *dotSums {
	x := make([]frontend.Variable, n)
	total := 1
	for i := range x {
		x[i] = i - 7
		total += 3 * (i - 7)
	}
	return &dotSums{X: x, Total: total + off}
}

// TestDotWireSum: in R1CS a dot product of WireSumTerms terms or more (its constant
// included) and fewer than gnark's 300 is one wire, by one constraint per sum plus one
// for the circuit's one wire; shorter sums and sums gnark compresses are unchanged, and
// PLONK is byte for byte the circuit built without it. Every variant still computes the
// dot product.
func TestDotWireSum(t *testing.T) {
	for _, n := range []int{WireSumTerms - 2, WireSumTerms - 1, 100, 298, 299, 400} {
		terms := n + 1 // with the constant
		wire := terms >= WireSumTerms && terms < 300
		for _, sums := range []int{1, 3} {
			ccs, err := compileWith("r1cs", &dotSums{X: make([]frontend.Variable, n), sums: sums})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := compileWith("r1cs", &dotCircuit{X: make([]frontend.Variable, n), raw: true, cap: new(int)})
			if err != nil {
				t.Fatal(err)
			}
			// raw: the sum (compressed at 300) and one equality.
			want := sums * raw.GetNbConstraints()
			if wire {
				want += sums + 1
			}
			if got := ccs.GetNbConstraints(); got != want {
				t.Errorf("n=%d, %d sums: %d constraints, want %d (one wire: %v)", n, sums, got, want, wire)
			}
			for _, off := range []int{0, 1, -1} {
				w, err := frontend.NewWitness(dotAssignment(n, off), Field)
				if err != nil {
					t.Fatal(err)
				}
				if err := ccs.IsSolved(w); (err == nil) != (off == 0) {
					t.Errorf("n=%d, %d sums, total off by %d: solved=%v", n, sums, off, err == nil)
				}
			}
		}
		plonk, err := compileWith("plonk", &dotCircuit{X: make([]frontend.Variable, n), cap: new(int)})
		if err != nil {
			t.Fatal(err)
		}
		plonkRaw, err := compileWith("plonk", &dotCircuit{X: make([]frontend.Variable, n), raw: true, cap: new(int)})
		if err != nil {
			t.Fatal(err)
		}
		var a, b bytes.Buffer
		if _, err := plonk.WriteTo(&a); err != nil {
			t.Fatal(err)
		}
		if _, err := plonkRaw.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("n=%d: PLONK's constraint system changed", n)
		}
	}
}

// TestForgedOneWire: the one wire is a hint output; any other value than 1 fails its
// equality, even though every materialized sum's constraint sum * one = w is then
// solved consistently (w = one * sum) and the claimed total follows the forgery (the
// equality one = 1 is then the only constraint that can fail).
func TestForgedOneWire(t *testing.T) {
	ccs, err := compileWith("r1cs", &dotSums{X: make([]frontend.Variable, 100), sums: 2})
	if err != nil {
		t.Fatal(err)
	}
	honest := dotAssignment(100, 0)
	total := big.NewInt(int64(honest.Total.(int)))
	minusOne := new(big.Int).Sub(Field, big.NewInt(1))
	for _, v := range []*big.Int{big.NewInt(1), big.NewInt(0), big.NewInt(2), minusOne, big.NewInt(1 << 20)} {
		forged := solver.OverrideHint(solver.GetHintID(oneHint), func(field *big.Int, _, out []*big.Int) error {
			out[0].Mod(v, field)
			return nil
		})
		a := dotAssignment(100, 0)
		a.Total = new(big.Int).Mod(new(big.Int).Mul(total, v), Field)
		w, err := frontend.NewWitness(a, Field)
		if err != nil {
			t.Fatal(err)
		}
		err = func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = errPanic
				}
			}()
			return ccs.IsSolved(w, forged)
		}()
		if (err == nil) != (v.Int64() == 1) {
			t.Errorf("one = %v, total = one * sum: solved=%v", v, err == nil)
		}
	}
}

// TestForgedWireSum: a prover is free to choose every internal wire, not only hint
// outputs. Changing a materialized sum's wire w (the solver computes it from
// sum * one = w, no hint) or the one wire, in an otherwise honest full assignment
// whose claimed total follows the forgery, breaks exactly one constraint: the sum's
// own (sum * one = w) or the one wire's (one = 1).
func TestForgedWireSum(t *testing.T) {
	ccs, err := compileWith("r1cs", &dotSums{X: make([]frontend.Variable, 100), sums: 1})
	if err != nil {
		t.Fatal(err)
	}
	r1cs := ccs.(*cs.R1CS)
	w, err := frontend.NewWitness(dotAssignment(100, 0), Field)
	if err != nil {
		t.Fatal(err)
	}
	sol, err := r1cs.Solve(w)
	if err != nil {
		t.Fatal(err)
	}
	full := sol.(*cs.R1CSSolution).W
	eval := func(l constraint.LinearExpression, a fr.Vector) fr.Element {
		var s, t fr.Element
		for _, term := range l {
			t.Mul(&r1cs.Coefficients[term.CID], &a[term.VID])
			s.Add(&s, &t)
		}
		return s
	}
	broken := func(a fr.Vector) []int {
		var bad []int
		for i, c := range r1cs.GetR1Cs() {
			l, r, o := eval(c.L, a), eval(c.R, a), eval(c.O, a)
			l.Mul(&l, &r)
			if !l.Equal(&o) {
				bad = append(bad, i)
			}
		}
		return bad
	}
	if bad := broken(full); len(bad) > 0 {
		t.Fatalf("honest assignment breaks constraints %v", bad)
	}
	// The materialized sum: the constraint whose L has the 100 products and the constant.
	var sumC constraint.R1C
	found := -1
	for i, c := range r1cs.GetR1Cs() {
		if len(c.L) == 101 && len(c.R) == 1 && len(c.O) == 1 {
			sumC, found = c, i
		}
		if len(c.R) == 101 && len(c.L) == 1 && len(c.O) == 1 {
			sumC, found = constraint.R1C{L: c.R, R: c.L, O: c.O}, i
		}
	}
	if found < 0 {
		t.Fatal("no constraint sum * one = w")
	}
	wid, oneID := sumC.O[0].VID, sumC.R[0].VID
	if wid == oneID || oneID == 0 {
		t.Fatalf("sum * one = w reads wires %d and %d", oneID, wid)
	}
	// The claimed total (public wire 1) follows the forged w, so that only the
	// constraints that define w and one can catch the forgery.
	const totalID = 1
	forgeries := []struct {
		name      string
		one, w, k int64 // one := one (0: kept); w += k and total += k, or w, total *= one
	}{
		{"w + 1", 0, 1, 0}, {"w - 1", 0, -1, 0}, {"w + 2^20", 0, 1 << 20, 0},
		{"one = 2, w = 2 * sum", 2, 0, 0}, {"one = 0, w = 0", 0, 0, 1}, {"one = -1, w = -sum", -1, 0, 0},
	}
	for _, f := range forgeries {
		a := make(fr.Vector, len(full))
		copy(a, full)
		switch {
		case f.w != 0:
			var d fr.Element
			d.SetInt64(f.w)
			a[wid].Add(&a[wid], &d)
			a[totalID].Add(&a[totalID], &d)
		default:
			var o fr.Element
			if f.k == 0 {
				o.SetInt64(f.one)
			} // else one = 0
			a[oneID].Set(&o)
			a[wid].Mul(&a[wid], &o)
			a[totalID].Mul(&a[totalID], &o)
		}
		bad := broken(a)
		if len(bad) != 1 {
			t.Errorf("%s: broken constraints %v, want exactly one", f.name, bad)
			continue
		}
		if f.w != 0 && bad[0] != found {
			t.Errorf("%s: broke constraint %d, want the sum's own (%d)", f.name, bad[0], found)
		}
		if f.w == 0 && bad[0] == found {
			t.Errorf("%s: broke the sum's constraint, want one = 1", f.name)
		}
	}
}
