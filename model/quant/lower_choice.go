package quant

import (
	"maps"
	"math"
)

// Choosing between a direct table and a range-reduced form (#15).
//
// A direct table that would exceed 2^LookupBits entries (the setting the user or
// calibrate.Select chose) is not taken silently: the range-reduced forms that apply
// (the exp split, the symmetric half table) are lowered from the same state as well,
// and the one with the fewest estimated constraints is kept, provided its worst-case
// error bound is at most reducedErrFactor times the direct table's. The direct table
// stays when it is cheaper (a large tensor pays for the reduction per element, a table
// only once) or when no reduced form is as accurate.

// reducedErrFactor bounds a reduced form's worst-case error relative to the direct
// table's: the direct table errs by half an output step per read, the exp split by at
// most one and a half (two reads and a rescale), the symmetric half table by its own
// half step plus f(0)'s rounding and the symmetry's deviation.
const reducedErrFactor = 3

// Estimated Groth16 constraints of the parts a choice changes, as internal/bench's
// admission estimate charges them: a lookup query costs 8, a table one per entry plus
// a fixed allowance, a b-bit range check one per limb query (at a typical limb width),
// a product of two witness values one.
const (
	costLookup          = 8
	costTable           = 384
	costTypicalLimbBits = 12
)

// loweringMark is the lowering's state before an alternative, to roll it back.
type loweringMark struct {
	layers, values, tables, params int
	rescales                       map[string]int
}

func (lw *lowering) mark() loweringMark {
	return loweringMark{layers: len(lw.p.Layers), values: len(lw.p.Values), tables: len(lw.p.Tables),
		params: len(lw.p.Params), rescales: maps.Clone(lw.rescales)}
}

// rollback undoes everything lowered since m.
func (lw *lowering) rollback(m loweringMark) {
	p := lw.p
	for _, t := range p.Tables[m.tables:] {
		delete(lw.tables, t.Name)
	}
	for k, id := range lw.consts {
		if id >= m.values {
			delete(lw.consts, k)
		}
	}
	p.Layers, p.Values, p.Tables, p.Params = p.Layers[:m.layers], p.Values[:m.values], p.Tables[:m.tables], p.Params[:m.params]
	lw.rescales = m.rescales
}

// costSince estimates the Groth16 constraints of what was lowered since m: its layers'
// range checks, lookups and products, and its new tables.
func (lw *lowering) costSince(m loweringMark) int {
	p := lw.p
	c := &choiceCounter{checkCounter: checkCounter{hist: map[int]int{}}}
	vals := make([][]none, len(p.Values))
	fill := func(id int) {
		if vals[id] == nil {
			vals[id] = make([]none, numel(p.Values[id].Shape))
		}
	}
	for _, par := range p.Params[m.params:] {
		fill(par.Value)
	}
	for _, l := range p.Layers[m.layers:] {
		for _, id := range l.In {
			fill(id)
		}
		vals[l.Out] = runLayer(p, c, l, vals)
	}
	cost := costLookup*c.lookups + c.products
	for b, n := range c.hist {
		if b >= 2 {
			cost += n * LimbQueries(b, costTypicalLimbBits)
		}
	}
	for _, t := range p.Tables[m.tables:] {
		cost += len(t.Values) + costTable
	}
	return cost
}

// choiceCounter counts range checks (checkCounter), lookups and witness products.
type choiceCounter struct {
	checkCounter
	lookups, products int
}

func (c *choiceCounter) Lookup(*Table, none) none { c.lookups++; return none{} }
func (c *choiceCounter) Dot(a, _ []none, _ none) none {
	c.products += len(a)
	return none{}
}

// lowered is one alternative's result.
type lowered func() (id int, ok bool, err error)

// cheapest lowers direct and then each applicable alternative from the same state and
// keeps the cheapest by costSince whose worst-case error (the MaxError of its last
// layer) is at most reducedErrFactor times direct's; direct wins ties. The kept one is
// lowered again (lowering is deterministic) and its result returned.
func (lw *lowering) cheapest(direct lowered, alts ...lowered) (int, error) {
	m := lw.mark()
	id, _, err := direct()
	if err != nil || len(alts) == 0 {
		return id, err
	}
	bestCost, bestErr := lw.costSince(m), lw.p.Layers[len(lw.p.Layers)-1].MaxError
	best := -1
	for i, alt := range alts {
		lw.rollback(m)
		_, ok, err := alt()
		if !ok || err != nil {
			continue
		}
		cost, e := lw.costSince(m), lw.p.Layers[len(lw.p.Layers)-1].MaxError
		if cost < bestCost && e <= reducedErrFactor*math.Max(bestErr, math.Ldexp(0.5, -lw.p.Scale)) {
			best, bestCost = i, cost
		}
	}
	lw.rollback(m)
	if best < 0 {
		id, _, err = direct()
		return id, err
	}
	id, _, err = alts[best]()
	return id, err
}
