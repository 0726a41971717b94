package circuits

// Forged-witness tests of the range argument (both range-check modes) and of the
// commitment packing. The hint-level fuzzer (internal/hintfuzz) forges every other
// gadget through real lowered models.

import (
	"fmt"
	"math/big"
	"math/rand"
	"testing"

	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"

	"github.com/zkml/zkml/model/quant"
)

// checkCircuit proves 0 <= X[i] < 2^bits for every i, through arith's range checker
// in the given mode ("" for zkml's log-derivative argument, "bits" for gnark's binary
// decomposition).
type checkCircuit struct {
	X    []frontend.Variable
	bits int
	mode string
}

func (c *checkCircuit) Define(api frontend.API) error {
	a := newArithMode(api, nil, c.mode)
	for _, x := range c.X {
		a.check(x, c.bits)
	}
	return nil
}

// hintForgery rewrites the outputs of every call of one hint, after the honest hint.
type hintForgery struct {
	name  string
	hint  solver.HintID
	forge func(in, out []*big.Int)
}

// solveCheck reports whether x solves ccs (a checkCircuit of one value) with the
// forgery applied; a solver panic counts as not solved.
func solveCheck(ccs constraint.ConstraintSystem, x *big.Int, f *hintForgery) (err error) {
	w, err := frontend.NewWitness(&checkCircuit{X: []frontend.Variable{x}}, Field)
	if err != nil {
		return err
	}
	var opts []solver.Option
	if f != nil {
		var honest solver.Hint
		for _, h := range solver.GetRegisteredHints() {
			if solver.GetHintID(h) == f.hint {
				honest = h
			}
		}
		opts = append(opts, solver.OverrideHint(f.hint, func(field *big.Int, in, out []*big.Int) error {
			if err := honest(field, in, out); err != nil {
				return err
			}
			f.forge(in, out)
			for _, o := range out {
				o.Mod(o, field)
			}
			return nil
		}))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return ccs.IsSolved(w, opts...)
}

// limbForgeries rewrite the low limbs of a t-bit limb decomposition: each limb moved
// by ±1 or ±2^t, carried into the next limb (the same value with a limb >= 2^t or
// < 0), negated, replaced by 2^-k mod r shifts (which move the derived top limb by
// exactly ∓1), and all mass put in limb 0 (a zero top limb).
func limbForgeries(t int) []hintForgery {
	id := solver.GetHintID(limbsHint)
	pt := pow2(t)
	var fs []hintForgery
	add := func(name string, f func(in, out []*big.Int)) {
		fs = append(fs, hintForgery{name: name, hint: id, forge: f})
	}
	for j := range 5 {
		guard := func(f func(out []*big.Int)) func(in, out []*big.Int) {
			return func(_, out []*big.Int) {
				if j < len(out) {
					f(out)
				}
			}
		}
		add(fmt.Sprintf("limb %d +1", j), guard(func(o []*big.Int) { o[j].Add(o[j], bi(1)) }))
		add(fmt.Sprintf("limb %d -1", j), guard(func(o []*big.Int) { o[j].Sub(o[j], bi(1)) }))
		add(fmt.Sprintf("limb %d +2^t, next -1", j), guard(func(o []*big.Int) {
			o[j].Add(o[j], pt)
			if j+1 < len(o) {
				o[j+1].Sub(o[j+1], bi(1))
			}
		}))
		add(fmt.Sprintf("limb %d -2^t, next +1", j), guard(func(o []*big.Int) {
			o[j].Sub(o[j], pt)
			if j+1 < len(o) {
				o[j+1].Add(o[j+1], bi(1))
			}
		}))
		add(fmt.Sprintf("limb %d negated", j), guard(func(o []*big.Int) { o[j].Neg(o[j]) }))
		add(fmt.Sprintf("limb %d + 2^-t mod r", j), guard(func(o []*big.Int) {
			o[j].Add(o[j], new(big.Int).ModInverse(pt, Field))
		}))
	}
	add("all in limb 0 (top limb 0)", func(in, out []*big.Int) {
		out[0].Set(in[1])
		for j := 1; j < len(out); j++ {
			out[j].SetInt64(0)
		}
	})
	return fs
}

// countForgeries rewrite the multiplicities of the range argument's table: one more
// or one less of a value, a count moved, every count zero, and a count for the
// residue mod 2^t of every query outside the table (as if it were in it).
func countForgeries() []hintForgery {
	id := solver.GetHintID(rangeCountHint)
	var fs []hintForgery
	add := func(name string, f func(in, out []*big.Int)) {
		fs = append(fs, hintForgery{name: name, hint: id, forge: f})
	}
	add("count[0] +1", func(_, out []*big.Int) { out[0].Add(out[0], bi(1)) })
	add("count[last] -1", func(_, out []*big.Int) { out[len(out)-1].Sub(out[len(out)-1], bi(1)) })
	add("count moved 0 -> 1", func(_, out []*big.Int) { out[0].Sub(out[0], bi(1)); out[1].Add(out[1], bi(1)) })
	add("all counts 0", func(_, out []*big.Int) {
		for _, o := range out {
			o.SetInt64(0)
		}
	})
	add("out-of-table queries counted at their residue", func(in, out []*big.Int) {
		size := big.NewInt(int64(len(out)))
		for _, q := range in[1:] {
			if q.Cmp(size) >= 0 {
				r := new(big.Int).Mod(q, size)
				out[r.Int64()].Add(out[r.Int64()], bi(1))
			}
		}
	})
	return fs
}

// bitForgeries rewrite the binary decomposition of gnark's range checker ("bits"
// mode, the hint bits.nBits): a bit flipped, a bit 2 with the next one lowered (the
// same value), a bit -1 and a bit 1/2. The honest hint already gives an out-of-range
// value's w low bits (a truncation).
func bitForgeries() []hintForgery {
	var fs []hintForgery
	for _, h := range bits.GetHints() {
		if name := solver.GetHintName(h); name != "github.com/consensys/gnark/std/math/bits.nBits" {
			continue
		}
		id := solver.GetHintID(h)
		add := func(name string, f func(in, out []*big.Int)) {
			fs = append(fs, hintForgery{name: "nBits: " + name, hint: id, forge: f})
		}
		for _, j := range []int{0, 1, 7, 30, 61} {
			guard := func(f func(out []*big.Int)) func(in, out []*big.Int) {
				return func(_, out []*big.Int) {
					if j < len(out) {
						f(out)
					}
				}
			}
			add(fmt.Sprintf("bit %d flipped", j), guard(func(o []*big.Int) { o[j].Sub(bi(1), o[j]) }))
			add(fmt.Sprintf("bit %d +2, bit %d -1", j, j+1), guard(func(o []*big.Int) {
				o[j].Add(o[j], bi(2))
				if j+1 < len(o) {
					o[j+1].Sub(o[j+1], bi(1))
				}
			}))
			add(fmt.Sprintf("bit %d = -1", j), guard(func(o []*big.Int) { o[j].SetInt64(-1) }))
			add(fmt.Sprintf("bit %d = 1/2", j), guard(func(o []*big.Int) { o[j].ModInverse(bi(2), Field) }))
		}
	}
	if len(fs) == 0 {
		panic("gnark's bits.nBits hint not found")
	}
	return fs
}

// TestForgedRangeArgument: for every width 2..62 and both range-check modes, under
// R1CS and PLONK, values in [0, 2^w) solve honestly and with no forged decomposition
// (the decomposition is unique), and values outside it (2^w, 2^w + 1, 2^(w+1) - 1,
// -1, -2^w, (r-1)/2, 2^62 and beyond) solve with no forged limbs, multiplicities or
// bits.
func TestForgedRangeArgument(t *testing.T) {
	quietGnark(t)
	widths := make([]int, 0, 61)
	for w := 2; w <= 62; w++ {
		widths = append(widths, w)
	}
	if testing.Short() {
		widths = []int{2, 3, 4, 5, 8, 15, 16, 17, 24, 31, 32, 33, 40, 61, 62}
	}
	rng := rand.New(rand.NewSource(12))
	half := new(big.Int).Rsh(Field, 1)
	tried, rejected, inapplicable := 0, 0, 0
	for _, mode := range []string{"", "bits"} {
		var forgeries []hintForgery
		if mode == "bits" {
			forgeries = bitForgeries()
		} else {
			forgeries = countForgeries()
		}
		for _, bld := range gadgetBuilders {
			for _, w := range widths {
				ccs, err := frontend.Compile(Field, bld.b, &checkCircuit{X: make([]frontend.Variable, 1), bits: w, mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				fs := forgeries
				if mode == "" {
					// The table width the argument picked for one w-bit check.
					ra := &rangeArg{checks: []rangeCheck{{nil, w}}}
					fs = append(limbForgeries(ra.tableBits()), fs...)
				}
				lim := pow2(w)
				inRange := []*big.Int{bi(0), bi(1), new(big.Int).Sub(lim, bi(1)), new(big.Int).Rand(rng, lim)}
				outRange := []*big.Int{
					lim, new(big.Int).Add(lim, bi(1)), new(big.Int).Sub(new(big.Int).Lsh(lim, 1), bi(1)),
					modp(bi(-1)), modp(new(big.Int).Neg(lim)), half, pow2(62), new(big.Int).Add(pow2(62), new(big.Int).Rand(rng, lim)),
				}
				what := fmt.Sprintf("%s/%s/w=%d", modeName(mode), bld.name, w)
				for _, v := range inRange {
					if err := solveCheck(ccs, v, nil); err != nil {
						t.Fatalf("%s: %v in range but not solved: %v", what, v, err)
					}
				}
				for _, f := range fs {
					for _, v := range append(inRange, outRange...) {
						tried++
						if solveCheck(ccs, v, &f) != nil {
							rejected++
						} else if v.Cmp(lim) >= 0 {
							t.Errorf("FORGERY ACCEPTED: %s: %v (out of range) proven in range with %s", what, v, f.name)
						} else if changes(f, v, ccs) {
							t.Errorf("%s: %v decomposed two ways (%s)", what, v, f.name)
						} else {
							inapplicable++ // nothing to rewrite (a limb or bit v does not have)
						}
					}
				}
				for _, v := range outRange {
					if solveCheck(ccs, v, nil) == nil {
						t.Errorf("FORGERY ACCEPTED: %s: %v (out of range) solved with the honest hints", what, v)
					}
				}
			}
		}
	}
	t.Logf("range argument: %d forged decompositions tried, %d rejected, %d left the hint's outputs unchanged (and solved in range), none accepted", tried, rejected, inapplicable)
}

// changes reports whether forgery f rewrites anything for value v (a forgery that
// leaves the honest outputs unchanged, such as moving a limb that does not exist,
// proves nothing when it solves).
func changes(f hintForgery, v *big.Int, ccs constraint.ConstraintSystem) bool {
	changed := false
	probe := hintForgery{name: f.name, hint: f.hint, forge: func(in, out []*big.Int) {
		before := clone(out)
		f.forge(in, out)
		for i := range out {
			if modp(out[i]).Cmp(modp(before[i])) != 0 {
				changed = true
			}
		}
	}}
	_ = solveCheck(ccs, v, &probe)
	return changed
}

func modeName(mode string) string {
	if mode == "" {
		return "lookup"
	}
	return mode
}

// TestCommitmentPackingCollision is issue 12's second exploit through the public API:
// inputs are hashed, and were packed at the program's Bits (24) while range-checked
// only to 32 bits (an int32 model input), so x' = (2^24 - 5, 2) packed like
// x = (-5, 3). A witness with the secret input x' and the public commitment of x must
// not solve: the group is now packed at the width its values are checked to, and the
// commitment gadget range-checks every packed value.
func TestCommitmentPackingCollision(t *testing.T) {
	quietGnark(t)
	const packBits, checkBits = 24, 32
	p := &quant.Program{Config: quant.DefaultConfig()}
	p.Bits = packBits
	p.InputVis = quant.Hashed
	p.Values = []quant.Value{{Shape: []int{2}, Bound: 1<<(checkBits-1) - 1}, {Shape: []int{2}, Bound: 1<<(checkBits-1) - 1}}
	p.Inputs, p.Outputs = []int{0}, []int{1}
	p.Layers = []*quant.Layer{{Name: "input x", Op: "Input", Kind: quant.KRangeChk, In: []int{0}, Out: 1, Bits: checkBits}}
	x := []int64{-5, 3}
	forged := []int64{1<<packBits - 5, 2}
	cs, err := Commitments(p, [][]int64{x}, [][]int64{x})
	if err != nil {
		t.Fatal(err)
	}
	cx := cs[0]
	// The collision itself: packed at 24 bits (u = v + 2^23, little-endian), both
	// tensors are the same field element, so only a range check of every packed value
	// to 24 bits tells them apart.
	pack := func(v []int64) *big.Int {
		u0, u1 := bi(v[0]+1<<(packBits-1)), bi(v[1]+1<<(packBits-1))
		return u0.Add(u0, u1.Lsh(u1, packBits))
	}
	if pack(x).Cmp(pack(forged)) != 0 {
		t.Fatal("control: the two inputs should pack alike")
	}
	for _, sys := range []System{Groth16, Plonk} {
		ccs, _, err := Compile(p, sys)
		if err != nil {
			t.Fatal(err)
		}
		l := NewLayout(p)
		if len(l.Hashes) != 1 || l.Hashes[0].Tag != TagInputs {
			t.Fatalf("layout hashes %+v, want the inputs' commitment", l.Hashes)
		}
		assign := func(in []int64, commitment *big.Int) *Circuit {
			c := New(p)
			for i, v := range in {
				c.Secret[l.Inputs[0].Offset+i] = v
				c.Public[l.Outputs[0].Offset+i] = v
			}
			c.Public[l.Hashes[0].Offset] = commitment
			return c
		}
		honest, err := frontend.NewWitness(assign(x, cx), Field)
		if err != nil {
			t.Fatal(err)
		}
		if err := ccs.IsSolved(honest); err != nil {
			t.Fatalf("%s: honest witness not solved: %v", sys, err)
		}
		w, err := frontend.NewWitness(assign(forged, cx), Field)
		if err != nil {
			t.Fatal(err)
		}
		if ccs.IsSolved(w) == nil {
			t.Errorf("FORGERY ACCEPTED (%s): input %v proven under the commitment of %v", sys, forged, x)
		}
	}
}
