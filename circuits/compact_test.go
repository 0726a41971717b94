package circuits

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/consensys/gnark/frontend"
)

// dotCircuit asserts that Dot(X, 3...) + 1 is Total; raw builds the sum without
// compact. It records the capacity of the Dot's linear expression.
type dotCircuit struct {
	X     []frontend.Variable
	Total frontend.Variable `gnark:",public"`
	raw   bool
	cap   *int
}

func (c *dotCircuit) Define(api frontend.API) error {
	w := make([]frontend.Variable, len(c.X))
	for i := range w {
		w[i] = 3
	}
	var out frontend.Variable
	if c.raw {
		terms := []frontend.Variable{1}
		for i := range c.X {
			terms = append(terms, api.Mul(c.X[i], w[i]))
		}
		out = sum(api, terms)
	} else {
		out = newArith(api, nil).Dot(c.X, w, 1)
	}
	if r := reflect.ValueOf(out); r.Kind() == reflect.Slice {
		*c.cap = r.Cap()
	}
	api.AssertIsEqual(out, c.Total)
	return nil
}

// TestDotCompactsCompressedSums: a dot product long enough (300 terms with its
// constant) for gnark's R1CS builder to compress it into one wire no longer keeps the
// long expression's backing array (56 bytes a term, held by the program's values until
// the compile ends: #16), and the constraint system is byte for byte the one built
// without compacting.
func TestDotCompactsCompressedSums(t *testing.T) {
	for _, n := range []int{10, 299, 400, 1000} {
		var compactCap, rawCap int
		ccs, err := compileWith("r1cs", &dotCircuit{X: make([]frontend.Variable, n), cap: &compactCap})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := compileWith("r1cs", &dotCircuit{X: make([]frontend.Variable, n), raw: true, cap: &rawCap})
		if err != nil {
			t.Fatal(err)
		}
		var a, b bytes.Buffer
		if _, err := ccs.WriteTo(&a); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("n=%d: compacting changed the constraint system (%d vs %d constraints)", n, ccs.GetNbConstraints(), raw.GetNbConstraints())
		}
		if n >= 299 && (compactCap > 8 || rawCap < n) {
			t.Errorf("n=%d: compressed sum's expression capacity %d (without compacting %d)", n, compactCap, rawCap)
		}
		// The compacted sum still computes the dot product.
		x := make([]frontend.Variable, n)
		total := 1
		for i := range x {
			x[i] = i - 7
			total += 3 * (i - 7)
		}
		for _, tot := range []int{total, total + 1} {
			w, err := frontend.NewWitness(&dotCircuit{X: x, Total: tot}, Field)
			if err != nil {
				t.Fatal(err)
			}
			if err := ccs.IsSolved(w); (err == nil) != (tot == total) {
				t.Errorf("n=%d total %d (want %d): solved=%v", n, tot, total, err == nil)
			}
		}
	}
}
