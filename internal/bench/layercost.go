package bench

import (
	"fmt"
	"math/bits"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// LayerCosts is what EstimateProgram charges each layer of a program, kept as prefix
// sums, for planners that weigh many runs of consecutive layers (prover/shard chooses
// segments by it): Run approximates the estimate of a program made of a run of
// layers alone in time independent of the run's length.
//
// It is an approximation, not a bound: a layer's cost depends on what it reads (a
// value a segment imports is one wire, in the whole program it may be a linear
// expression), and a segment has inputs, outputs and commitments of its own.
// Decisions are confirmed by EstimateProgram.
type LayerCosts struct {
	plonk, bitsMode bool
	// Prefix sums over the layers (index k: layers [0, k)): constraints and wires
	// charged while the layers ran, the memory of their dot-product terms, R1CS checks
	// whose expression may be compressed, range checks by bit width and lookups by
	// table.
	cons, mem, wide []int64
	checks          map[int][]int64
	lookups         map[*quant.Table][]int64
	// one[k]: whether a sum of layers [0, k) materialized the one wire.
	one []bool
}

// EstimateLayers returns p's LayerCosts for sys.
func EstimateLayers(p *quant.Program, sys circuits.System) (*LayerCosts, error) {
	c := newCounter(sys == circuits.Plonk, p.RangeCheck == "bits")
	n := len(p.Layers)
	lc := &LayerCosts{plonk: c.plonk, bitsMode: c.bitsMode, checks: map[int][]int64{}, lookups: map[*quant.Table][]int64{}}
	k := 0
	c.onLayer = func(*quant.Layer) {
		lc.cons = append(lc.cons, c.c)
		lc.mem = append(lc.mem, c.memory)
		lc.wide = append(lc.wide, c.wideChecks)
		lc.one = append(lc.one, c.one)
		// A width or table first met at snapshot k keeps its zeros before k and is
		// set at every snapshot from k on (the counter never drops one).
		for b, m := range c.checks {
			if lc.checks[b] == nil {
				lc.checks[b] = make([]int64, n+1)
			}
			lc.checks[b][k] = m
		}
		for t, m := range c.tables {
			if lc.lookups[t] == nil {
				lc.lookups[t] = make([]int64, n+1)
			}
			lc.lookups[t][k] = m
		}
		k++
	}
	if _, err := estimate(p, sys, c); err != nil {
		return nil, err
	}
	if k != n+1 {
		return nil, fmt.Errorf("estimate layers: %d of %d layers ran", k-1, n)
	}
	return lc, nil
}

// Run approximates the estimate of a program of layers [first, end) alone: their
// constraints and memory, the range argument at the limb width the run would choose,
// the lookup tables it reads and the one wire, as EstimateProgram charges them, plus
// extra constraints (a planner's allowance for the run's boundaries).
func (lc *LayerCosts) Run(first, end int, extra int64) *Estimate {
	e := &Estimate{Constraints: lc.cons[end] - lc.cons[first] + extra}
	checks := map[int]int64{}
	for b, xs := range lc.checks {
		if d := xs[end] - xs[first]; d > 0 {
			checks[b] = d
		}
	}
	if len(checks) > 0 && !lc.bitsMode {
		t := tableBits(checks)
		size := int64(1) << t
		var q, limbs int64
		for b, m := range checks {
			q += m * int64(queriesFor(b, t))
			limbs += m * int64((b+t-1)/t-1)
		}
		if lc.plonk {
			e.Constraints += 2*limbs + 4*q + 4*size - 2
		} else {
			e.Constraints += q + size + 2 + lc.wide[end] - lc.wide[first]
		}
		e.Constraints += 1 + commitAllowance
	}
	used := false
	for t, xs := range lc.lookups {
		q := xs[end] - xs[first]
		if q == 0 {
			continue
		}
		used = true
		v := int64(len(t.Values))
		if lc.plonk {
			e.Constraints += 12*q + 5*v + tableAllowance
		} else {
			e.Constraints += 8*q + v + tableAllowance
		}
	}
	if used {
		e.Constraints += commitAllowance
	}
	if lc.one[end] {
		e.Constraints++ // the one wire's constraint, if the run has it
	}
	e.Domain = int64(1) << bits.Len64(uint64(max(e.Constraints, 2)-1))
	e.MemoryBytes = EstimateBaseMemory + BytesPerSlot(lc.plonk)*e.Domain + lc.mem[end] - lc.mem[first]
	return e
}

// CommitmentCost is what EstimateProgram charges a boundary commitment (the Poseidon2
// sponge of circuits.Commit with TagBoundary) to n values of width w in sys, without
// the range checks of the values.
func CommitmentCost(sys circuits.System, w, n int) int64 {
	c := newCounter(sys == circuits.Plonk, false)
	c.hash(w, n, nil, true)
	return c.c
}
