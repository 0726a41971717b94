package bench

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// Estimate is an upper bound on the size of a program's circuit in one proving
// system, computed from the lowered program without building the circuit: it runs the
// program against a counting quant.Arith that charges every primitive what
// package circuits and gnark's builders spend on it, or more. It is what admission
// control compares with the configured budgets before any compile, setup or proof.
type Estimate struct {
	System string `json:"system"`
	// Constraints bounds the number of constraints (R1CS for Groth16, SCS for PLONK).
	Constraints int64 `json:"constraints"`
	// Wires bounds the number of variables: internal wires plus public and secret inputs.
	Wires int64 `json:"wires"`
	// Domain is the FFT domain: the power of two at or above Constraints (plus the
	// public inputs for PLONK).
	Domain int64 `json:"domain"`
	// Terms counts the terms of the linear combinations of dot products: one per
	// multiply-accumulate (MAC) of a linear layer (Gemm, MatMul, Conv, pooling).
	Terms int64 `json:"terms"`
	// MemoryBytes bounds the peak memory of the job that needs most (compile, setup
	// or prove): EstimateBaseMemory, plus EstimateBytesPerSlot per domain slot, plus
	// EstimateBytesPerTerm or EstimateBytesPerWideTerm per term (see the memory model).
	MemoryBytes int64 `json:"memory_bytes"`
}

// Memory model. BENCHMARKS.md measured, per FFT domain slot, a prove heap peak of
// 1.2-2.4 KiB for Groth16 and 2.4 KiB for PLONK, and a whole-process maxrss (compile,
// setup and prove of one model) of 2.2 KiB per slot at 2^20 (cnn_2e20: 2233 MiB).
// Later Groth16 measurements: 2.1 KiB per slot at 2^21 for compile, setup and prove
// of a recursive verifier in one process (docs/bench-notes.md, "Aggregation by
// recursion"), 1.0-1.2 KB per constraint in the compile after one-wire sums ("One-wire
// sums (R1CS)"), and 2.83 KiB per slot, the largest, for the setup process of a
// sharded SqueezeNet's three 2^21 segments (5.94 GB; "Sharded SqueezeNet 1.0 at
// 224x224"). The estimate charges 3.5 KiB per slot for Groth16
// (EstimateGroth16BytesPerSlot, 24% above that) and 4 KiB for PLONK
// (EstimateBytesPerSlot), plus a fixed 256 MiB for the runtime, the program and the
// artifacts. Until 2026-11-30 Groth16 was charged 4 KiB too, which made a 2^21 domain
// 8 GiB on its own: no 8 GiB segment could hold more than 2^20 constraints.
//
// Every term of a dot product (a multiply-accumulate) also costs memory, whatever the
// constraints: the lowered program's index entries, gnark's linear expressions (56
// bytes a term) and their copies in the compiled constraint system. In R1CS a sum that
// stays one linear expression is copied by the rescale after it, its range checks and
// their log-derivative queries (several copies live until the range argument is
// built, and each again in the constraint system): the compile of a 32-channel 3x3
// convolution (288 terms a sum) peaked at about 360 bytes per term beyond its
// constraints' cost (docs/bench-notes.md, "#16 memory"), charged as
// EstimateBytesPerTerm. Only sums of fewer than circuits.WireSumTerms terms stay so
// now: circuits' Dot makes a longer one a wire by one constraint (sum * one = w), as
// gnark itself compresses sums of 300 terms or more, and the consumers copy that one
// term; such a sum costs about 10-20 bytes a term in the compile (docs/bench-notes.md,
// "One-wire sums (R1CS)"); in PLONK every term is a constraint already: both are charged
// EstimateBytesPerWideTerm.
const (
	EstimateBytesPerSlot        = 4 << 10
	EstimateGroth16BytesPerSlot = 7 << 9
	EstimateBaseMemory          = 256 << 20
	EstimateBytesPerTerm        = 384
	EstimateBytesPerWideTerm    = 64
)

// gnark's default R1CS compress threshold: a linear expression of this many terms is
// replaced by one new wire, at the cost of one constraint.
const compressThreshold = 300

// Fixed allowances, per circuit, for what does not scale with the model: the
// commitment of the range and lookup arguments (gnark's multicommit), and the challenge
// powers and fixed overhead of each lookup table (a 2^16-entry table read once compiles
// to 197 R1CS constraints beyond its entries and queries: 384 keeps the bound). And the
// cost of one Poseidon2 permutation of a hashed commitment (gnark's BN254 Poseidon2,
// width 2, 6 full and 50 partial rounds, as a Merkle-Damgard compression): it compiles
// to exactly 186 R1CS and 301 SCS constraints (an S-box x^5 is 3 multiplications, 78
// S-boxes; in PLONK also 2 linear-layer constraints a round and the feed-forward
// addition), each adding at most one wire; charged 3% more (docs/bench-notes.md,
// "Boundary commitment cost calibrated"; checked by TestEstimateBoundsCommitments).
//
// A boundary commitment's sponge permutation (width 16, 8 full and 57 partial rounds,
// rate 15: circuits.Commit) compiles to 555 R1CS and 3047 SCS constraints, in PLONK
// plus one addition an absorbed element; charged 1% more (TestSpongePermutationCost).
const (
	commitAllowance = 64
	tableAllowance  = 384
	poseidonR1CS    = 192
	poseidonSCS     = 310
	spongeR1CS      = 561
	spongeSCS       = 3078
)

// EstimateProgram bounds the circuit of p for sys.
func EstimateProgram(p *quant.Program, sys circuits.System) (*Estimate, error) {
	return estimate(p, sys, newCounter(sys == circuits.Plonk, p.RangeCheck == "bits"))
}

// estimate runs p against c (its layer hook, if any, called before each layer).
func estimate(p *quant.Program, sys circuits.System, c *counter) (*Estimate, error) {
	l := circuits.NewLayout(p)
	inputs := make([][]sym, len(p.Inputs))
	for i, id := range p.Inputs {
		inputs[i] = vars(numel(p.Values[id].Shape))
	}
	params := make([][]sym, len(p.Params))
	for i, par := range p.Params {
		if l.Params[i] != nil {
			params[i] = vars(len(par.Data))
			for _, v := range params[i] {
				c.RangeCheck(v, par.Bits)
			}
			continue
		}
		params[i] = make([]sym, len(par.Data))
		for j, d := range par.Data {
			params[i][j] = c.Const(d)
		}
	}
	vals, err := quant.Run[sym](p, c, inputs, params)
	if err != nil {
		return nil, fmt.Errorf("estimate: %w", err)
	}
	if c.onLayer != nil {
		c.onLayer(nil) // the layers are done
	}
	// Outputs: one equality per element with the claimed public or secret value.
	for _, id := range p.Outputs {
		c.c += int64(len(vals[id]))
	}
	for _, h := range l.Hashes {
		c.hash(h.Width, hashedLen(l, h), circuits.Prechecked(p, l, h), h.Domain == circuits.TagBoundary)
	}
	c.deferred()
	io := int64(l.NbPublic + l.NbSecret + 1) // and the constant-one wire
	e := &Estimate{System: string(sys), Constraints: c.c, Wires: c.w + io, Terms: c.terms}
	slots := e.Constraints
	if c.plonk {
		slots += io
	}
	e.Domain = int64(1) << bits.Len64(uint64(max(slots, 2)-1))
	e.MemoryBytes = EstimateBaseMemory + BytesPerSlot(c.plonk)*e.Domain + c.memory
	return e, nil
}

// hashedLen is the number of values commitment h hashes: its group's tensors (every
// tensor of the side without boundary groups), or every witness param.
func hashedLen(l *circuits.Layout, h circuits.HashSlot) int {
	n := 0
	var slots []circuits.Slot
	switch h.Tag {
	case circuits.TagInputs:
		slots = l.Inputs[h.First : h.First+h.Count]
	case circuits.TagOutputs:
		slots = l.Outputs[h.First : h.First+h.Count]
	case circuits.TagParams:
		for _, s := range l.Params {
			if s != nil {
				slots = append(slots, *s)
			}
		}
	}
	for _, s := range slots {
		n += s.Len
	}
	return n
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func vars(n int) []sym {
	out := make([]sym, n)
	for i := range out {
		out[i] = sym{terms: 1}
	}
	return out
}

// sym is what the counter knows of a value: a constant (and whether it is zero), or a
// variable whose R1CS linear expression has terms terms. In PLONK every variable is
// one wire with a coefficient.
type sym struct {
	konst, zero bool
	terms       int32
}

// counter is a quant.Arith that counts constraints (c) and internal wires (w),
// following circuits/arith.go and rangearg.go call by call, and charging gnark
// builder operations as follows (an upper bound each):
//
//	                       R1CS                          SCS (PLONK)
//	Add of n variables     0 (+1 at 300 terms)           n-1, +1 with a constant
//	Dot of n terms         +1 at circuits.WireSumTerms   as its Adds
//	                       (+1 once: the one wire)
//	Mul by a constant      0                             0
//	Mul of two variables   1                             1
//	AssertIsEqual/Boolean  1                             1
//	Inverse, DivUnchecked  1                             1
//
// Every constraint adds at most one wire; hint outputs add one wire each.
type counter struct {
	plonk, bitsMode bool
	c, w            int64
	terms           int64         // dot-product terms
	memory          int64         // what the dot-product terms cost in memory
	checks          map[int]int64 // deferred range checks by bit width (>= 2)
	wideChecks      int64         // R1CS checks whose expression may be compressed
	tables          map[*quant.Table]int64
	// one: an R1CS sum was materialized, so the circuit has its one wire (a hint
	// output constrained to 1, charged once in deferred).
	one bool
	// onLayer, if set, is called before each layer runs and with nil after the last
	// (EstimateLayers).
	onLayer func(*quant.Layer)
}

var (
	_ quant.Arith[sym]         = (*counter)(nil)
	_ quant.CheckedLinear[sym] = (*counter)(nil)
)

func (c *counter) cost(n int64) { c.c += n; c.w += n }

func (c *counter) add(xs ...sym) sym {
	n, terms, konst := int64(0), int32(0), false
	var v sym
	for _, x := range xs {
		switch {
		case !x.konst:
			n++
			terms += x.terms
			v = x
		case !x.zero:
			konst = true
		}
	}
	if n == 0 {
		return sym{konst: true, zero: !konst}
	}
	if c.plonk {
		k := n - 1
		if konst {
			k++
		}
		c.cost(k)
		if k > 0 {
			return sym{terms: 1}
		}
		return v
	}
	if konst {
		terms++
	}
	if terms >= compressThreshold {
		c.cost(1)
		terms = 1
	}
	return sym{terms: terms}
}

func (c *counter) mul(x, y sym) sym {
	switch {
	case x.konst && y.konst:
		return sym{konst: true, zero: x.zero || y.zero}
	case x.konst && x.zero, y.konst && y.zero:
		return sym{konst: true, zero: true}
	case x.konst:
		return y
	case y.konst:
		return x
	}
	c.cost(1)
	return sym{terms: 1}
}

func (c *counter) hint(n int) sym { c.w += int64(n); return sym{terms: 1} }

func (c *counter) assert() { c.c++ }

func nonzero() sym { return sym{konst: true} }

// check is circuits' arith.check: 0 <= v < 2^bits.
func (c *counter) check(v sym, bits int) {
	switch {
	case bits <= 0 || bits == 1:
		c.assert()
	case c.bitsMode:
		// gnark's rangecheck without a commitment: one boolean per bit and a
		// recomposition (a sum of bits terms), plus the bits as hint outputs.
		b := int64(bits)
		c.w += b
		if c.plonk {
			c.cost(2*b + 2)
		} else {
			c.cost(b + 2)
		}
	default:
		c.checks[bits]++
		if !c.plonk && int(v.terms)+bits/4+2 >= compressThreshold {
			c.wideChecks++
		}
	}
}

func (c *counter) Const(v int64) sym          { return sym{konst: true, zero: v == 0} }
func (c *counter) Add(x, y sym) sym           { return c.add(x, y) }
func (c *counter) Err() error                 { return nil }
func (c *counter) RangeCheck(x sym, bits int) { c.check(c.add(x, nonzero()), bits) }

func (c *counter) Layer(l *quant.Layer) {
	if c.onLayer != nil {
		c.onLayer(l)
	}
}

func (c *counter) MulConst(x sym, k int64) sym {
	if k == 1 {
		return x
	}
	return c.mul(x, c.Const(k))
}

func (c *counter) Dot(x, w []sym, k sym) sym {
	if len(x) == 0 {
		return k
	}
	terms := make([]sym, 0, len(x)+1)
	terms = append(terms, k)
	for i := range x {
		terms = append(terms, c.mul(x[i], w[i]))
	}
	before := c.c
	out := c.add(terms...)
	n := int64(len(x))
	c.terms += n
	switch {
	case c.plonk || c.c > before || out.terms <= 1:
		// PLONK, a sum gnark compressed, or one term.
		c.memory += n * EstimateBytesPerWideTerm
	case len(x) > 1 && out.terms >= circuits.WireSumTerms:
		// circuits' Dot materializes the sum as one wire: sum * one = w (not a
		// single product, which it returns as it is).
		c.cost(1)
		c.one = true
		out = sym{terms: 1}
		c.memory += n * EstimateBytesPerWideTerm
	default:
		// An R1CS sum below circuits.WireSumTerms stays a linear expression that the
		// rescale, its range checks and their queries copy (see the memory model).
		c.memory += n * EstimateBytesPerTerm
	}
	return out
}

// CheckedLinear implements quant.CheckedLinear: in R1CS a layer checked by random
// linear combination costs its plan (quant.RLCPlan.Cost: the challenge's powers, the
// witness products, the row sums and equalities; checked against the compiled
// circuit by circuits' TestRLCMatMul), plus its hinted outputs, not one constraint per
// product. PLONK's count of the check is rougher, so there the layer is charged as if
// computed directly, which bounds it (the lowering chooses the check only when it adds
// no PLONK constraint).
func (c *counter) CheckedLinear(p *quant.Program, l *quant.Layer, x, w, bias []sym) []sym {
	pl := p.PlanRLC(l)
	if c.plonk || pl == nil {
		return nil // computed directly by quant.Run
	}
	out := make([]sym, l.LinearOutputs())
	cons, terms := pl.Cost()
	c.cost(int64(cons))
	c.terms += int64(terms)
	// The check's sums are short (its groups) or one product each: charged like
	// compressed sums, which keeps a checked layer's memory below its direct form's.
	c.memory += int64(terms) * EstimateBytesPerWideTerm
	for o := range out {
		out[o] = c.hint(1)
		if bias != nil && l.Bias[o] >= 0 {
			out[o] = c.add(out[o], bias[l.Bias[o]])
		}
	}
	return out
}

func (c *counter) Rescale(x sym, k, bits int, relu bool) sym {
	if k == 0 {
		if relu {
			return c.Relu(x, bits)
		}
		c.RangeCheck(x, bits)
		return x
	}
	xr := c.add(x, nonzero())
	var q, out sym
	if relu {
		s, low := c.hint(1), c.hint(1)
		c.assert()
		c.check(low, bits-1)
		q = c.add(c.add(c.mul(s, nonzero()), low), nonzero())
		out = c.mul(s, low)
	} else {
		q = c.hint(1)
		c.check(c.add(q, nonzero()), bits)
		out = q
	}
	c.check(c.add(xr, c.mul(q, nonzero())), k)
	return out
}

func (c *counter) RoundEven(x sym, k, bits int) sym {
	if k == 0 {
		c.RangeCheck(x, bits)
		return x
	}
	half, b := c.hint(1), c.hint(1)
	c.assert()
	c.check(c.add(half, nonzero()), bits-1)
	y := c.add(c.mul(half, nonzero()), b)
	d := c.add(x, c.mul(y, nonzero()))
	c.check(c.add(c.add(d, nonzero()), b), k+1)
	c.check(c.add(c.add(nonzero(), b), d), k+1)
	return y
}

func (c *counter) Relu(x sym, bits int) sym {
	if bits <= 1 {
		c.assert()
		return sym{konst: true, zero: true}
	}
	s := c.hint(1)
	c.assert()
	low := c.add(c.add(x, nonzero()), c.mul(s, nonzero()))
	c.check(low, bits-1)
	return c.mul(s, low)
}

func (c *counter) Lookup(t *quant.Table, x sym) sym {
	c.add(x, nonzero())
	c.tables[t]++
	return c.hint(1)
}

func (c *counter) DivFloor(x, y sym, xBits, yBits, qBits int) sym {
	q := c.hint(1)
	c.check(q, qBits)
	r := c.add(x, c.mul(q, y))
	c.check(r, yBits)
	c.check(c.add(c.add(y, nonzero()), r), yBits)
	return q
}

// hash charges a Poseidon2 commitment to n values of width w as circuits' commitVars
// builds it: every value range-checked to w bits (x + 2^(w-1) checked in [0, 2^w))
// but those prechecked marks (circuits.Prechecked), shifted by 2^(w-1) and packed,
// circuits.MaxPackBits / w values to a field element (in R1CS linear expressions, in
// PLONK one constraint a shift and one a packing step after the first of an element),
// one Merkle-Damgard Poseidon2 permutation per packed element, and the equality with
// the public commitment. The three header elements (tag, count and width) are
// constants: their permutations fold to a constant and cost nothing. A boundary
// commitment (sponge) instead charges one sponge permutation per 15 elements, header
// included, and in PLONK one addition an absorbed element. Both shifts of a value (its
// range check's and the packing's) are charged, although gnark's PLONK builder reuses
// the first for the second when it is the value's first addition with that constant:
// the bound holds either way.
func (c *counter) hash(w, n int, prechecked []bool, sponge bool) {
	per := circuits.MaxPackBits / w
	// perElement is what each packed element costs besides its values.
	perElement := int64(poseidonR1CS) // its permutation
	if c.plonk {
		perElement = poseidonSCS
	}
	if sponge {
		perElement = 0
		if c.plonk {
			perElement = 1 // its addition into the state
		}
		rate := circuits.SpongeWidth - 1
		blocks := (3 + (n+per-1)/per + rate - 1) / rate
		if c.plonk {
			c.cost(int64(blocks) * spongeSCS)
		} else {
			c.cost(int64(blocks) * spongeR1CS)
		}
	}
	for start := 0; start < n; start += per {
		acc := c.Const(0)
		for i := start; i < min(start+per, n); i++ {
			v := sym{terms: 1} // a committed value is an input, output or param wire
			if prechecked == nil || !prechecked[i] {
				c.RangeCheck(v, w)
			}
			// acc*2^w + (v + 2^(w-1)); 2 stands for any constant other than 1.
			acc = c.add(c.MulConst(acc, 2), c.add(v, nonzero()))
		}
		c.cost(perElement)
	}
	c.assert()
}

// deferred charges the range argument (rangearg.go) and the lookup tables
// (gnark's logderivlookup), which are built after the layers.
func (c *counter) deferred() {
	if c.one {
		c.c++ // one = 1
		c.w++ // the hint's output
	}
	if len(c.checks) > 0 && !c.bitsMode {
		t := tableBits(c.checks)
		size := int64(1) << t
		var q, limbs, checks int64
		for b, n := range c.checks {
			q += n * int64(queriesFor(b, t))
			limbs += n * int64((b+t-1)/t-1)
			checks += n
		}
		c.w += limbs + size // limb and multiplicity hints
		if c.plonk {
			// limb subtractions; per query alpha-q and its inverse; per table value
			// alpha-i and the division; the two sums; each committed wire: the
			// multiplicities and a check's limbs (its hinted low limbs and the wire its
			// top limb is a multiple of), not its queries: a narrow top limb's shifted
			// query is the same wire (measured: a 25-bit check with 9-bit limbs, 4
			// queries, compiles to 17 constraints; charged 19 until 2026-11-30).
			c.cost(limbs + 2*q + 2*size + (q - 1) + (size - 1) + (limbs + checks) + size)
		} else {
			// per query an inverse, per table value a division, two compressed sums.
			c.cost(q + size + 2 + c.wideChecks)
		}
		c.assert()
		c.cost(commitAllowance)
	}
	for t, q := range c.tables {
		e := int64(len(t.Values))
		c.w += e // multiplicity hints
		if c.plonk {
			c.cost(12*q + 5*e + tableAllowance)
		} else {
			c.cost(8*q + e + tableAllowance)
		}
	}
	if len(c.tables) > 0 {
		c.cost(commitAllowance)
	}
}

// queriesFor and tableBits mirror circuits/rangearg.go: the number of table queries of
// a b-bit check with t-bit limbs, and the limb width the argument chooses.
func queriesFor(b, t int) int {
	n := (b + t - 1) / t
	if b%t != 0 {
		n++
	}
	return n
}

func tableBits(checks map[int]int64) int {
	best, bestCost := 0, int64(0)
	for t := 4; t <= 16; t++ {
		cost := int64(1) << t
		for b, n := range checks {
			cost += n * int64(queriesFor(b, t))
		}
		if best == 0 || cost < bestCost {
			best, bestCost = t, cost
		}
	}
	return best
}

// ErrOverBudget is wrapped by Budget.Check when an estimate exceeds a limit.
var ErrOverBudget = errors.New("over budget")

// Limits are the admission budgets of a job; zero fields are unlimited.
type Limits struct {
	// MaxConstraints bounds the constraints of each proving system (ZKML_MAX_CONSTRAINTS).
	MaxConstraints int64
	// MaxMemoryBytes bounds the estimated peak memory of a job (ZKML_MAX_JOB_MEMORY).
	MaxMemoryBytes int64
	// MemorySource says where MaxMemoryBytes comes from, for errors (default
	// "ZKML_MAX_JOB_MEMORY").
	MemorySource string
}

// memorySource is MemorySource, or its default.
func (l Limits) memorySource() string { return cmp.Or(l.MemorySource, "ZKML_MAX_JOB_MEMORY") }

// Check returns an error wrapping ErrOverBudget that names the first limit e exceeds.
func (l Limits) Check(e *Estimate) error {
	if l.MaxConstraints > 0 && e.Constraints > l.MaxConstraints {
		return fmt.Errorf("%w: %s needs an estimated %d constraints, above the limit of %d (ZKML_MAX_CONSTRAINTS)",
			ErrOverBudget, e.System, e.Constraints, l.MaxConstraints)
	}
	if l.MaxMemoryBytes > 0 && e.MemoryBytes > l.MaxMemoryBytes {
		source := l.memorySource()
		return fmt.Errorf("%w: %s needs an estimated %d MiB of memory (%d constraints, %d multiply-accumulate terms), above the limit of %d MiB (%s)",
			ErrOverBudget, e.System, e.MemoryBytes>>20, e.Constraints, e.Terms, l.MaxMemoryBytes>>20, source)
	}
	return nil
}

// BytesPerSlot is the memory the estimate charges per FFT domain slot: PLONK's or
// Groth16's (see the memory model).
func BytesPerSlot(plonk bool) int64 {
	if plonk {
		return EstimateBytesPerSlot
	}
	return EstimateGroth16BytesPerSlot
}
