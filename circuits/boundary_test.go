package circuits

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark/frontend"

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
