package circuits

import (
	"math/big"
	"math/rand"
	"slices"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativeposeidon2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/zkml/zkml/model/quant"
)

// TestBoundaryVisibility: a program with quant.Boundary inputs and outputs (a
// segment of a sharded model) commits to both under TagBoundary, so the output
// commitment of one segment and the input commitment of the next agree on the same
// values; a different input, output or commitment does not solve.
func TestBoundaryVisibility(t *testing.T) {
	g, in := loadShared(t, "1l_mlp")
	p, err := quant.Lower(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.InputVis, p.OutputVis = quant.Boundary, quant.Boundary
	if p.Validate() == nil {
		t.Fatal("boundary visibility accepted as a user setting")
	}
	qi, err := p.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLayout(p)
	if len(l.Hashes) != 2 || l.Hashes[0].Tag != TagInputs || l.Hashes[1].Tag != TagOutputs ||
		l.Hashes[0].Domain != TagBoundary || l.Hashes[1].Domain != TagBoundary || l.Inputs[0].Public || l.Outputs[0].Public {
		t.Fatalf("layout %+v", l)
	}
	cs, err := Commitments(p, qi, r.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Commit(TagBoundary, l.Hashes[1].Width, r.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	other, err := Commit(TagOutputs, l.Hashes[1].Width, r.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	if cs[1].Cmp(want) != 0 || want.Cmp(other) == 0 {
		t.Fatalf("output commitment %s, want %s (not the outputs tag's %s)", cs[1], want, other)
	}
	ccs, _, err := Compile(p, Groth16)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, a *Circuit, wantOK bool) {
		t.Helper()
		w, err := frontend.NewWitness(a, Field)
		if err != nil {
			t.Fatal(err)
		}
		if err := ccs.IsSolved(w); (err == nil) != wantOK {
			t.Fatalf("%s: solved %v, want %v", name, err == nil, wantOK)
		}
	}
	a, err := Assign(p, qi, r.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	check("honest", a, true)
	a, _ = Assign(p, qi, r.Outputs)
	a.Secret[l.Inputs[0].Offset] = qi[0][0] + 1
	check("other input", a, false)
	a, _ = Assign(p, qi, r.Outputs)
	a.Secret[l.Outputs[0].Offset] = r.Outputs[0][0] + 1
	check("other output", a, false)
	for _, h := range l.Hashes {
		a, _ = Assign(p, qi, r.Outputs)
		a.Public[h.Offset] = new(big.Int).Add(a.Public[h.Offset].(*big.Int), big.NewInt(1))
		check("wrong commitment", a, false)
	}
}

// TestBoundaryGroups: a Boundary side with groups (Program.OutputGroups) has one
// commitment per group, over the group's tensors only, in order after the input
// groups'; each must be right for the witness to solve; non-canonical groups are
// refused.
func TestBoundaryGroups(t *testing.T) {
	g, in := loadShared(t, "1l_mlp")
	p, err := quant.Lower(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	qi, err := p.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	// The output exported twice (to two consumers), and the input once more as a
	// second output group of two tensors: groups [1, 2] of outputs [o, o, in].
	o := p.Outputs[0]
	p.InputVis, p.OutputVis = quant.Boundary, quant.Boundary
	p.Outputs = []int{o, o, p.Inputs[0]}
	p.OutputNames = []string{"a", "b", "c"}
	p.OutputGroups = []int{1, 2}
	outs := [][]int64{r.Outputs[0], r.Outputs[0], qi[0]}
	l := NewLayout(p)
	if len(l.Hashes) != 3 || l.Hashes[0].Tag != TagInputs || l.Hashes[1].Tag != TagOutputs || l.Hashes[2].Tag != TagOutputs ||
		l.Hashes[1].First != 0 || l.Hashes[1].Count != 1 || l.Hashes[2].First != 1 || l.Hashes[2].Count != 2 ||
		l.Hashes[2].Offset != l.Hashes[1].Offset+1 {
		t.Fatalf("hashes %+v", l.Hashes)
	}
	cs, err := Commitments(p, qi, outs)
	if err != nil {
		t.Fatal(err)
	}
	w1 := widthFor(p.Values[o].Bound)
	w2 := max(w1, widthFor(p.Values[p.Inputs[0]].Bound))
	g1, _ := Commit(TagBoundary, w1, r.Outputs[0])
	g2, _ := Commit(TagBoundary, w2, append(append([]int64{}, r.Outputs[0]...), qi[0]...))
	if l.Hashes[1].Width != w1 || l.Hashes[2].Width != w2 || cs[1].Cmp(g1) != 0 || cs[2].Cmp(g2) != 0 {
		t.Fatalf("group commitments %v, want %v %v (widths %d %d)", cs[1:], g1, g2, w1, w2)
	}
	ccs, _, err := Compile(p, Groth16)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, a *Circuit, wantOK bool) {
		t.Helper()
		w, err := frontend.NewWitness(a, Field)
		if err != nil {
			t.Fatal(err)
		}
		if err := ccs.IsSolved(w); (err == nil) != wantOK {
			t.Fatalf("%s: solved %v, want %v", name, err == nil, wantOK)
		}
	}
	a, err := Assign(p, qi, outs)
	if err != nil {
		t.Fatal(err)
	}
	check("honest", a, true)
	for _, h := range l.Hashes {
		a, _ = Assign(p, qi, outs)
		a.Public[h.Offset] = new(big.Int).Add(a.Public[h.Offset].(*big.Int), big.NewInt(1))
		check("wrong commitment", a, false)
	}
	// The two groups' commitments swapped.
	a, _ = Assign(p, qi, outs)
	a.Public[l.Hashes[1].Offset], a.Public[l.Hashes[2].Offset] = a.Public[l.Hashes[2].Offset], a.Public[l.Hashes[1].Offset]
	check("swapped group commitments", a, false)
	for name, f := range map[string]func(q *quant.Program){
		"one group":            func(q *quant.Program) { q.OutputGroups = []int{3} },
		"empty group":          func(q *quant.Program) { q.OutputGroups = []int{3, 0} },
		"short":                func(q *quant.Program) { q.OutputGroups = []int{1, 1} },
		"on a hashed side":     func(q *quant.Program) { q.OutputVis = quant.Hashed },
		"on the private input": func(q *quant.Program) { q.InputVis, q.InputGroups = quant.Private, []int{1, 0} },
	} {
		q := *p
		f(&q)
		if CheckGroups(&q) == nil {
			t.Errorf("%s: groups %v %v accepted", name, q.InputGroups, q.OutputGroups)
		}
		if _, _, err := Compile(&q, Groth16); err == nil {
			t.Errorf("%s: compiled", name)
		}
		if _, err := Assign(&q, qi, outs); err == nil {
			t.Errorf("%s: assigned", name)
		}
	}
}

// TestBoundaryPrechecked: a boundary input that the segment range-checks whole to at
// most the commitment's width is not range-checked again by the commitment
// (Prechecked), and stays bound: a forged input packing to the same field element
// (a carry from one slot into the next: [a+2^w, b-1] for [a, b]) fails that range
// check. A wider check, a check with a fill and a check of part of the input leave
// the commitment's own.
func TestBoundaryPrechecked(t *testing.T) {
	prog := func(check *quant.Layer) *quant.Program {
		p := &quant.Program{Config: quant.DefaultConfig(),
			Values:     []quant.Value{{Shape: []int{2}, Bound: 100}, {Shape: []int{2}, Bound: 100}},
			Inputs:     []int{0},
			Outputs:    []int{1},
			InputNames: []string{"x"}, OutputNames: []string{"y"},
		}
		p.InputVis, p.OutputVis = quant.Boundary, quant.Private
		if check == nil {
			p.Outputs = []int{0}
		} else {
			check.In, check.Out = []int{0}, 1
			p.Layers = []*quant.Layer{check}
		}
		return p
	}
	boundary := func(bits int) *quant.Layer {
		return &quant.Layer{Name: "boundary", Op: "Boundary", Kind: quant.KRangeChk, Bits: bits}
	}
	p := prog(boundary(8))
	l := NewLayout(p)
	if len(l.Hashes) != 1 || l.Hashes[0].Width != 8 {
		t.Fatalf("hashes %+v", l.Hashes)
	}
	if got := Prechecked(p, l, l.Hashes[0]); len(got) != 2 || !got[0] || !got[1] {
		t.Fatalf("prechecked %v, want both", got)
	}
	for name, c := range map[string]*quant.Layer{
		"none":  nil,
		"wider": boundary(9),
		"fill":  {Name: "boundary", Op: "Boundary", Kind: quant.KRangeChk, Bits: 8, Fill: 1},
		"part":  {Name: "boundary", Op: "Boundary", Kind: quant.KRangeChk, Bits: 8, OutLo: 0, OutHi: 1},
	} {
		q := prog(c)
		if got := Prechecked(q, NewLayout(q), NewLayout(q).Hashes[0]); got != nil {
			t.Errorf("%s: prechecked %v", name, got)
		}
	}
	counts := map[string]int{}
	for name, q := range map[string]*quant.Program{"prechecked": p, "none": prog(nil), "wider": prog(boundary(9))} {
		ccs, _, err := Compile(q, Groth16)
		if err != nil {
			t.Fatal(err)
		}
		counts[name] = ccs.GetNbConstraints()
		qi := [][]int64{{5, 7}}
		a, err := Assign(q, qi, qi)
		if err != nil {
			t.Fatal(err)
		}
		w, err := frontend.NewWitness(a, Field)
		if err != nil {
			t.Fatal(err)
		}
		if err := ccs.IsSolved(w); err != nil {
			t.Fatalf("%s: honest: %v", name, err)
		}
		// [5+256, 6] packs to (5+256+128) + (6+128)*2^8 = (5+128) + (7+128)*2^8.
		forged := []int64{5 + 256, 6}
		ql := NewLayout(q)
		for j, v := range forged {
			a.Secret[ql.Inputs[0].Offset+j] = v
			a.Secret[ql.Outputs[0].Offset+j] = v
		}
		if w, err = frontend.NewWitness(a, Field); err != nil {
			t.Fatal(err)
		}
		if ccs.IsSolved(w) == nil {
			t.Fatalf("%s: a forged input with the honest commitment solves", name)
		}
	}
	// Checked once: as many constraints as the commitment's own checks alone.
	if counts["prechecked"] > counts["none"] || counts["prechecked"] >= counts["wider"] {
		t.Fatalf("constraints %v: the prechecked input is checked twice", counts)
	}
}

// spongeCircuit asserts C = commitVars(TagBoundary, 8, X): the boundary sponge.
type spongeCircuit struct {
	X []frontend.Variable
	C frontend.Variable `gnark:",public"`
}

func (c *spongeCircuit) Define(api frontend.API) error {
	got, err := commitVars(newArithMode(api, nil, ""), TagBoundary, 8, c.X, nil)
	if err != nil {
		return err
	}
	api.AssertIsEqual(got, c.C)
	return nil
}

// TestBoundarySponge: the boundary commitment's sponge computes the same value in
// and out of the circuit for groups of 0 to 900 values of width 8 (31 values a field
// element, 12 elements in the first block after the header: 372 and 373 values end
// one block and start the next), differs from the Merkle-Damgard commitment of the
// same elements, and a wrong commitment or value does not solve.
func TestBoundarySponge(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, n := range []int{0, 1, 31, 32, 372, 373, 900} {
		vals := make([]int64, n)
		x := make([]frontend.Variable, n)
		for i := range vals {
			vals[i] = int64(r.Intn(256) - 128)
			x[i] = vals[i]
		}
		want, err := Commit(TagBoundary, 8, vals)
		if err != nil {
			t.Fatal(err)
		}
		md, err := mdCommit(TagBoundary, 8, vals)
		if err != nil {
			t.Fatal(err)
		}
		if want.Cmp(md) == 0 {
			t.Fatalf("n %d: the sponge gives the Merkle-Damgard commitment", n)
		}
		ccs, err := frontend.Compile(Field, r1cs.NewBuilder, &spongeCircuit{X: make([]frontend.Variable, n)})
		if err != nil {
			t.Fatal(err)
		}
		solve := func(a *spongeCircuit) error {
			w, err := frontend.NewWitness(a, Field)
			if err != nil {
				t.Fatal(err)
			}
			return ccs.IsSolved(w)
		}
		if err := solve(&spongeCircuit{X: x, C: want}); err != nil {
			t.Fatalf("n %d: native sponge %s not the circuit's: %v", n, want, err)
		}
		if solve(&spongeCircuit{X: x, C: new(big.Int).Add(want, big.NewInt(1))}) == nil {
			t.Fatalf("n %d: a wrong commitment solves", n)
		}
		if n > 0 {
			y := slices.Clone(x)
			y[n-1] = (vals[n-1]+129)%256 - 128
			if solve(&spongeCircuit{X: y, C: want}) == nil {
				t.Fatalf("n %d: another last value solves", n)
			}
		}
	}
}

// mdCommit is Commit with gnark's Merkle-Damgard Poseidon2 whatever the tag.
func mdCommit(tag, w int, values []int64) (*big.Int, error) {
	h := nativeposeidon2.NewMerkleDamgardHasher()
	write := func(x *big.Int) {
		var e fr.Element
		e.SetBigInt(x)
		b := e.Bytes()
		h.Write(b[:])
	}
	write(big.NewInt(int64(tag)))
	write(big.NewInt(int64(len(values))))
	write(big.NewInt(int64(w)))
	per := perElement(w)
	for start := 0; start < len(values); start += per {
		acc := new(big.Int)
		for i := min(start+per, len(values)) - 1; i >= start; i-- {
			acc.Lsh(acc, uint(w)).Add(acc, big.NewInt(values[i]+int64(1)<<(w-1)))
		}
		write(acc)
	}
	return new(big.Int).SetBytes(h.Sum(nil)), nil
}
