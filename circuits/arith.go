package circuits

import (
	"fmt"
	"math/big"
	"reflect"
	"unsafe"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/lookup/logderivlookup"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/zkml/zkml/model/quant"
)

// arith implements quant.Arith over gnark variables. Range checks go to gnark's
// log-derivative range checker and lookups to log-derivative tables, both of which add
// their constraints once, after Define (reported as "deferred" in Stats).
type arith struct {
	api    frontend.API
	rc     frontend.Rangechecker
	tables map[*quant.Table]logderivlookup.Table
	stats  *Stats
	cur    *LayerStats
	count  func() int
	wires  func() int
	mode   string
	err    error
	one    frontend.Variable // the circuit's witness wire constrained to 1 (R1CS, lazily)
}

var _ quant.Arith[frontend.Variable] = (*arith)(nil)

func newArith(api frontend.API, stats *Stats) *arith {
	return newArithMode(api, stats, "")
}

// newArithMode is newArith with the program's range-check mode: the default is zkml's
// log-derivative range argument (rangearg.go); "bits" hides the builder's commitment
// capability from gnark's range checker, which then decomposes values into bits, so
// the proof carries no commitment.
func newArithMode(api frontend.API, stats *Stats, mode string) *arith {
	var rc frontend.Rangechecker
	if mode == "bits" {
		rc = rangecheck.New(noCommit{api})
	} else {
		ra := newRangeArg(api)
		ra.stats = stats
		rc = ra
	}
	count, wires := constraintCounter(api)
	return &arith{api: api, rc: rc, tables: map[*quant.Table]logderivlookup.Table{}, stats: stats, count: count, wires: wires, mode: mode}
}

// noCommit exposes only frontend.API, without the Committer interface.
type noCommit struct{ frontend.API }

// constraintCounter returns functions reading the builder's current constraint and
// internal-variable (wire) counts, for per-layer statistics, or ones returning -1 when
// the API is not a gnark builder (the test engine). gnark does not export the
// builder's constraint system, so it is read through reflection.
func constraintCounter(api frontend.API) (constraints, wires func() int) {
	none := func() int { return -1 }
	v := reflect.ValueOf(api)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("cs"); f.IsValid() && f.CanAddr() {
			cs := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface()
			if c, ok := cs.(interface {
				GetNbConstraints() int
				GetNbInternalVariables() int
			}); ok {
				return c.GetNbConstraints, c.GetNbInternalVariables
			}
		}
	}
	return none, none
}

func (a *arith) Const(c int64) frontend.Variable { return c }

func (a *arith) Add(x, y frontend.Variable) frontend.Variable { return a.api.Add(x, y) }

func (a *arith) MulConst(x frontend.Variable, c int64) frontend.Variable {
	if c == 1 {
		return x
	}
	return a.api.Mul(x, c)
}

func (a *arith) Dot(x, w []frontend.Variable, c frontend.Variable) frontend.Variable {
	switch len(x) {
	case 0:
		return c
	case 1:
		return a.api.Add(c, a.api.Mul(x[0], w[0]))
	}
	terms := make([]frontend.Variable, len(x)+1)
	terms[0] = c
	for i := range x {
		terms[i+1] = a.api.Mul(x[i], w[i])
	}
	s := sum(a.api, terms)
	if _, plonk := a.api.(frontend.PlonkAPI); !plonk && exprLen(s) >= WireSumTerms {
		one := a.oneWire()
		if a.cur != nil {
			a.cur.SumWires++
		}
		return a.api.Mul(s, one)
	}
	return compact(a.api, s)
}

// WireSumTerms is the number of terms from which an R1CS dot product (Dot: a direct
// linear layer's output, or any other Dot) is materialized as one wire, by the one
// constraint sum * one = w with one the circuit's witness wire equal to 1 (oneWire).
// gnark's R1CS builder compresses a linear expression of 300 terms or more the same
// way (sum * 1 = w, CompressThreshold); below that the sum stays one linear expression
// that everything downstream copies whole: the rescale's hint input, its remainder's
// range check, the check's limb queries and their shifted copies, and their
// constraints (56 bytes a term in the builder, 8 in the constraint system; #16). One
// wire costs one constraint and one wire per output and lets every consumer copy one
// term. The value is chosen by measurement (docs/bench-notes.md, "One-wire sums
// (R1CS)"); it is a constant of the circuit, so a program's circuit does not depend on
// anything but the program and the proving system. PLONK's builder already makes
// every term a gate.
const WireSumTerms = 32

// exprLen is the number of terms of v when it is an R1CS linear expression (the
// builder's variables are slices of terms), else 0 (a constant, a PLONK term, the
// test engine's values).
func exprLen(v frontend.Variable) int {
	if r := reflect.ValueOf(v); r.Kind() == reflect.Slice {
		return r.Len()
	}
	return 0
}

// oneWire returns the circuit's witness wire constrained to 1, creating it on first
// use (a hint output and one constraint, one = 1). Multiplying a linear expression by
// it is the one way a frontend.API user can have the R1CS builder emit sum * one = w
// with w a fresh wire the solver computes from the constraint (no hint copies the sum):
// gnark folds a multiplication by the constant 1 away. A forged one (the hint
// overridden) fails the equality; a forged w fails sum * one = w.
func (a *arith) oneWire() frontend.Variable {
	if a.one == nil {
		h, err := a.api.Compiler().NewHint(oneHint, 1)
		if err != nil {
			panic(err)
		}
		a.api.AssertIsEqual(h[0], 1)
		a.one = h[0]
		if a.cur != nil {
			a.cur.SumWires++
		}
	}
	return a.one
}

// compact returns v without the spare capacity gnark's R1CS builder leaves in a
// linear expression it compressed: a sum of 300 terms or more becomes one new wire,
// but the one-term result keeps the whole sum's backing array (56 bytes a term), and
// the program's values hold every layer's outputs until the compile ends, so a wide
// convolution's outputs held 56 bytes per multiply-accumulate (#16). Adding 0 copies
// the expression into a fresh one of the same terms; it adds no constraint and no wire.
func compact(api frontend.API, v frontend.Variable) frontend.Variable {
	if r := reflect.ValueOf(v); r.Kind() == reflect.Slice && r.Cap() > 2*r.Len()+8 {
		return api.Add(v, 0)
	}
	return v
}

func pow2(n int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(n)) }

// check proves 0 <= v < 2^bits.
func (a *arith) check(v frontend.Variable, bits int) {
	if a.cur != nil {
		a.cur.RangeChecks++
		a.cur.RangeCheckBits += bits
	}
	a.rc.Check(v, bits)
}

// RangeCheck proves |x| < 2^(bits-1) by checking x + 2^(bits-1) in [0, 2^bits).
func (a *arith) RangeCheck(x frontend.Variable, bits int) {
	a.check(a.api.Add(x, pow2(bits-1)), bits)
}

// Rescale proves q = floor(x' / 2^k) with x' = x + 2^(k-1) by x' = q*2^k + r, with BOTH
// r in [0, 2^k) and q in [-2^(bits-1), 2^(bits-1)) range-checked: the two ranges make
// the decomposition unique, so a forged quotient cannot satisfy it. With relu, q is
// written as s*2^(bits-1) + low - 2^(bits-1) with s boolean and low < 2^(bits-1): the
// quotient's range check then also yields its sign s, and relu(q) = s*low.
func (a *arith) Rescale(x frontend.Variable, k, bits int, relu bool) frontend.Variable {
	api := a.api
	if k == 0 {
		if relu {
			return a.Relu(x, bits) // Relu checks the range itself
		}
		a.RangeCheck(x, bits)
		return x
	}
	xr := api.Add(x, pow2(k-1))
	flag := 0
	if relu {
		flag = 1
	}
	nOut := 1 + flag
	h, err := api.Compiler().NewHint(rescaleHint, nOut, xr, k, bits, flag)
	if err != nil {
		panic(err)
	}
	var q, out frontend.Variable
	if relu {
		s, low := h[0], h[1]
		api.AssertIsBoolean(s)
		a.check(low, bits-1)
		q = api.Sub(api.Add(api.Mul(s, pow2(bits-1)), low), pow2(bits-1))
		out = api.Mul(s, low)
	} else {
		q = h[0]
		a.check(api.Add(q, pow2(bits-1)), bits)
		out = q
	}
	a.check(api.Sub(xr, api.Mul(q, pow2(k))), k)
	return out
}

// RoundEven proves y = x / 2^k rounded half to even. The hint gives y's half
// h = floor(y / 2) and parity b. h is range-checked and b is boolean, so y = 2h + b is
// an integer in [-2^(bits-1), 2^(bits-1)) whose parity is b. With d = x - y*2^k, both
// c1 = d + 2^(k-1) - b and c2 = 2^(k-1) - b - d are checked to be non-negative (to
// k+1 bits; they are at most 2^k): |d| <= 2^(k-1), strictly when y is odd. For
// x/2^k not at a tie one y is that close; at a tie (|d| = 2^(k-1)) there are two and
// only the even one passes, so y is exactly the half-to-even rounding.
func (a *arith) RoundEven(x frontend.Variable, k, bits int) frontend.Variable {
	api := a.api
	if k == 0 {
		a.RangeCheck(x, bits)
		return x
	}
	h, err := api.Compiler().NewHint(roundEvenHint, 2, x, k)
	if err != nil {
		panic(err)
	}
	half, b := h[0], h[1]
	api.AssertIsBoolean(b)
	a.check(api.Add(half, pow2(bits-2)), bits-1)
	y := api.Add(api.Mul(half, 2), b)
	d := api.Sub(x, api.Mul(y, pow2(k)))
	a.check(api.Sub(api.Add(d, pow2(k-1)), b), k+1)
	a.check(api.Sub(api.Sub(pow2(k-1), b), d), k+1)
	return y
}

// Relu proves out = max(x, 0) for |x| < 2^(bits-1): s is boolean and
// low = x + 2^(bits-1) - s*2^(bits-1) is in [0, 2^(bits-1)), which forces s = [x >= 0];
// then out = s*x = s*low.
func (a *arith) Relu(x frontend.Variable, bits int) frontend.Variable {
	api := a.api
	if bits <= 1 { // |x| < 1: x is 0
		api.AssertIsEqual(x, 0)
		return 0
	}
	h, err := api.Compiler().NewHint(signHint, 1, x)
	if err != nil {
		panic(err)
	}
	s := h[0]
	api.AssertIsBoolean(s)
	low := api.Sub(api.Add(x, pow2(bits-1)), api.Mul(s, pow2(bits-1)))
	a.check(low, bits-1)
	return api.Mul(s, low)
}

// Lookup reads t at x - t.Lo through a log-derivative lookup table shared by every
// query of the circuit; an index outside the table cannot be proven.
func (a *arith) Lookup(t *quant.Table, x frontend.Variable) frontend.Variable {
	if a.mode == "bits" {
		if a.err == nil {
			a.err = fmt.Errorf("lookup table %s needs range_check \"lookup\" (it uses a commitment)", t.Name)
		}
		return 0
	}
	tbl, ok := a.tables[t]
	if !ok {
		tbl = logderivlookup.New(a.api)
		for _, v := range t.Values {
			tbl.Insert(v)
		}
		a.tables[t] = tbl
	}
	if a.cur != nil {
		a.cur.Lookups++
	}
	return tbl.Lookup(a.api.Sub(x, t.Lo))[0]
}

// DivFloor proves q = floor(a/b) by a = q*b + r with q < 2^qBits, 0 <= r < b.
func (a *arith) DivFloor(x, y frontend.Variable, xBits, yBits, qBits int) frontend.Variable {
	api := a.api
	h, err := api.Compiler().NewHint(divHint, 1, x, y)
	if err != nil {
		panic(err)
	}
	q := h[0]
	a.check(q, qBits)
	r := api.Sub(x, api.Mul(q, y))
	a.check(r, yBits)
	a.check(api.Sub(api.Sub(y, 1), r), yBits)
	return q
}

func (a *arith) Layer(l *quant.Layer) {
	a.closeLayer()
	if a.stats == nil {
		return
	}
	ls := LayerStats{Name: l.Name, Op: l.Op, Kind: string(l.Kind), Bits: l.Bits, MaxError: l.MaxError, start: a.count(), startWires: a.wires()}
	if l.Table != nil {
		ls.TableSize = len(l.Table.Values)
	}
	a.stats.Layers = append(a.stats.Layers, ls)
	a.cur = &a.stats.Layers[len(a.stats.Layers)-1]
}

func (a *arith) closeLayer() {
	if a.cur != nil {
		if n := a.count(); n >= 0 {
			a.cur.Constraints = n - a.cur.start
		}
		if n := a.wires(); n >= 0 {
			a.cur.Wires = n - a.cur.startWires
		}
		a.cur = nil
	}
}

func (a *arith) Err() error { return a.err }
