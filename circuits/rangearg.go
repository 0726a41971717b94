package circuits

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/multicommit"

	"github.com/zkml/zkml/model/quant"
)

// rangeArg proves range checks with one log-derivative argument over the table
// [0, 2^t), t chosen per circuit to minimize constraints.
//
// A check "0 <= v < 2^b" splits v into t-bit limbs: the n-1 low limbs come from a hint,
// and the top limb is the linear expression (v - sum l_i*2^(t*i)) / 2^(t*(n-1)), so no
// recomposition constraint is needed. Every limb is a query of the argument (one R1CS
// constraint each); a top limb narrower than t is also queried shifted left to t bits,
// which bounds it exactly. Since all limbs are proven < 2^t and t*n bits are far below
// the field size, v equals the small integer the limbs compose, so v < 2^b.
//
// The argument: with multiplicities m_i of each table value among the queries (a hint),
// and a challenge alpha drawn from a commitment to the queries' wires and the
// multiplicities (gnark's multicommit, shared with lookup tables),
//
//	sum_i m_i / (alpha - i) == sum_j 1 / (alpha - q_j)
//
// holds for a random alpha only if every query is a table value (Haböck 2022). Queries
// are linear expressions; gnark commits to every wire in them.
type rangeArg struct {
	api    frontend.API
	checks []rangeCheck
	closed bool
	stats  *Stats // nil: no report
}

type rangeCheck struct {
	v    frontend.Variable
	bits int
}

func init() {
	solver.RegisterHint(limbsHint, rangeCountHint)
}

func newRangeArg(api frontend.API) *rangeArg {
	r := &rangeArg{api: api}
	api.Compiler().Defer(r.build)
	return r
}

// Check implements frontend.Rangechecker: it proves 0 <= v < 2^bits.
func (r *rangeArg) Check(v frontend.Variable, bits int) {
	if r.closed {
		panic("range argument already built")
	}
	switch {
	case bits <= 0:
		r.api.AssertIsEqual(v, 0)
	case bits == 1:
		r.api.AssertIsBoolean(v)
	default:
		r.checks = append(r.checks, rangeCheck{v, bits})
	}
}

// queriesFor is the number of table queries a b-bit check costs with t-bit limbs (a
// narrow top limb is queried shifted too). The lowering chooses widths with the same
// count (quant.LimbQueries), so it is defined once, there.
func queriesFor(b, t int) int { return quant.LimbQueries(b, t) }

// tableBits chooses the limb width minimizing table size plus queries.
func (r *rangeArg) tableBits() int {
	best, bestCost := 0, 0
	for t := quant.MinLimbBits; t <= quant.MaxLimbBits; t++ {
		cost := 1 << t
		for _, c := range r.checks {
			cost += queriesFor(c.bits, t)
		}
		if best == 0 || cost < bestCost {
			best, bestCost = t, cost
		}
	}
	return best
}

func (r *rangeArg) build(api frontend.API) error {
	r.closed = true
	if len(r.checks) == 0 {
		return nil
	}
	t := r.tableBits()
	var queries []frontend.Variable
	for _, c := range r.checks {
		n := (c.bits + t - 1) / t
		var low []frontend.Variable
		if n > 1 {
			var err error
			low, err = api.Compiler().NewHint(limbsHint, n-1, t, c.v)
			if err != nil {
				return err
			}
		}
		rest := c.v
		for i, l := range low {
			queries = append(queries, l)
			rest = api.Sub(rest, api.Mul(l, pow2(t*i)))
		}
		// top = rest / 2^(t*(n-1)), a linear expression (multiplication by the inverse).
		top := rest
		if n > 1 {
			inv := new(big.Int).ModInverse(pow2(t*(n-1)), api.Compiler().Field())
			top = api.Mul(rest, inv)
		}
		queries = append(queries, top)
		if w := c.bits - t*(n-1); w < t {
			queries = append(queries, api.Mul(top, pow2(t-w)))
		}
	}
	if r.stats != nil {
		r.stats.RangeLimbBits, r.stats.RangeQueries = t, len(queries)
	}
	counts, err := api.Compiler().NewHint(rangeCountHint, 1<<t, append([]frontend.Variable{t}, queries...)...)
	if err != nil {
		return err
	}
	multicommit.WithCommitment(api, func(api frontend.API, alpha frontend.Variable) error {
		lhs := make([]frontend.Variable, len(counts))
		for i, m := range counts {
			lhs[i] = api.DivUnchecked(m, api.Sub(alpha, i))
		}
		rhs := make([]frontend.Variable, len(queries))
		for j, q := range queries {
			rhs[j] = api.Inverse(api.Sub(alpha, q))
		}
		api.AssertIsEqual(sum(api, lhs), sum(api, rhs))
		return nil
	}, append(queries, counts...)...)
	return nil
}

// sumChunk bounds the terms of one api.Add call in a PLONK circuit. gnark's PLONK
// builder adds the terms of one call recursively, one stack frame per term, so a single
// call over a model-sized slice overflows the stack (a 262,144-element layer did: a Go
// fatal error, which no recover catches). sum builds long PLONK sums as a tree of calls
// of at most sumChunk terms instead: no recursion deeper than sumChunk, and the same
// constraints (one addition per term either way). The R1CS builder adds iteratively and
// a sum costs it nothing until the linear expression is compressed, once, so there one
// call stays cheapest: a tree would compress each large partial sum.
const sumChunk = 32

// sum returns the sum of xs (0 for none) without recursion that grows with len(xs).
func sum(api frontend.API, xs []frontend.Variable) frontend.Variable {
	switch len(xs) {
	case 0:
		return 0
	case 1:
		return xs[0]
	}
	if _, plonk := api.(frontend.PlonkAPI); !plonk {
		return addAll(api, xs)
	}
	for len(xs) > sumChunk {
		next := make([]frontend.Variable, 0, (len(xs)+sumChunk-1)/sumChunk)
		for i := 0; i < len(xs); i += sumChunk {
			next = append(next, addAll(api, xs[i:min(i+sumChunk, len(xs))]))
		}
		xs = next
	}
	return addAll(api, xs)
}

// addAll is one api.Add over at most sumChunk terms.
func addAll(api frontend.API, xs []frontend.Variable) frontend.Variable {
	if len(xs) == 1 {
		return xs[0]
	}
	return api.Add(xs[0], xs[1], xs[2:]...)
}

// limbsHint: inputs (t, v); outputs the len(out) low t-bit limbs of v.
func limbsHint(_ *big.Int, in, out []*big.Int) error {
	if len(in) != 2 {
		return errors.New("limbsHint: want 2 inputs")
	}
	t := uint(in[0].Uint64())
	v := new(big.Int).Set(in[1])
	mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), t), big.NewInt(1))
	for i := range out {
		out[i].And(v, mask)
		v.Rsh(v, t)
	}
	return nil
}

// rangeCountHint: inputs (t, queries...); outputs how often each value of [0, 2^t)
// occurs among the queries. A query outside the table is not counted, so the argument
// then fails.
func rangeCountHint(_ *big.Int, in, out []*big.Int) error {
	if len(in) < 1 {
		return errors.New("rangeCountHint: no inputs")
	}
	size := int64(1) << in[0].Uint64()
	if int64(len(out)) != size {
		return fmt.Errorf("rangeCountHint: %d outputs for a table of %d", len(out), size)
	}
	for i := range out {
		out[i].SetUint64(0)
	}
	for _, q := range in[1:] {
		if q.IsInt64() && q.Int64() >= 0 && q.Int64() < size {
			out[q.Int64()].Add(out[q.Int64()], big.NewInt(1))
		}
	}
	return nil
}
