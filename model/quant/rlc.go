package quant

import (
	"encoding/binary"
	"slices"
)

// Random-linear-combination (Freivalds) checks of linear layers (#16).
//
// A linear layer whose operands are both witnesses (attention's QK^T and AV, or a
// Gemm/MatMul/Conv whose weights are public, private or hashed) costs one
// multiplication constraint per multiply-accumulate when its outputs are computed
// directly. A layer with RLC = n > 0 is proven differently: its outputs, taken as rows
// of n consecutive outputs (output o is in row o / n, column o % n), are hinted, and
// after a commitment to every wire of both operands and of the hinted outputs a
// challenge r is drawn; each row R is then checked as
//
//	sum_c r^c * Y[R*n + c]  ==  sum_c r^c * bias[R*n + c]  +  sum_t r^col(t) * X0[TA[t]] * X1[TB[t]]
//
// (t over the terms of row R), which holds for every r when the hinted row is right and,
// when it is wrong, for at most n-1 values of r (a nonzero polynomial of degree <= n-1
// in r: the n columns of a row are distinct powers). docs/soundness.md gives the bound.
//
// The right-hand side is evaluated factored, like Freivalds' Y*v == A*(B*v): one
// operand (the plan's Side, X) is multiplied by the challenge powers, once per distinct
// (entry, column) pair, and the terms of a row that share the other operand's entry are
// summed into a group S = sum r^col * X[idx] shared by every row whose group is the same;
// each row then costs one product per distinct other-operand entry. For a matrix
// product Y = A*B (m x k by k x n) that is kn + mk + mn products instead of mkn; for a
// convolution with witness weights (Cout x Cin*K against the im2col matrix of the
// input) the products are the im2col entries, Cout*Cin*K and Cout*spatial outputs.
//
// The lowering (chooseRLC) sets RLC when the check's estimated Groth16 constraints are
// below the direct form's (and neither its R1CS wires nor its PLONK constraints are
// above), and only with range_check "lookup": the check needs a
// commitment, which the "bits" mode leaves out on purpose (cheaper on-chain Groth16
// verification), so there every layer stays direct. With fixed weights the direct form
// costs no constraint at all (a constant times a witness is linear) and stays.

// RLCPlan is how a layer with RLC set is checked. It is a deterministic function of
// the program (PlanRLC), computed by the lowering to estimate its cost and again by the
// circuit to build the check.
type RLCPlan struct {
	// Side is the operand multiplied by the challenge powers: 0 for In[0] (indexed by
	// TA), 1 for In[1] (TB); the other operand multiplies the groups.
	Side int
	// Rows of Cols outputs each.
	Rows, Cols int
	// Group g is sum r^GCol[i] * X[GIdx[i]] for i in GStart[g]..GStart[g+1], X the Side
	// operand. Shared groups (used by more than one pair) are materialized once.
	GStart     []int32
	GIdx, GCol []int32
	GUses      []int32
	// Row R is the sum, over PStart[R]..PStart[R+1], of Other[POther[i]] * group PGroup[i].
	PStart         []int32
	POther, PGroup []int32
	// Products is the number of distinct (X entry, column > 0) products.
	Products int
	// Witness[s] says whether operand s is a witness (else a circuit constant).
	Witness [2]bool
}

// Cost is the estimated Groth16 constraints of a plan (what circuits builds for it:
// TestRLCMatMul checks the two agree) and the linear-expression terms it stores.
func (pl *RLCPlan) Cost() (constraints, terms int) {
	c := max(0, pl.Cols-2) // r^2 .. r^(n-1)
	if pl.Witness[pl.Side] {
		c += pl.Products
	}
	terms = pl.Products + len(pl.GIdx) + 2*len(pl.POther) + 3*pl.Rows*pl.Cols
	if pl.Witness[1-pl.Side] {
		c += len(pl.POther)
	}
	for g := range pl.GUses {
		if pl.Shared(g) {
			c++
		}
	}
	c += pl.Rows * (pl.Cols - 1) // r^c * Y for c >= 1
	c += pl.Rows                 // one equality per row
	c++                          // the layer's own challenge (multicommit derives it by a product)
	return c, terms
}

// plonkCost is a rough PLONK constraint count of the check (both operands witness):
// PLONK's commitment costs one constraint per committed wire (the distinct entries
// read and the hinted outputs), and every addition of a sum one more.
func (pl *RLCPlan) plonkCost() int {
	distinct := func(idx []int32) int {
		seen := map[int32]bool{}
		for _, i := range idx {
			seen[i] = true
		}
		return len(seen)
	}
	nOut := pl.Rows * pl.Cols
	c := distinct(pl.GIdx) + distinct(pl.POther) + nOut // commitment
	c += max(0, pl.Cols-2) + pl.Products                // powers, products
	c += len(pl.GIdx) - len(pl.GUses)                   // group sums
	c += 2 * len(pl.POther)                             // pair products and sums
	c += 2*nOut + pl.Rows                               // r^c * Y, their sums, equalities
	return c
}

// Shared reports whether group g is materialized into one wire (one R1CS constraint):
// it has more than one term and more than one pair multiplies it, so each product
// stores one term of it instead of the whole sum.
func (pl *RLCPlan) Shared(g int) bool {
	return pl.GUses[g] > 1 && pl.GStart[g+1]-pl.GStart[g] > 1
}

// DirectCost is the estimated Groth16 constraints (one per product of two witnesses)
// and terms of a linear layer computed directly.
func DirectCost(l *Layer, witness [2]bool) (constraints, terms int) {
	n := l.NumTerms()
	if witness[0] && witness[1] {
		return n, n
	}
	return 0, n
}

// OperandWitness reports, for a linear layer's two operands, whether each is a witness
// value (a runtime tensor or a witness param) rather than a circuit constant.
func (p *Program) OperandWitness(l *Layer) [2]bool {
	var w [2]bool
	for s := range w {
		w[s] = true
		for _, par := range p.Params {
			if par.Value == l.In[s] {
				w[s] = p.Witness(par)
				break
			}
		}
	}
	return w
}

// PlanRLC returns the check plan of l with the side (operand multiplied by the
// powers) that costs fewer constraints, or nil when l cannot be checked by rows of
// l.RLC outputs.
func (p *Program) PlanRLC(l *Layer) *RLCPlan {
	return planRLC(l, l.RLC, p.OperandWitness(l), -1)
}

// planRLC builds both sides' plans (a side is abandoned once the products it already
// needs exceed budget, when budget >= 0, or the first side's cost) and returns the
// cheaper, side 0 on ties.
func planRLC(l *Layer, cols int, witness [2]bool, budget int) *RLCPlan {
	if l.Kind != KLinear {
		return nil
	}
	nOut := l.LinearOutputs()
	if cols < 1 || nOut < 1 || nOut%cols != 0 {
		return nil
	}
	var best *RLCPlan
	bestCost := 0
	for side := range 2 {
		pl := planSide(l, cols, side, witness, budget)
		if pl == nil {
			continue
		}
		if c, _ := pl.Cost(); best == nil || c < bestCost {
			best, bestCost = pl, c
			budget = c // the other side must do better
		}
	}
	return best
}

func planSide(l *Layer, cols, side int, witness [2]bool, budget int) *RLCPlan {
	nOut := l.LinearOutputs()
	var buf TermBuf
	pl := &RLCPlan{Side: side, Rows: nOut / cols, Cols: cols, Witness: witness}
	pl.GStart = []int32{0}
	groups := map[string]int32{}
	products := map[int64]struct{}{}
	type entry struct{ idx, col int32 }
	byOther := map[int32][]entry{}
	var order []int32
	var key []byte
	for r := 0; r < pl.Rows; r++ {
		clear(byOther)
		order = order[:0]
		for c := 0; c < cols; c++ {
			o := r*cols + c
			xs, os := l.Terms(o, &buf)
			if side == 1 {
				xs, os = os, xs
			}
			for t := range xs {
				ot := os[t]
				if _, ok := byOther[ot]; !ok {
					order = append(order, ot)
				}
				byOther[ot] = append(byOther[ot], entry{xs[t], int32(c)})
				if c > 0 {
					products[int64(xs[t])*int64(cols)+int64(c)] = struct{}{}
				}
			}
		}
		pl.PStart = append(pl.PStart, int32(len(pl.POther)))
		for _, ot := range order {
			es := byOther[ot]
			slices.SortFunc(es, func(a, b entry) int {
				if a.idx != b.idx {
					return int(a.idx - b.idx)
				}
				return int(a.col - b.col)
			})
			key = key[:0]
			for _, e := range es {
				key = binary.LittleEndian.AppendUint32(key, uint32(e.idx))
				key = binary.LittleEndian.AppendUint32(key, uint32(e.col))
			}
			g, ok := groups[string(key)]
			if !ok {
				g = int32(len(pl.GUses))
				groups[string(key)] = g
				for _, e := range es {
					pl.GIdx = append(pl.GIdx, e.idx)
					pl.GCol = append(pl.GCol, e.col)
				}
				pl.GStart = append(pl.GStart, int32(len(pl.GIdx)))
				pl.GUses = append(pl.GUses, 0)
			}
			pl.GUses[g]++
			pl.POther = append(pl.POther, ot)
			pl.PGroup = append(pl.PGroup, g)
		}
		// A lower bound of the cost so far: the products and pair products it pays
		// for already. A side that cannot beat the budget is abandoned early (the
		// other side of a matrix product costs about mkn of each).
		lb := 0
		if witness[side] {
			lb += len(products)
		}
		if witness[1-side] {
			lb += len(pl.POther)
		}
		if budget >= 0 && lb > budget {
			return nil
		}
	}
	pl.PStart = append(pl.PStart, int32(len(pl.POther)))
	pl.Products = len(products)
	return pl
}

// chooseRLC sets l.RLC = cols when checking l by random linear combination in rows of
// cols outputs is estimated to cost fewer Groth16 constraints than computing it
// directly (fewer terms on a tie). It needs range_check "lookup" (see above).
func (p *Program) chooseRLC(l *Layer, cols int) {
	if p.RangeCheck != "lookup" || cols < 2 {
		return
	}
	w := p.OperandWitness(l)
	direct, directTerms := DirectCost(l, w)
	if direct == 0 {
		return // fixed operand: the direct form has no multiplication to save
	}
	pl := planRLC(l, cols, w, direct)
	if pl == nil {
		return
	}
	// Fewer Groth16 constraints, fewer R1CS wires (the check adds its hinted outputs
	// as wires; the admission estimate bounds wires by the direct form) and fewer
	// PLONK constraints (about two per direct product: a product and an addition).
	c, terms := pl.Cost()
	nOut := l.LinearOutputs()
	if c+nOut > direct || pl.plonkCost() >= 2*direct {
		return
	}
	if c < direct || (c == direct && terms < directTerms) {
		l.RLC = cols
	}
}

// WithoutRLC returns p with every linear layer computed directly (RLC cleared), as
// zkml lowered every program before the check existed, and whether any layer changed;
// p itself is not modified (the changed layers are copies). A model directory recorded
// then is opened with this program, the one its keys and verifier were made for.
func (p *Program) WithoutRLC() (*Program, bool) {
	q := *p
	q.Layers = slices.Clone(p.Layers)
	changed := false
	for i, l := range q.Layers {
		if l != nil && l.RLC != 0 {
			c := *l
			c.RLC = 0
			q.Layers[i] = &c
			changed = true
		}
	}
	return &q, changed
}
