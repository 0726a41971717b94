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
