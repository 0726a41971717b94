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

// Random-linear-combination checks of linear layers (quant.RLCPlan, #16).
//
// A layer with RLC set has its outputs (without bias) hinted by rlcHint. Once every
// layer is built, a deferred function registers the check with gnark's multicommit:
// the commitment covers every wire of both operands' entries the layer reads and every
// hinted output (gnark's R1CS builder commits to each wire of a linear expression, the
// PLONK builder to each term), so the challenge r it yields is fixed only after all of
// them. The check then proves, row by row,
//
//	sum_c r^c * Y[R*n + c] == sum_(pairs of R) Other[i] * S_g,  S_g = sum r^col * X[idx],
//
// as planned by quant.PlanRLC. A wrong row passes for at most n-1 of the challenge's
// values (docs/soundness.md).

func init() {
	solver.RegisterHint(rlcHint, rlcCopyHint)
}

// CheckedLinear implements quant.CheckedLinear.
func (a *arith) CheckedLinear(p *quant.Program, l *quant.Layer, x, w, bias []frontend.Variable) []frontend.Variable {
	nOut := l.LinearOutputs()
	out := make([]frontend.Variable, nOut)
	for i := range out {
		out[i] = 0
	}
	if a.mode == "bits" {
		if a.err == nil {
			a.err = fmt.Errorf("layer %s: the random-linear-combination check needs range_check \"lookup\" (it uses a commitment)", l.Name)
		}
		return out
	}
	pl := p.PlanRLC(l)
	if pl == nil {
		if a.err == nil {
			a.err = fmt.Errorf("layer %s: %d outputs cannot be checked in rows of %d", l.Name, nOut, l.RLC)
		}
		return out
	}
	xs, os := x, w
	if pl.Side == 1 {
		xs, os = w, x
	}
	// The hint's inputs: rows, cols, groups, each group (length, then (X entry,
	// column) pairs), each row (length, then (Other entry, group) pairs).
	in := []frontend.Variable{pl.Rows, pl.Cols, len(pl.GUses)}
	for g := range pl.GUses {
		in = append(in, pl.GStart[g+1]-pl.GStart[g])
		for i := pl.GStart[g]; i < pl.GStart[g+1]; i++ {
			in = append(in, xs[pl.GIdx[i]], pl.GCol[i])
		}
	}
	for r := range pl.Rows {
		in = append(in, pl.PStart[r+1]-pl.PStart[r])
		for i := pl.PStart[r]; i < pl.PStart[r+1]; i++ {
			in = append(in, os[pl.POther[i]], pl.PGroup[i])
		}
	}
	y, err := a.api.Compiler().NewHint(rlcHint, nOut, in...)
	if err != nil {
		panic(err)
	}
	for o := range out {
		out[o] = y[o]
		if bias != nil && l.Bias[o] >= 0 {
			out[o] = a.api.Add(y[o], bias[l.Bias[o]])
		}
	}
	// Commit to every operand entry the check reads and to the hinted outputs.
	committed := make([]frontend.Variable, 0, len(pl.GIdx)+len(pl.POther)+nOut)
	seen := map[int32]bool{}
	for _, i := range pl.GIdx {
		if !seen[i] {
			seen[i] = true
			committed = append(committed, xs[i])
		}
	}
	clear(seen)
	for _, i := range pl.POther {
		if !seen[i] {
			seen[i] = true
			committed = append(committed, os[i])
		}
	}
	committed = append(committed, y...)
	layer := -1
	if a.stats != nil && a.cur != nil {
		layer = len(a.stats.Layers) - 1
		a.cur.RLC = true
	}
	a.api.Compiler().Defer(func(api frontend.API) error {
		multicommit.WithCommitment(api, func(api frontend.API, r frontend.Variable) error {
			c0, w0 := a.count(), a.wires()
			rlcCheck(api, pl, xs, os, y, r)
			if layer >= 0 && c0 >= 0 {
				a.stats.Layers[layer].CheckConstraints += a.count() - c0
				a.stats.Layers[layer].CheckWires += a.wires() - w0
			}
			return nil
		}, committed...)
		return nil
	})
	return out
}

// rlcCheck asserts every row of the plan at challenge r.
func rlcCheck(api frontend.API, pl *quant.RLCPlan, xs, os, y []frontend.Variable, r frontend.Variable) {
	_, plonk := api.(frontend.PlonkAPI)
	pw := make([]frontend.Variable, pl.Cols)
	pw[0] = 1
	if pl.Cols > 1 {
		pw[1] = r
	}
	for c := 2; c < pl.Cols; c++ {
		pw[c] = api.Mul(pw[c-1], r)
	}
	// r^col * X[idx], once per distinct pair.
	prods := map[int64]frontend.Variable{}
	prod := func(idx, col int32) frontend.Variable {
		if col == 0 {
			return xs[idx]
		}
		k := int64(idx)*int64(pl.Cols) + int64(col)
		v, ok := prods[k]
		if !ok {
			v = api.Mul(pw[col], xs[idx])
			prods[k] = v
		}
		return v
	}
	groups := make([]frontend.Variable, len(pl.GUses))
	terms := []frontend.Variable{}
	for g := range groups {
		terms = terms[:0]
		for i := pl.GStart[g]; i < pl.GStart[g+1]; i++ {
			terms = append(terms, prod(pl.GIdx[i], pl.GCol[i]))
		}
		s := sum(api, terms)
		if pl.Shared(g) && !plonk {
			// One wire for a group many rows multiply: each product then stores one
			// term of it instead of the whole sum (R1CS; PLONK sums are wires already).
			h, err := api.Compiler().NewHint(rlcCopyHint, 1, s)
			if err != nil {
				panic(err)
			}
			api.AssertIsEqual(h[0], s)
			s = h[0]
		}
		groups[g] = s
	}
	for r := range pl.Rows {
		lhs := make([]frontend.Variable, pl.Cols)
		for c := range pl.Cols {
			lhs[c] = api.Mul(pw[c], y[r*pl.Cols+c])
		}
		rhs := make([]frontend.Variable, 0, pl.PStart[r+1]-pl.PStart[r])
		for i := pl.PStart[r]; i < pl.PStart[r+1]; i++ {
			rhs = append(rhs, api.Mul(os[pl.POther[i]], groups[pl.PGroup[i]]))
		}
		api.AssertIsEqual(sum(api, lhs), sum(api, rhs))
	}
}

// rlcHint computes a checked layer's outputs (without bias) from the plan's encoding
// (see CheckedLinear): Y[R*n + c] = sum over the pairs (Other, g) of row R of Other
// times the sum of g's X entries in column c.
func rlcHint(f *big.Int, in, out []*big.Int) error {
	bad := errors.New("rlcHint: malformed inputs")
	pos := 0
	next := func() (*big.Int, error) {
		if pos >= len(in) {
			return nil, bad
		}
		pos++
		return in[pos-1], nil
	}
	small := func() (int, error) {
		v, err := next()
		if err != nil || !v.IsInt64() || v.Int64() < 0 || v.Int64() > 1<<40 {
			return 0, bad
		}
		return int(v.Int64()), nil
	}
	rows, err := small()
	if err != nil {
		return err
	}
	cols, err := small()
	if err != nil {
		return err
	}
	nGroups, err := small()
	if err != nil {
		return err
	}
	if rows*cols != len(out) {
		return fmt.Errorf("rlcHint: %d x %d outputs, %d wanted", rows, cols, len(out))
	}
	// pairs reads a count n, then n (value, index < bound) pairs.
	type entry struct {
		v   *big.Int
		idx int
	}
	pairs := func(bound int) ([]entry, error) {
		n, err := small()
		if err != nil {
			return nil, err
		}
		var es []entry
		for range n {
			v, err := next()
			if err != nil {
				return nil, err
			}
			i, err := small()
			if err != nil || i >= bound {
				return nil, bad
			}
			es = append(es, entry{v, i})
		}
		return es, nil
	}
	// Groups: (X entry, column) pairs; rows: (Other entry, group) pairs.
	groups := make([][]entry, nGroups)
	for g := range groups {
		if groups[g], err = pairs(cols); err != nil {
			return err
		}
	}
	for _, o := range out {
		o.SetInt64(0)
	}
	t := new(big.Int)
	for r := range rows {
		row, err := pairs(nGroups)
		if err != nil {
			return err
		}
		for _, p := range row {
			for _, e := range groups[p.idx] {
				o := out[r*cols+e.idx]
				o.Add(o, t.Mul(p.v, e.v))
			}
		}
		for c := range cols {
			out[r*cols+c].Mod(out[r*cols+c], f)
		}
	}
	if pos != len(in) {
		return bad
	}
	return nil
}

// rlcCopyHint returns its input: a fresh wire for a linear expression, which the
// caller asserts equal to it.
func rlcCopyHint(_ *big.Int, in, out []*big.Int) error {
	if len(in) != 1 || len(out) != 1 {
		return errors.New("rlcCopyHint: want 1 input and 1 output")
	}
	out[0].Set(in[0])
	return nil
}
