package circuits

// Gadget-level soundness and bit-exactness tests.
//
// Every gadget of arith (the gnark implementation of quant.Arith) is compared with the
// integer reference quant.IntArith on table-driven boundary values and random values,
// under both constraint systems (R1CS for Groth16, SCS for PLONK): an in-domain value
// must solve with exactly the reference output and with no neighbouring output, and an
// out-of-domain value must not solve at all. The forgery tests then replace the
// gadgets' hints with malicious ones (solver.OverrideHint) and check that no forged
// witness satisfies the constraints.

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand"
	"sync/atomic"
	"testing"

	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
	"github.com/consensys/gnark/logger"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// quietGnark silences gnark's logger for the test (the solver logs every failed
// constraint and, outside a prover, that the commitment is a random placeholder).
func quietGnark(t testing.TB) {
	prev := logger.Logger()
	logger.Disable()
	t.Cleanup(func() { logger.Set(prev) })
}

var gadgetBuilders = []struct {
	name string
	b    frontend.NewBuilder
}{{"r1cs", r1cs.NewBuilder[constraint.U64]}, {"scs", scs.NewBuilder[constraint.U64]}}

// gadgetCircuit applies op to consecutive groups of arity inputs of X. With Out
// non-empty, output i is asserted equal to the public Out[i]; with Out empty (a "free"
// circuit) the outputs are left unconstrained, so a failure can only come from the
// gadget's own constraints.
type gadgetCircuit struct {
	X   []frontend.Variable
	Out []frontend.Variable `gnark:",public"`

	arity int
	op    func(a *arith, in []frontend.Variable) frontend.Variable
}

func (c *gadgetCircuit) Define(api frontend.API) error {
	a := newArith(api, nil)
	for i := 0; i*c.arity < len(c.X); i++ {
		out := c.op(a, c.X[i*c.arity:(i+1)*c.arity])
		if len(c.Out) > 0 {
			api.AssertIsEqual(out, c.Out[i])
		}
	}
	return nil
}

// errPanic marks a solver panic turned into an error.
var errPanic = errors.New("gnark panicked")

func compileGadget(t testing.TB, b frontend.NewBuilder, arity, n int, free bool, op func(a *arith, in []frontend.Variable) frontend.Variable) constraint.ConstraintSystem {
	t.Helper()
	c := &gadgetCircuit{X: make([]frontend.Variable, n*arity), arity: arity, op: op}
	if !free {
		c.Out = make([]frontend.Variable, n)
	}
	ccs, err := frontend.Compile(Field, b, c, frontend.IgnoreUnconstrainedInputs())
	if err != nil {
		t.Fatal(err)
	}
	return ccs
}

// solveGadget reports whether (x, out) solves ccs (out nil for a free circuit). A gnark
// panic is returned as an error wrapping errPanic.
func solveGadget(ccs constraint.ConstraintSystem, x, out []any, opts ...solver.Option) (err error) {
	c := &gadgetCircuit{}
	for _, v := range x {
		c.X = append(c.X, v)
	}
	for _, v := range out {
		c.Out = append(c.Out, v)
	}
	w, err := frontend.NewWitness(c, Field)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return ccs.IsSolved(w, opts...)
}

func anys(v []int64) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// gadget describes one gadget configuration and its reference.
type gadget struct {
	name  string
	arity int
	circ  func(a *arith, in []frontend.Variable) frontend.Variable
	ref   func(a *quant.IntArith, in []int64) int64
	cases [][]int64                  // boundary and table-driven inputs, valid or not
	rand  func(r *rand.Rand) []int64 // a random in-domain input
}

func randIn(r *rand.Rand, lo, hi int64) int64 { return lo + r.Int63n(hi-lo) } // [lo, hi)

func rescaleGadget(k, bits int, relu bool) gadget {
	half := int64(1) << (bits - 1)
	var xs []int64
	add := func(v ...int64) { xs = append(xs, v...) }
	if k == 0 {
		add(-half-2, -half-1, -half, -half+1, -2, -1, 0, 1, 2, half-2, half-1, half, half+1, 1<<40, -(1 << 40))
	} else {
		h := int64(1) << (k - 1)
		// For each target quotient, both ends and the middle of the x interval rounding to it.
		for _, q := range []int64{-half - 1, -half, -half + 1, -2, -1, 0, 1, 2, half - 2, half - 1, half} {
			lo, hi := q<<k-h, q<<k+h-1
			add(lo, hi, lo+(hi-lo)/2)
		}
		// Rounding ties and negatives whose floor differs from truncation.
		add(h, h-1, -h, -h-1, -h+1, 3*h, -3*h, 5*h, -5*h, -1, -2*h+1, -2*h-1, 2*h+h-1)
		add(half<<k+(half<<(k-1)), -(half << (k + 1)))
	}
	name := fmt.Sprintf("Rescale/k=%d/bits=%d/relu=%v", k, bits, relu)
	return gadget{
		name: name, arity: 1, cases: wrapEach(xs),
		circ: func(a *arith, in []frontend.Variable) frontend.Variable { return a.Rescale(in[0], k, bits, relu) },
		ref:  func(a *quant.IntArith, in []int64) int64 { return a.Rescale(in[0], k, bits, relu) },
		rand: func(r *rand.Rand) []int64 {
			lo := -(half << k)
			if k > 0 {
				lo -= int64(1) << (k - 1)
			}
			return []int64{randIn(r, lo, lo+(2*half)<<k)}
		},
	}
}

func wrapEach(xs []int64) [][]int64 {
	out := make([][]int64, len(xs))
	for i, x := range xs {
		out[i] = []int64{x}
	}
	return out
}

func signedBoundaries(bits int) []int64 {
	half := int64(1) << (bits - 1)
	return []int64{-half - 2, -half - 1, -half, -half + 1, -1, 0, 1, half - 1, half, half + 1, 1 << 45, -(1 << 45)}
}

func reluGadget(bits int) gadget {
	half := int64(1) << (bits - 1)
	return gadget{
		name: fmt.Sprintf("Relu/bits=%d", bits), arity: 1, cases: wrapEach(signedBoundaries(bits)),
		circ: func(a *arith, in []frontend.Variable) frontend.Variable { return a.Relu(in[0], bits) },
		ref:  func(a *quant.IntArith, in []int64) int64 { return a.Relu(in[0], bits) },
		rand: func(r *rand.Rand) []int64 { return []int64{randIn(r, -half, half)} },
	}
}

func rangeGadget(bits int) gadget {
	half := int64(1) << (bits - 1)
	return gadget{
		name: fmt.Sprintf("RangeCheck/bits=%d", bits), arity: 1, cases: wrapEach(signedBoundaries(bits)),
		circ: func(a *arith, in []frontend.Variable) frontend.Variable { a.RangeCheck(in[0], bits); return in[0] },
		ref:  func(a *quant.IntArith, in []int64) int64 { a.RangeCheck(in[0], bits); return in[0] },
		rand: func(r *rand.Rand) []int64 { return []int64{randIn(r, -half, half)} },
	}
}

// maxOf is max(m, y) exactly as quant writes it (KMax, softmax): y + relu(m - y).
func maxOf[V any](a quant.Arith[V], m, y V, bits int) V {
	return a.Add(y, a.Relu(a.Add(m, a.MulConst(y, -1)), bits+1))
}

func maxGadget(bits int) gadget {
	half := int64(1) << (bits - 1)
	var cases [][]int64
	for _, m := range []int64{-half, -half + 1, -1, 0, 1, half - 1} {
		for _, y := range []int64{-half, -1, 0, 1, half - 1} {
			cases = append(cases, []int64{m, y})
		}
	}
	// |m - y| must be below 2^bits: these are at and past the edge.
	cases = append(cases, []int64{half, -half}, []int64{-half, half}, []int64{-half - 1, half - 1}, []int64{-half - 2, half - 1}, []int64{half - 1, -half - 1})
	return gadget{
		name: fmt.Sprintf("Max/bits=%d", bits), arity: 2, cases: cases,
		circ: func(a *arith, in []frontend.Variable) frontend.Variable {
			return maxOf[frontend.Variable](a, in[0], in[1], bits)
		},
		ref:  func(a *quant.IntArith, in []int64) int64 { return maxOf[int64](a, in[0], in[1], bits) },
		rand: func(r *rand.Rand) []int64 { return []int64{randIn(r, -half, half), randIn(r, -half, half)} },
	}
}

var testTable = &quant.Table{Name: "test", Lo: -5, Values: []int64{-1 << 30, -7, -1, 0, 0, 3, 1 << 20, 42, -(1 << 40), 9, 11}}

func lookupGadget() gadget {
	t := testTable
	n := int64(len(t.Values))
	return gadget{
		name: "Lookup", arity: 1,
		cases: wrapEach([]int64{t.Lo - 100, t.Lo - 1, t.Lo, t.Lo + 1, 0, t.Lo + n - 2, t.Lo + n - 1, t.Lo + n, t.Lo + n + 1, 1 << 40}),
		circ:  func(a *arith, in []frontend.Variable) frontend.Variable { return a.Lookup(t, in[0]) },
		ref:   func(a *quant.IntArith, in []int64) int64 { return a.Lookup(t, in[0]) },
		rand:  func(r *rand.Rand) []int64 { return []int64{randIn(r, t.Lo, t.Lo+n)} },
	}
}

// Softmax-like DivFloor domain: aBits = 2*scale+1, quotient below 2^(scale+1).
const divA, divB, divQ = 17, 12, 9

func divGadget() gadget {
	bmax := int64(1)<<divB - 1
	qmax := int64(1)<<divQ - 1
	cases := [][]int64{
		{0, 1}, {1, 1}, {qmax, 1}, {qmax + 1, 1}, // quotient at and past 2^qBits
		{0, bmax}, {1<<divA - 1, bmax}, {bmax - 1, bmax}, {bmax, bmax}, {bmax + 1, bmax},
		{7 * 100, 100}, {7*100 + 99, 100}, {7*100 - 1, 100}, // remainder 0, b-1
		{qmax * 200, 200}, {qmax*200 + 199, 200}, {(qmax + 1) * 200, 200},
		{5, 0}, {0, 0}, {-1, 3}, {-300, 7}, {10, -3}, // b = 0, a < 0, b < 0
	}
	return gadget{
		name: fmt.Sprintf("DivFloor/%d/%d/%d", divA, divB, divQ), arity: 2, cases: cases,
		circ: func(a *arith, in []frontend.Variable) frontend.Variable {
			return a.DivFloor(in[0], in[1], divA, divB, divQ)
		},
		ref: func(a *quant.IntArith, in []int64) int64 { return a.DivFloor(in[0], in[1], divA, divB, divQ) },
		rand: func(r *rand.Rand) []int64 {
			b := randIn(r, 1, bmax+1)
			q := randIn(r, 0, min(qmax+1, (1<<divA-1)/b+1))
			return []int64{min(q*b+randIn(r, 0, b), 1<<divA-1), b}
		},
	}
}

func allGadgets() []gadget {
	g := []gadget{
		rescaleGadget(8, 24, false), rescaleGadget(8, 24, true),
		rescaleGadget(1, 8, false), rescaleGadget(1, 8, true),
		rescaleGadget(20, 40, false), rescaleGadget(20, 40, true),
		rescaleGadget(0, 24, false), rescaleGadget(0, 24, true),
		reluGadget(2), reluGadget(24), reluGadget(41),
		rangeGadget(2), rangeGadget(24), rangeGadget(40),
		maxGadget(24), maxGadget(8),
		lookupGadget(), divGadget(),
	}
	return g
}

// TestGadgetsMatchIntArith: for every gadget, both constraint systems, boundary and
// random inputs: an input IntArith accepts solves with IntArith's output and not with
// output±1; an input IntArith rejects does not solve even with the output left free.
func TestGadgetsMatchIntArith(t *testing.T) {
	quietGnark(t)
	nRand := 64
	if testing.Short() {
		nRand = 16
	}
	for _, g := range allGadgets() {
		t.Run(g.name, func(t *testing.T) {
			for _, bld := range gadgetBuilders {
				one := compileGadget(t, bld.b, g.arity, 1, false, g.circ)
				free := compileGadget(t, bld.b, g.arity, 1, true, g.circ)
				valid := 0
				for _, in := range g.cases {
					ia := &quant.IntArith{}
					want := g.ref(ia, in)
					if ia.Err() != nil {
						if err := solveGadget(free, anys(in), nil); err == nil {
							t.Errorf("%s: input %v solved, but IntArith rejects it: %v", bld.name, in, ia.Err())
						} else if errors.Is(err, errPanic) {
							t.Logf("%s: input %v rejected by a gnark panic rather than an error: %v", bld.name, in, err)
						}
						continue
					}
					valid++
					if err := solveGadget(one, anys(in), []any{want}); err != nil {
						t.Errorf("%s: input %v with IntArith output %d not solved: %v", bld.name, in, want, err)
					}
					for _, d := range []int64{-1, 1} {
						if err := solveGadget(one, anys(in), []any{want + d}); err == nil {
							t.Errorf("%s: input %v solved with output %d, IntArith gives %d", bld.name, in, want+d, want)
						}
					}
				}
				if valid == 0 || valid == len(g.cases) {
					t.Fatalf("cases should mix valid and invalid inputs (%d of %d valid)", valid, len(g.cases))
				}

				// Random in-domain values, batched.
				r := rand.New(rand.NewSource(int64(len(g.name))))
				batch := compileGadget(t, bld.b, g.arity, nRand, false, g.circ)
				var xs, outs []int64
				for range nRand {
					in := g.rand(r)
					ia := &quant.IntArith{}
					out := g.ref(ia, in)
					if ia.Err() != nil {
						t.Fatalf("random input %v out of domain: %v", in, ia.Err())
					}
					xs = append(xs, in...)
					outs = append(outs, out)
				}
				if err := solveGadget(batch, anys(xs), anys(outs)); err != nil {
					t.Errorf("%s: random batch %v -> %v not solved: %v", bld.name, xs, outs, err)
				}
				i := r.Intn(nRand)
				outs[i]++
				if err := solveGadget(batch, anys(xs), anys(outs)); err == nil {
					t.Errorf("%s: random batch solved with output %d off by one", bld.name, i)
				}
			}
		})
	}
}

// TestReluOneBit: Relu with bits = 1 (a value whose bound is 0) must agree with IntArith.
func TestReluOneBit(t *testing.T) {
	quietGnark(t)
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 1, 1, false, func(a *arith, in []frontend.Variable) frontend.Variable { return a.Relu(in[0], 1) })
		for _, x := range []int64{-1, 0} {
			ia := &quant.IntArith{}
			want := ia.Relu(x, 1)
			err := solveGadget(ccs, []any{x}, []any{want})
			if (ia.Err() == nil) != (err == nil) {
				t.Skipf("BUG (minor, not soundness): Relu(x=%d, bits=1): IntArith err=%v out=%d, circuit (%s) err=%v. "+
					"IntArith's inRange accepts [-2^(bits-1), 2^(bits-1)) = [-1, 1), the circuit asserts x == 0", x, ia.Err(), want, bld.name, err)
			}
		}
		// Out of range on both sides.
		for _, x := range []int64{1, -2} {
			if err := solveGadget(ccs, []any{x}, []any{max(x, 0)}); err == nil {
				t.Errorf("%s: Relu(%d, 1) solved", bld.name, x)
			}
		}
	}
}

// TestDivFloorDomain documents that DivFloor does not itself enforce its preconditions
// a < 2^aBits and b < 2^bBits (the quant program guarantees them statically), and
// checks that whatever it accepts, it only accepts the exact floor.
func TestDivFloorDomain(t *testing.T) {
	quietGnark(t)
	op := func(a *arith, in []frontend.Variable) frontend.Variable {
		return a.DivFloor(in[0], in[1], divA, divB, divQ)
	}
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 2, 1, false, op)
		for _, in := range [][]int64{
			{1 << divA, 1 << (divB - 1)},           // a = 2^aBits, quotient fits
			{3 << divB, 1 << divB},                 // b = 2^bBits
			{5 << divB, 1<<(divB+1) - 1},           // largest b the two remainder checks allow
			{1<<(divB+1) + 3, 1 << (divB + 1)},     // b = 2^(bBits+1): rejected
			{1<<(divA+2) + 12345, 1<<(divB+1) - 1}, // a = 2^(aBits+2)+...
		} {
			ia := &quant.IntArith{}
			ia.DivFloor(in[0], in[1], divA, divB, divQ)
			q := in[0] / in[1]
			err := solveGadget(ccs, anys(in), []any{q})
			t.Logf("%s: DivFloor(%d, %d): IntArith err=%v; circuit with floor %d: solved=%v", bld.name, in[0], in[1], ia.Err() != nil, q, err == nil)
			for _, d := range []int64{-1, 1} {
				if err := solveGadget(ccs, anys(in), []any{q + d}); err == nil {
					t.Errorf("%s: DivFloor(%d, %d) solved with %d, floor is %d", bld.name, in[0], in[1], q+d, q)
				}
			}
			if in[1] >= 1<<(divB+1) && err == nil {
				t.Errorf("%s: DivFloor(%d, %d) solved with b >= 2^(bBits+1)", bld.name, in[0], in[1])
			}
		}
	}
}

// TestLookupSoundness: a wrong claimed output and an index outside the table do not
// solve (and gnark reports them as errors, not panics).
func TestLookupSoundness(t *testing.T) {
	quietGnark(t)
	tb := testTable
	op := func(a *arith, in []frontend.Variable) frontend.Variable { return a.Lookup(tb, in[0]) }
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 1, 1, false, op)
		for i, v := range tb.Values {
			x := tb.Lo + int64(i)
			if err := solveGadget(ccs, []any{x}, []any{v}); err != nil {
				t.Errorf("%s: lookup %d -> %d not solved: %v", bld.name, x, v, err)
			}
			for _, w := range []int64{v + 1, v - 1, tb.Values[(i+1)%len(tb.Values)]} {
				if w == v {
					continue
				}
				if err := solveGadget(ccs, []any{x}, []any{w}); err == nil {
					t.Errorf("%s: lookup %d solved with wrong output %d (want %d)", bld.name, x, w, v)
				}
			}
		}
		// Outside the table: whatever output is claimed (including the value the index
		// would have with wrap-around), it must not solve.
		n := int64(len(tb.Values))
		for _, x := range []int64{tb.Lo - 1, tb.Lo + n, tb.Lo - n, tb.Lo + 2*n, 1 << 62} {
			for _, w := range []int64{0, tb.Values[0], tb.Values[n-1]} {
				err := solveGadget(ccs, []any{x}, []any{w})
				if err == nil {
					t.Errorf("%s: lookup of %d outside the table solved with %d", bld.name, x, w)
				} else if errors.Is(err, errPanic) {
					t.Logf("%s: lookup of %d outside the table: gnark panicked (recovered): %v", bld.name, x, err)
				}
			}
		}
	}
}

// ---- Forged witnesses ----

// forgery replaces a hint's honest outputs; claimed is the gadget output the forged
// witness would make the circuit produce.
type forgery struct {
	name  string
	forge func(honest []*big.Int) []*big.Int
}

func modp(v *big.Int) *big.Int { return new(big.Int).Mod(v, Field) }

func bi(v int64) *big.Int { return big.NewInt(v) }

func clone(v []*big.Int) []*big.Int {
	out := make([]*big.Int, len(v))
	for i := range v {
		out[i] = new(big.Int).Set(v[i])
	}
	return out
}

// runForgery overrides hint by (honest hint, then forge) and checks that the circuit,
// with its output asserted equal to the output the forged hint values imply (claimed),
// does not solve. The identity forgery must solve: it shows that the override is used
// and claimed is computed right. It returns whether the forged witness solved.
func runForgery(t *testing.T, ccs constraint.ConstraintSystem, hint solver.Hint, nOut int, x []any, claimed func(h []*big.Int) *big.Int, hintIn []*big.Int, f forgery) bool {
	t.Helper()
	var calls atomic.Int32
	mal := func(field *big.Int, in, out []*big.Int) error {
		calls.Add(1)
		if err := hint(field, in, out); err != nil {
			return err
		}
		forged := f.forge(clone(out))
		for i := range out {
			out[i].Set(modp(forged[i]))
		}
		return nil
	}
	honest := make([]*big.Int, nOut)
	for i := range honest {
		honest[i] = new(big.Int)
	}
	if err := hint(Field, hintIn, honest); err != nil {
		t.Fatal(err)
	}
	want := modp(claimed(f.forge(clone(honest))))
	err := solveGadget(ccs, x, []any{want}, solver.OverrideHint(solver.GetHintID(hint), mal))
	if calls.Load() == 0 {
		t.Fatalf("%s: malicious hint was never called", f.name)
	}
	return err == nil
}

func identity(h []*big.Int) []*big.Int { return h }

func mustReject(t *testing.T, what string, solved bool) {
	t.Helper()
	if solved {
		t.Errorf("FORGERY ACCEPTED: %s", what)
	}
}

// classicQuotient is the forgery that beats a remainder-only check:
// q' = (x' - r') * 2^-k mod p for an in-range remainder r' != r.
func classicQuotient(xr *big.Int, rForged int64, k int) *big.Int {
	inv := new(big.Int).ModInverse(pow2(k), Field)
	q := new(big.Int).Sub(xr, bi(rForged))
	q.Mul(q, inv)
	return modp(q)
}

func TestForgedRescale(t *testing.T) {
	quietGnark(t)
	const k, bits = 8, 24
	half := int64(1) << (bits - 1)
	for _, bld := range gadgetBuilders {
		for _, x := range []int64{1000, -1000, 0, -129, 127, (half-1)<<k + 100, -(half << k) - 128} {
			xr := x + 1<<(k-1)
			q := xr >> k
			r := xr - q<<k
			in := []*big.Int{modp(bi(xr)), bi(k), bi(bits), bi(0)}
			// Without relu: hint output is q.
			ccs := compileGadget(t, bld.b, 1, 1, false, func(a *arith, v []frontend.Variable) frontend.Variable { return a.Rescale(v[0], k, bits, false) })
			outQ := func(h []*big.Int) *big.Int { return h[0] }
			if !runForgery(t, ccs, rescaleHint, 1, []any{x}, outQ, in, forgery{"identity", identity}) {
				t.Fatalf("%s: honest rescale of %d not solved through the override", bld.name, x)
			}
			rf := (r + 1) % (1 << k)
			for _, f := range []forgery{
				{"q+1", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Add(h[0], bi(1))} }},
				{"q-1", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Sub(h[0], bi(1))} }},
				{"q+2^bits", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Add(h[0], bi(1<<bits))} }},
				{"classic q'=(x'-r')/2^k", func(h []*big.Int) []*big.Int { return []*big.Int{classicQuotient(bi(xr), rf, k)} }},
				{"classic q'=(x'-r')/2^k, r'=r+5", func(h []*big.Int) []*big.Int { return []*big.Int{classicQuotient(bi(xr), (r+5)%(1<<k), k)} }},
			} {
				mustReject(t, fmt.Sprintf("%s: Rescale(x=%d,k=%d,bits=%d) hint %s (honest q=%d r=%d)", bld.name, x, k, bits, f.name, q, r),
					runForgery(t, ccs, rescaleHint, 1, []any{x}, outQ, in, f))
			}

			// With relu: hint outputs (s, low), q = s*2^(bits-1) + low - 2^(bits-1), out = s*low.
			ccsR := compileGadget(t, bld.b, 1, 1, false, func(a *arith, v []frontend.Variable) frontend.Variable { return a.Rescale(v[0], k, bits, true) })
			inR := []*big.Int{modp(bi(xr)), bi(k), bi(bits), bi(1)}
			outR := func(h []*big.Int) *big.Int { return new(big.Int).Mul(h[0], h[1]) }
			if !runForgery(t, ccsR, rescaleHint, 2, []any{x}, outR, inR, forgery{"identity", identity}) {
				t.Fatalf("%s: honest relu rescale of %d not solved through the override", bld.name, x)
			}
			hv := bi(half)
			for _, f := range []forgery{
				// Flip the sign and move low to keep q: low leaves [0, 2^(bits-1)).
				{"wrong sign, same q", func(h []*big.Int) []*big.Int {
					s := 1 - h[0].Int64()
					low := new(big.Int).Sub(h[1], new(big.Int).Mul(bi(int64(s)-h[0].Int64()), hv))
					return []*big.Int{bi(int64(s)), low}
				}},
				{"wrong sign, same low", func(h []*big.Int) []*big.Int { return []*big.Int{bi(1 - h[0].Int64()), h[1]} }},
				{"sign 2, same q", func(h []*big.Int) []*big.Int {
					low := new(big.Int).Sub(h[1], new(big.Int).Mul(bi(2-h[0].Int64()), hv))
					return []*big.Int{bi(2), low}
				}},
				{"sign -1, same q", func(h []*big.Int) []*big.Int {
					low := new(big.Int).Sub(h[1], new(big.Int).Mul(bi(-1-h[0].Int64()), hv))
					return []*big.Int{bi(-1), low}
				}},
				{"low+1", func(h []*big.Int) []*big.Int { return []*big.Int{h[0], h[1].Add(h[1], bi(1))} }},
				{"low-1", func(h []*big.Int) []*big.Int { return []*big.Int{h[0], h[1].Sub(h[1], bi(1))} }},
				{"low out of range (s=1, low=q: for q<0 it leaks a negative; for q>=0 low=q+2^(bits-1))", func(h []*big.Int) []*big.Int {
					if q < 0 {
						return []*big.Int{bi(1), bi(q)}
					}
					return []*big.Int{bi(1), bi(q + half)}
				}},
				{"classic q' as s=1, low=q'", func(h []*big.Int) []*big.Int {
					return []*big.Int{bi(1), classicQuotient(bi(xr), rf, k)}
				}},
				{"classic q' as s=0, low=q'+2^(bits-1)", func(h []*big.Int) []*big.Int {
					return []*big.Int{bi(0), new(big.Int).Add(classicQuotient(bi(xr), rf, k), hv)}
				}},
			} {
				mustReject(t, fmt.Sprintf("%s: Rescale relu(x=%d,k=%d,bits=%d) hint %s (honest q=%d)", bld.name, x, k, bits, f.name, q),
					runForgery(t, ccsR, rescaleHint, 2, []any{x}, outR, inR, f))
			}
		}
	}
}

// weakRescale is the remainder-only rescale DESIGN.md warns about (quotient unchecked).
// It exists to show the classic forgery is a real attack, so the test above is not
// vacuous.
func weakRescale(a *arith, x frontend.Variable, k, bits int) frontend.Variable {
	api := a.api
	xr := api.Add(x, pow2(k-1))
	h, err := api.Compiler().NewHint(rescaleHint, 1, xr, k, bits, 0)
	if err != nil {
		panic(err)
	}
	a.check(api.Sub(xr, api.Mul(h[0], pow2(k))), k)
	return h[0]
}

func TestClassicForgeryBeatsRemainderOnlyCheck(t *testing.T) {
	quietGnark(t)
	const k, bits, x = 8, 24, 1000
	xr := int64(x + 1<<(k-1))
	r := xr % (1 << k)
	in := []*big.Int{bi(xr), bi(k), bi(bits), bi(0)}
	outQ := func(h []*big.Int) *big.Int { return h[0] }
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 1, 1, false, func(a *arith, v []frontend.Variable) frontend.Variable { return weakRescale(a, v[0], k, bits) })
		f := forgery{"classic", func(h []*big.Int) []*big.Int { return []*big.Int{classicQuotient(bi(xr), (r+1)%(1<<k), k)} }}
		if !runForgery(t, ccs, rescaleHint, 1, []any{x}, outQ, in, f) {
			t.Errorf("%s: the classic forgery should satisfy a remainder-only rescale (control experiment failed)", bld.name)
		}
	}
}

func TestForgedRelu(t *testing.T) {
	quietGnark(t)
	for _, bits := range []int{8, 24} {
		half := int64(1) << (bits - 1)
		for _, bld := range gadgetBuilders {
			ccs := compileGadget(t, bld.b, 1, 1, false, func(a *arith, v []frontend.Variable) frontend.Variable { return a.Relu(v[0], bits) })
			for _, x := range []int64{-half, -half + 1, -5, -1, 0, 1, 5, half - 1} {
				in := []*big.Int{modp(bi(x))}
				// out = s*low with low = x + 2^(bits-1) - s*2^(bits-1).
				out := func(h []*big.Int) *big.Int {
					low := new(big.Int).Sub(bi(x+half), new(big.Int).Mul(h[0], bi(half)))
					return low.Mul(low, h[0])
				}
				if !runForgery(t, ccs, signHint, 1, []any{x}, out, in, forgery{"identity", identity}) {
					t.Fatalf("%s: honest relu(%d) not solved through the override", bld.name, x)
				}
				for _, f := range []forgery{
					{"wrong sign", func(h []*big.Int) []*big.Int { return []*big.Int{bi(1 - h[0].Int64())} }},
					{"sign 2", func(h []*big.Int) []*big.Int { return []*big.Int{bi(2)} }},
					{"sign -1", func(h []*big.Int) []*big.Int { return []*big.Int{bi(-1)} }},
					{"sign 1/2", func(h []*big.Int) []*big.Int { return []*big.Int{new(big.Int).ModInverse(bi(2), Field)} }},
				} {
					mustReject(t, fmt.Sprintf("%s: Relu(x=%d,bits=%d) hint %s", bld.name, x, bits, f.name),
						runForgery(t, ccs, signHint, 1, []any{x}, out, in, f))
				}
			}
		}
	}
}

func TestForgedDivFloor(t *testing.T) {
	quietGnark(t)
	op := func(a *arith, in []frontend.Variable) frontend.Variable {
		return a.DivFloor(in[0], in[1], divA, divB, divQ)
	}
	outQ := func(h []*big.Int) *big.Int { return h[0] }
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 2, 1, false, op)
		for _, ab := range [][2]int64{{700, 100}, {799, 100}, {0, 7}, {1<<divA - 1, 1<<divB - 1}, {511 * 200, 200}, {511, 1}} {
			a, b := ab[0], ab[1]
			q, r := a/b, a%b
			in := []*big.Int{bi(a), bi(b)}
			x := []any{a, b}
			if !runForgery(t, ccs, divHint, 1, x, outQ, in, forgery{"identity", identity}) {
				t.Fatalf("%s: honest %d/%d not solved through the override", bld.name, a, b)
			}
			inv := new(big.Int).ModInverse(bi(b), Field)
			classic := func(rf int64) func(h []*big.Int) []*big.Int {
				return func([]*big.Int) []*big.Int {
					qf := new(big.Int).Sub(bi(a), bi(rf))
					return []*big.Int{modp(qf.Mul(qf, inv))}
				}
			}
			fs := []forgery{
				{"q+1", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Add(h[0], bi(1))} }},
				{"q-1 (remainder r+b)", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Sub(h[0], bi(1))} }},
				{"q+2^qBits", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Add(h[0], bi(1<<divQ))} }},
			}
			if b > 1 {
				fs = append(fs, forgery{"classic q'=(a-r')/b", classic((r + 1) % b)})
			}
			fs = append(fs, forgery{"classic q'=(a-b)/b (remainder = b)", classic(b)})
			for _, f := range fs {
				mustReject(t, fmt.Sprintf("%s: DivFloor(%d,%d) hint %s (honest q=%d r=%d)", bld.name, a, b, f.name, q, r),
					runForgery(t, ccs, divHint, 1, x, outQ, in, f))
			}
		}
	}
}

// ---- Input and witness-parameter range checks, through the real Circuit ----

// rangeProgram: y = x + w, where x is a model input (range-checked to inBits by the
// KRangeChk layer Lower emits for every input) and w a witness parameter of parBits.
func rangeProgram(n, inBits, parBits int, vis quant.Visibility) *quant.Program {
	p := &quant.Program{Config: quant.DefaultConfig()}
	p.Bits = inBits
	p.ParamVis = vis
	p.Values = []quant.Value{{Shape: []int{n}}, {Shape: []int{n}}, {Shape: []int{n}}, {Shape: []int{n}}}
	p.Inputs = []int{0}
	p.Outputs = []int{3}
	data := make([]int64, n)
	p.Params = []*quant.Param{{Name: "w", Value: 2, Data: data, Bits: parBits}}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	p.Layers = []*quant.Layer{
		{Name: "input x", Op: "Input", Kind: quant.KRangeChk, In: []int{0}, Out: 1, Bits: inBits},
		{Name: "add", Op: "Add", Kind: quant.KAdd, In: []int{1, 2}, Out: 3, IA: idx, IB: idx, MA: 1, MB: 1},
	}
	return p
}

func TestInputAndParamRangeChecks(t *testing.T) {
	quietGnark(t)
	const inBits, parBits = 16, 10
	ih, ph := int64(1)<<(inBits-1), int64(1)<<(parBits-1)
	for _, vis := range []quant.Visibility{quant.Private, quant.Public} {
		for _, sys := range []System{Groth16, Plonk} {
			p := rangeProgram(1, inBits, parBits, vis)
			ccs, _, err := Compile(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range []int64{-ih - 1, -ih, -1, 0, ih - 1, ih, 1 << 40} {
				for _, w := range []int64{-ph - 1, -ph, 0, ph - 1, ph} {
					p.Params[0].Data[0] = w
					ia := &quant.IntArith{}
					ia.RangeCheck(x, inBits)
					ia.RangeCheck(w, parBits)
					ok := ia.Err() == nil
					a, err := Assign(p, [][]int64{{x}}, [][]int64{{x + w}})
					if err != nil {
						t.Fatal(err)
					}
					wit, err := frontend.NewWitness(a, Field)
					if err != nil {
						t.Fatal(err)
					}
					err = ccs.IsSolved(wit)
					if ok && err != nil {
						t.Errorf("%s/%s: x=%d w=%d in range but not solved: %v", sys, vis, x, w, err)
					}
					if !ok && err == nil {
						t.Errorf("%s/%s: x=%d (%d bits) w=%d (%d bits) out of range but solved", sys, vis, x, inBits, w, parBits)
					}
					if ok {
						a, _ := Assign(p, [][]int64{{x}}, [][]int64{{x + w + 1}})
						wit, _ := frontend.NewWitness(a, Field)
						if ccs.IsSolved(wit) == nil {
							t.Errorf("%s/%s: x=%d w=%d solved with a wrong output", sys, vis, x, w)
						}
					}
				}
			}
		}
	}
}

// TestLayersMatchIntArith runs small hand-built programs through quant.Run with
// IntArith and through the real Circuit (Compile, Assign), so the Max and clamp
// expressions of run.go and the fused rescale+relu are checked exactly as the models
// use them.
func TestLayersMatchIntArith(t *testing.T) {
	quietGnark(t)
	const n = 8
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	groups := [][]int32{{0, 1}, {2, 3, 4}, {5}, {6, 7}}
	tbl := &quant.Table{Name: "t", Lo: -6, Values: []int64{-100, -50, -20, -5, 0, 3, 7, 12, 30, 31, 32, 99}}
	mk := func(layers ...*quant.Layer) *quant.Program {
		p := &quant.Program{Config: quant.DefaultConfig()}
		p.Bits = 16
		for range len(layers) + 1 {
			p.Values = append(p.Values, quant.Value{Shape: []int{n}})
		}
		for i, l := range layers {
			l.In, l.Out = []int{i}, i+1
			l.Name = fmt.Sprintf("l%d", i)
		}
		p.Layers = layers
		p.Inputs = []int{0}
		p.Outputs = []int{len(layers)}
		return p
	}
	progs := map[string]*quant.Program{
		"rescale+relu": mk(&quant.Layer{Kind: quant.KRangeChk, Bits: 16}, &quant.Layer{Kind: quant.KRescale, Shift: 4, Bits: 12, Relu: true}),
		"rescale":      mk(&quant.Layer{Kind: quant.KRangeChk, Bits: 16}, &quant.Layer{Kind: quant.KRescale, Shift: 3, Bits: 13}),
		"relu":         mk(&quant.Layer{Kind: quant.KRangeChk, Bits: 16}, &quant.Layer{Kind: quant.KRelu, Bits: 16}),
		"lookup":       mk(&quant.Layer{Kind: quant.KRangeChk, Bits: 16}, &quant.Layer{Kind: quant.KLookup, Table: tbl, Bits: 16}),
	}
	pm := mk(&quant.Layer{Kind: quant.KRangeChk, Bits: 16}, &quant.Layer{Kind: quant.KMax, Bits: 16, Groups: groups})
	pm.Values[2].Shape = []int{len(groups)}
	progs["max"] = pm
	r := rand.New(rand.NewSource(7))
	for name, p := range progs {
		for _, sys := range []System{Groth16, Plonk} {
			ccs, _, err := Compile(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			inputs := [][]int64{
				{-1 << 15, 1<<15 - 1, 0, -1, 1, -8, 7, 8},
				{-9, -7, -6, -5, 5, 6, 7, 100},
				{-1 << 15, -1 << 15, 1<<15 - 1, 1<<15 - 1, -3, 2, 2, -2},
			}
			for range 4 {
				in := make([]int64, n)
				for i := range in {
					in[i] = randIn(r, -1<<15, 1<<15)
				}
				inputs = append(inputs, in)
			}
			for _, in := range inputs {
				vals, err := quant.Run[int64](p, &quant.IntArith{}, [][]int64{in}, nil)
				if err != nil {
					// Out of a layer's range (rescale to 12 bits): must not solve either.
					a, _ := Assign(p, [][]int64{in}, [][]int64{make([]int64, numel(p.Values[p.Outputs[0]].Shape))})
					w, _ := frontend.NewWitness(a, Field)
					if ccs.IsSolved(w) == nil {
						t.Errorf("%s/%s: input %v rejected by IntArith (%v) but solved", name, sys, in, err)
					}
					continue
				}
				out := vals[p.Outputs[0]]
				a, err := Assign(p, [][]int64{in}, [][]int64{out})
				if err != nil {
					t.Fatal(err)
				}
				w, _ := frontend.NewWitness(a, Field)
				if err := ccs.IsSolved(w); err != nil {
					t.Errorf("%s/%s: input %v, IntArith output %v not solved: %v", name, sys, in, out, err)
				}
				bad := append([]int64(nil), out...)
				bad[len(bad)-1]--
				a, _ = Assign(p, [][]int64{in}, [][]int64{bad})
				w, _ = frontend.NewWitness(a, Field)
				if ccs.IsSolved(w) == nil {
					t.Errorf("%s/%s: input %v solved with wrong output %v", name, sys, in, bad)
				}
			}
		}
	}
}

// ---- End to end: a real Groth16 proof ----

func TestGroth16RejectsTamperedOutput(t *testing.T) {
	quietGnark(t)
	const k, bits = 8, 24
	op := func(a *arith, in []frontend.Variable) frontend.Variable { return a.Rescale(in[0], k, bits, true) }
	ccs := compileGadget(t, r1cs.NewBuilder[constraint.U64], 1, 4, false, op)
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	xs := []int64{1000, -1000, 300000, -129}
	outs := make([]int64, len(xs))
	for i, x := range xs {
		outs[i] = (&quant.IntArith{}).Rescale(x, k, bits, true)
	}
	witness := func(outs []int64) *gadgetCircuit {
		c := &gadgetCircuit{}
		for i := range xs {
			c.X = append(c.X, xs[i])
			c.Out = append(c.Out, outs[i])
		}
		return c
	}
	full, err := frontend.NewWitness(witness(outs), Field)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := groth16.Prove(ccs, pk, full)
	if err != nil {
		t.Fatalf("honest proof: %v", err)
	}
	pub, _ := full.Public()
	if err := groth16.Verify(proof, vk, pub); err != nil {
		t.Fatalf("honest proof does not verify: %v", err)
	}

	tampered := append([]int64(nil), outs...)
	tampered[0]++
	badFull, _ := frontend.NewWitness(witness(tampered), Field)
	// The prover cannot prove the tampered output...
	if _, err := groth16.Prove(ccs, pk, badFull); err == nil {
		t.Error("Prove accepted a tampered public output")
	}
	// ...even with a malicious rescale hint producing it (q+1 for element 0)...
	mal := func(field *big.Int, in, out []*big.Int) error {
		if err := rescaleHint(field, in, out); err != nil {
			return err
		}
		if signed(field, in[0]).Cmp(bi(xs[0]+1<<(k-1))) == 0 {
			out[1].Add(out[1], bi(1))
		}
		return nil
	}
	if _, err := groth16.Prove(ccs, pk, badFull, backend.WithSolverOptions(solver.OverrideHint(solver.GetHintID(rescaleHint), mal))); err == nil {
		t.Error("Prove accepted a forged rescale witness")
	}
	// ...and the honest proof does not verify against the tampered public output.
	badPub, _ := badFull.Public()
	if err := groth16.Verify(proof, vk, badPub); err == nil {
		t.Error("Verify accepted the honest proof for a tampered public output")
	}
}

// ---- Constraint costs ----

type costCircuit struct {
	X        []frontend.Variable
	arity    int
	op       func(a *arith, in []frontend.Variable) frontend.Variable
	inDefine *int
	rcBits   *int
}

func (c *costCircuit) Define(api frontend.API) error {
	a := newArith(api, nil)
	a.cur = &LayerStats{}
	start := a.count()
	for i := 0; i*c.arity < len(c.X); i++ {
		c.op(a, c.X[i*c.arity:(i+1)*c.arity])
	}
	*c.inDefine = a.count() - start
	*c.rcBits = a.cur.RangeCheckBits
	a.cur = nil
	return nil
}

func TestGadgetCosts(t *testing.T) {
	quietGnark(t)
	n := 1000
	if testing.Short() {
		n = 200
	}
	type costCase struct {
		name  string
		arity int
		op    func(a *arith, in []frontend.Variable) frontend.Variable
	}
	var cases []costCase
	for _, bits := range []int{24, 32} {
		b := bits
		cases = append(cases,
			costCase{fmt.Sprintf("RangeCheck bits=%d", b), 1, func(a *arith, in []frontend.Variable) frontend.Variable { a.RangeCheck(in[0], b); return in[0] }},
			costCase{fmt.Sprintf("Rescale k=8 bits=%d", b), 1, func(a *arith, in []frontend.Variable) frontend.Variable { return a.Rescale(in[0], 8, b, false) }},
			costCase{fmt.Sprintf("Rescale+Relu k=8 bits=%d", b), 1, func(a *arith, in []frontend.Variable) frontend.Variable { return a.Rescale(in[0], 8, b, true) }},
			costCase{fmt.Sprintf("Relu bits=%d", b), 1, func(a *arith, in []frontend.Variable) frontend.Variable { return a.Relu(in[0], b) }},
			costCase{fmt.Sprintf("Max(m,y) bits=%d (relu at %d)", b, b+1), 2, func(a *arith, in []frontend.Variable) frontend.Variable {
				return maxOf[frontend.Variable](a, in[0], in[1], b)
			}},
		)
	}
	cases = append(cases,
		costCase{"Lookup (table 4096)", 1, func(a *arith, in []frontend.Variable) frontend.Variable {
			return a.Lookup(costTable, in[0])
		}},
		costCase{fmt.Sprintf("DivFloor %d/%d/%d", divA, divB, divQ), 2, func(a *arith, in []frontend.Variable) frontend.Variable {
			return a.DivFloor(in[0], in[1], divA, divB, divQ)
		}},
	)
	t.Logf("%d ops per layer; total includes the deferred range-check/lookup argument and its commitment", n)
	t.Logf("%-34s %6s %10s %10s %10s %9s %9s", "gadget", "system", "in-layer", "deferred", "total", "per-op", "rc-bits/op")
	for _, c := range cases {
		for _, bld := range gadgetBuilders {
			var inDef, rcBits int
			cc := &costCircuit{X: make([]frontend.Variable, n*c.arity), arity: c.arity, op: c.op, inDefine: &inDef, rcBits: &rcBits}
			ccs, err := frontend.Compile(Field, bld.b, cc, frontend.IgnoreUnconstrainedInputs())
			if err != nil {
				t.Fatal(err)
			}
			total := ccs.GetNbConstraints()
			t.Logf("%-34s %6s %10d %10d %10d %9.2f %9.1f", c.name, bld.name, inDef, total-inDef, total, float64(total)/float64(n), float64(rcBits)/float64(n))
		}
	}
}

var costTable = func() *quant.Table {
	t := &quant.Table{Name: "cost", Lo: -2048}
	for i := range 4096 {
		t.Values = append(t.Values, int64(i*i%1000))
	}
	return t
}()

// TestForgedRoundEven forges RoundEven's hint (y's half and parity): a wrong
// rounding, the odd neighbour at a tie, a non-boolean parity, a half that is not an
// integer, and a wrapped y must all be rejected.
func TestForgedRoundEven(t *testing.T) {
	quietGnark(t)
	const k, bits = 8, 12
	lim := int64(1) << (bits - 1)
	split := func(y *big.Int) []*big.Int {
		return []*big.Int{new(big.Int).Rsh(y, 1), big.NewInt(int64(y.Bit(0)))}
	}
	shiftY := func(d int64) func(h []*big.Int) []*big.Int {
		return func(h []*big.Int) []*big.Int {
			y := new(big.Int).Add(new(big.Int).Lsh(h[0], 1), h[1])
			return split(y.Add(y, bi(d)))
		}
	}
	out := func(h []*big.Int) *big.Int { return new(big.Int).Add(new(big.Int).Lsh(h[0], 1), h[1]) }
	for _, bld := range gadgetBuilders {
		ccs := compileGadget(t, bld.b, 1, 1, false, func(a *arith, v []frontend.Variable) frontend.Variable { return a.RoundEven(v[0], k, bits) })
		// Ties (x/2^k = j + 1/2) on both sides of zero, values next to them, and the
		// ends of the range.
		for _, x := range []int64{128, 384, -128, -384, 640, 127, 129, 383, 385, 1000, -1000, 0, (lim - 1) << k, -lim << k} {
			in := []*big.Int{modp(bi(x)), bi(k)}
			honest := []*big.Int{new(big.Int), new(big.Int)}
			if err := roundEvenHint(Field, in, honest); err != nil {
				t.Fatal(err)
			}
			if got, want := signed(Field, modp(out(honest))).Int64(), model.RoundShiftEven(x, k); got != want {
				t.Fatalf("roundEvenHint(%d) = %d, want %d", x, got, want)
			}
			if !runForgery(t, ccs, roundEvenHint, 2, []any{x}, out, in, forgery{"identity", identity}) {
				t.Fatalf("%s: honest RoundEven(%d) not solved through the override", bld.name, x)
			}
			for _, f := range []forgery{
				{"y+1", shiftY(1)},
				{"y-1", shiftY(-1)},
				{"y+2^bits", shiftY(2 * lim)},
				{"parity 2, same y", func(h []*big.Int) []*big.Int { return []*big.Int{h[0].Sub(h[0], bi(1)), bi(2)} }},
				{"parity flipped, same half", func(h []*big.Int) []*big.Int { return []*big.Int{h[0], bi(1 - h[1].Int64())} }},
				{"y+1 with parity 0 (half not an integer)", func(h []*big.Int) []*big.Int {
					y := out(h)
					y.Add(y, bi(1))
					inv2 := new(big.Int).ModInverse(bi(2), Field)
					return []*big.Int{y.Mul(y, inv2), bi(0)}
				}},
			} {
				mustReject(t, fmt.Sprintf("%s: RoundEven(x=%d,k=%d,bits=%d) hint %s", bld.name, x, k, bits, f.name),
					runForgery(t, ccs, roundEvenHint, 2, []any{x}, out, in, f))
			}
		}
	}
}
