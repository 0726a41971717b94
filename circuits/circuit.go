// Package circuits turns a fixed-point program (model/quant) into a gnark circuit over
// BN254.
//
// What the circuit proves: for the public values (by default the model outputs), there
// exist private values (by default the model inputs) such that running the program —
// with its parameters fixed into the circuit, or supplied as witness values — yields
// exactly the claimed outputs. Every intermediate is bounded: rescales range-check
// quotient and remainder, ReLUs and max prove signs with range checks, lookups are
// log-derivative arguments over fixed tables, inputs and witness parameters are
// range-checked on entry. A wrong output, or a witness that deviates from the integer
// reference anywhere, cannot be proven.
package circuits

import (
	"fmt"
	"math"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"

	"github.com/zkml/zkml/model/quant"
)

// Field is the scalar field of BN254, over which all circuits are built.
var Field = ecc.BN254.ScalarField()

// Circuit is the gnark circuit of a program. Public and Secret hold the witness in the
// order given by the program's Layout.
type Circuit struct {
	Public []frontend.Variable `gnark:",public"`
	Secret []frontend.Variable `gnark:",secret"`

	// gnark walks every field of a circuit by reflection looking for witness
	// values, unexported ones too, naming each slice element it meets: without "-"
	// it walked the whole program, one string per entry of every per-MAC index list
	// (#16: 220 MB of the compile's allocations for a 5 M-MAC SqueezeNet).
	prog  *quant.Program `gnark:"-"`
	stats *Stats         `gnark:"-"`
}

// Slot says where one tensor lives in the witness.
type Slot struct {
	Public bool
	Offset int
	Len    int
}

// Layout places inputs, outputs and witness params in the Public and Secret vectors:
// public values come in the order inputs, outputs, params, then the commitments of
// hashed groups: inputs, outputs, params. A side with quant.Boundary visibility has one
// commitment per boundary group (Program.InputGroups, OutputGroups), in the groups'
// order: every input group's, then every output group's.
type Layout struct {
	Inputs, Outputs []Slot
	Params          []*Slot // nil for params fixed into the circuit
	NbPublic        int
	NbSecret        int
	// Hashes lists the committed groups in public-input order.
	Hashes []HashSlot
}

// HashSlot is the public commitment of a hashed group of tensors.
type HashSlot struct {
	Tag    int // the group: TagInputs, TagOutputs or TagParams
	Offset int // in Public
	Width  int // signed bit width of every committed value
	// Domain is the tag the commitment hashes (Commit's tag): Tag, or TagBoundary for
	// the inputs or outputs of a program with quant.Boundary visibility, so that the
	// two segments of a boundary group commit to the same values identically.
	Domain int
	// First and Count delimit the group's tensors among Inputs (TagInputs) or Outputs
	// (TagOutputs): every one of them unless the side has boundary groups.
	First, Count int
}

// Groups returns the tensor ranges (first, count) of a side's boundary groups from
// their sizes (Program.InputGroups or OutputGroups) and the side's tensor count n:
// one group of every tensor for nil sizes (none when n is 0). Sizes that do not
// partition n are refused by CheckGroups; here they are clipped to n.
func Groups(sizes []int, n int) [][2]int {
	if len(sizes) == 0 {
		if n == 0 {
			return nil
		}
		return [][2]int{{0, n}}
	}
	var out [][2]int
	first := 0
	for _, c := range sizes {
		c = max(0, min(c, n-first))
		out = append(out, [2]int{first, c})
		first += c
	}
	return out
}

// CheckGroups refuses boundary groups that are not canonical: a group list on a side
// without quant.Boundary visibility, a list of fewer than two groups (nil is one
// group), an empty group, or sizes that do not sum to the side's tensor count.
func CheckGroups(p *quant.Program) error {
	if p.PrivateInputs != 0 && (p.InputVis != quant.Boundary || p.PrivateInputs < 0 || p.PrivateInputs >= len(p.Inputs)) {
		return fmt.Errorf("%d private inputs of %d on a side with %s visibility (they lead the boundary groups of a Boundary side)", p.PrivateInputs, len(p.Inputs), p.InputVis)
	}
	for _, side := range []struct {
		name  string
		vis   quant.Visibility
		sizes []int
		n     int
	}{{"input", p.InputVis, p.InputGroups, len(p.Inputs) - p.PrivateInputs}, {"output", p.OutputVis, p.OutputGroups, len(p.Outputs)}} {
		if len(side.sizes) == 0 {
			continue
		}
		if side.vis != quant.Boundary {
			return fmt.Errorf("%s groups on a side with %s visibility", side.name, side.vis)
		}
		if len(side.sizes) < 2 {
			return fmt.Errorf("%s groups %v: one group is written as none", side.name, side.sizes)
		}
		sum := 0
		for _, c := range side.sizes {
			if c < 1 {
				return fmt.Errorf("%s groups %v: an empty group", side.name, side.sizes)
			}
			sum += c
		}
		if sum != side.n {
			return fmt.Errorf("%s groups %v hold %d tensors, the program has %d", side.name, side.sizes, sum, side.n)
		}
	}
	return nil
}

// NewLayout computes the witness layout of p.
func NewLayout(p *quant.Program) *Layout {
	l := &Layout{}
	place := func(public bool, n int) Slot {
		if public {
			l.NbPublic += n
			return Slot{Public: true, Offset: l.NbPublic - n, Len: n}
		}
		l.NbSecret += n
		return Slot{Offset: l.NbSecret - n, Len: n}
	}
	for _, id := range p.Inputs {
		l.Inputs = append(l.Inputs, place(p.InputVis == quant.Public, numel(p.Values[id].Shape)))
	}
	// The first PrivateInputs inputs of a Boundary side are secret, not committed.
	k := 0
	if p.InputVis == quant.Boundary {
		k = min(max(p.PrivateInputs, 0), len(p.Inputs))
	}
	for _, id := range p.Outputs {
		l.Outputs = append(l.Outputs, place(p.OutputVis == quant.Public, numel(p.Values[id].Shape)))
	}
	paramWidth := 0
	for _, par := range p.Params {
		if !p.Witness(par) {
			l.Params = append(l.Params, nil)
			continue
		}
		s := place(p.ParamVis == quant.Public, len(par.Data))
		l.Params = append(l.Params, &s)
		paramWidth = max(paramWidth, par.Bits)
	}
	hash := func(tag, domain, width, first, count int) {
		s := place(true, 1)
		l.Hashes = append(l.Hashes, HashSlot{Tag: tag, Offset: s.Offset, Width: width, Domain: domain, First: first, Count: count})
	}
	switch {
	case p.InputVis == quant.Hashed && len(p.Inputs) > 0:
		hash(TagInputs, TagInputs, groupWidth(p, p.Inputs), 0, len(p.Inputs))
	case p.InputVis == quant.Boundary:
		for _, g := range Groups(p.InputGroups, len(p.Inputs)-k) {
			hash(TagInputs, TagBoundary, groupWidth(p, p.Inputs[k+g[0]:k+g[0]+g[1]]), k+g[0], g[1])
		}
	}
	switch p.OutputVis {
	case quant.Hashed:
		hash(TagOutputs, TagOutputs, groupWidth(p, p.Outputs), 0, len(p.Outputs))
	case quant.Boundary:
		for _, g := range Groups(p.OutputGroups, len(p.Outputs)) {
			hash(TagOutputs, TagBoundary, groupWidth(p, p.Outputs[g[0]:g[0]+g[1]]), g[0], g[1])
		}
	}
	if p.ParamVis == quant.Hashed && paramWidth > 0 {
		hash(TagParams, TagParams, paramWidth, 0, 0)
	}
	return l
}

// groupWidth is the signed width that holds every value of the tensors ids by their
// static bounds: the packing width of their commitment.
func groupWidth(p *quant.Program, ids []int) int {
	w := 1
	for _, id := range ids {
		w = max(w, widthFor(p.Values[id].Bound))
	}
	return w
}

// widthFor is the smallest signed bit width w with |v| < 2^(w-1) for |v| <= bound.
func widthFor(bound float64) int {
	w := 1
	for math.Ldexp(1, w-1) <= bound {
		w++
	}
	return w
}

// group concatenates the tensors a hashed group commits to, in layout order.
func (l *Layout) group(h HashSlot, p *quant.Program, inputs, outputs [][]int64) []int64 {
	var out []int64
	// nil inputs or outputs (a caller that needs only the other groups) commit to
	// nothing.
	switch h.Tag {
	case TagInputs:
		if inputs != nil {
			for _, in := range inputs[h.First : h.First+h.Count] {
				out = append(out, in...)
			}
		}
	case TagOutputs:
		if outputs != nil {
			for _, o := range outputs[h.First : h.First+h.Count] {
				out = append(out, o...)
			}
		}
	case TagParams:
		for i, s := range l.Params {
			if s != nil {
				out = append(out, p.Params[i].Data...)
			}
		}
	}
	return out
}

// Commitments computes the public commitments of p's hashed groups for a witness, in
// layout order (what a verifier compares with published values).
func Commitments(p *quant.Program, inputs, outputs [][]int64) ([]*big.Int, error) {
	if err := CheckGroups(p); err != nil {
		return nil, err
	}
	if len(inputs) != len(p.Inputs) && inputs != nil || len(outputs) != len(p.Outputs) && outputs != nil {
		return nil, fmt.Errorf("commitments: want %d inputs and %d outputs", len(p.Inputs), len(p.Outputs))
	}
	l := NewLayout(p)
	var out []*big.Int
	for _, h := range l.Hashes {
		c, err := Commit(h.Domain, h.Width, l.group(h, p, inputs, outputs))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// New returns a circuit for p with witness slots sized by its layout (for compiling).
func New(p *quant.Program) *Circuit {
	l := NewLayout(p)
	return &Circuit{Public: make([]frontend.Variable, l.NbPublic), Secret: make([]frontend.Variable, l.NbSecret), prog: p}
}

// Assign returns a circuit assignment for p from integer inputs and the integer
// outputs the reference evaluator produced.
func Assign(p *quant.Program, inputs, outputs [][]int64) (*Circuit, error) {
	if len(inputs) != len(p.Inputs) || len(outputs) != len(p.Outputs) {
		return nil, fmt.Errorf("assign: want %d inputs and %d outputs", len(p.Inputs), len(p.Outputs))
	}
	if err := CheckGroups(p); err != nil {
		return nil, fmt.Errorf("assign: %w", err)
	}
	c := New(p)
	l := NewLayout(p)
	put := func(s Slot, data []int64) error {
		if len(data) != s.Len {
			return fmt.Errorf("assign: tensor has %d values, want %d", len(data), s.Len)
		}
		dst := c.Secret
		if s.Public {
			dst = c.Public
		}
		for i, v := range data {
			dst[s.Offset+i] = v
		}
		return nil
	}
	for i, s := range l.Inputs {
		if err := put(s, inputs[i]); err != nil {
			return nil, err
		}
	}
	for i, s := range l.Outputs {
		if err := put(s, outputs[i]); err != nil {
			return nil, err
		}
	}
	for i, s := range l.Params {
		if s != nil {
			if err := put(*s, p.Params[i].Data); err != nil {
				return nil, err
			}
		}
	}
	for _, h := range l.Hashes {
		v, err := Commit(h.Domain, h.Width, l.group(h, p, inputs, outputs))
		if err != nil {
			return nil, fmt.Errorf("assign: commitment: %w", err)
		}
		c.Public[h.Offset] = v
	}
	return c, nil
}

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	p := c.prog
	if p == nil {
		return fmt.Errorf("circuit has no program")
	}
	if err := CheckGroups(p); err != nil {
		return err
	}
	l := NewLayout(p)
	get := func(s Slot) []frontend.Variable {
		if s.Public {
			return c.Public[s.Offset : s.Offset+s.Len]
		}
		return c.Secret[s.Offset : s.Offset+s.Len]
	}
	a := newArithMode(api, c.stats, p.RangeCheck)
	inputs := make([][]frontend.Variable, len(p.Inputs))
	for i, s := range l.Inputs {
		inputs[i] = get(s)
	}
	params := make([][]frontend.Variable, len(p.Params))
	for i, par := range p.Params {
		if s := l.Params[i]; s != nil {
			params[i] = get(*s)
			// Witness params are range-checked so the static bounds hold.
			for _, v := range params[i] {
				a.RangeCheck(v, par.Bits)
			}
			continue
		}
		params[i] = make([]frontend.Variable, len(par.Data))
		for j, v := range par.Data {
			params[i][j] = v
		}
	}
	vals, err := quant.Run[frontend.Variable](p, a, inputs, params)
	if err != nil {
		return err
	}
	a.closeLayer()
	for i, id := range p.Outputs {
		claimed := get(l.Outputs[i])
		for j, v := range vals[id] {
			api.AssertIsEqual(v, claimed[j])
		}
	}
	for _, h := range l.Hashes {
		var group []frontend.Variable
		switch h.Tag {
		case TagInputs:
			for _, s := range l.Inputs[h.First : h.First+h.Count] {
				group = append(group, get(s)...)
			}
		case TagOutputs:
			for _, s := range l.Outputs[h.First : h.First+h.Count] {
				group = append(group, get(s)...)
			}
		case TagParams:
			for _, s := range l.Params {
				if s != nil {
					group = append(group, get(*s)...)
				}
			}
		}
		sum, err := commitVars(a, h.Domain, h.Width, group, Prechecked(p, l, h))
		if err != nil {
			return err
		}
		api.AssertIsEqual(sum, c.Public[h.Offset])
	}
	return nil
}

// System names a proving system.
type System string

// Proving systems.
const (
	Groth16 System = "groth16"
	Plonk   System = "plonk"
)

// ParseSystem validates a proving-system name.
func ParseSystem(s string) (System, error) {
	switch System(s) {
	case Groth16, Plonk:
		return System(s), nil
	}
	return "", fmt.Errorf("unknown proving system %q (want groth16 or plonk)", s)
}

// Compile builds the constraint system of p for sys (R1CS for Groth16, SCS for PLONK)
// and reports its size layer by layer.
func Compile(p *quant.Program, sys System) (constraint.ConstraintSystem, *Stats, error) {
	c := New(p)
	c.stats = &Stats{System: string(sys), Constraint: "r1cs"}
	var ccs constraint.ConstraintSystem
	var err error
	if sys == Plonk {
		c.stats.Constraint = "scs"
		ccs, err = frontend.Compile(Field, scs.NewBuilder, c)
	} else {
		ccs, err = frontend.Compile(Field, r1cs.NewBuilder, c)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("compile circuit: %w", err)
	}
	c.stats.finish(ccs)
	return ccs, c.stats, nil
}
