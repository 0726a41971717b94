package circuits

import (
	"runtime/debug"
	"testing"

	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
)

// longSum asserts that the sum of its secret inputs, as the range argument and Dot build
// it, is Total.
type longSum struct {
	X     []frontend.Variable
	Total frontend.Variable `gnark:",public"`
	dot   bool
}

func (c *longSum) Define(api frontend.API) error {
	if c.dot {
		w := make([]frontend.Variable, len(c.X))
		for i := range w {
			w[i] = 3
		}
		api.AssertIsEqual(newArith(api, nil).Dot(c.X, w, 1), c.Total)
		return nil
	}
	api.AssertIsEqual(sum(api, c.X), c.Total)
	return nil
}

func compileWith(builder string, c frontend.Circuit) (constraint.ConstraintSystem, error) {
	if builder == "plonk" {
		return frontend.Compile(Field, scs.NewBuilder, c)
	}
	return frontend.Compile(Field, r1cs.NewBuilder, c)
}

// TestLongSumsCompile is the regression test of a 117-byte model (262,144 elements) that
// killed the server: gnark's PLONK builder recursed once per term of one api.Add and
// overflowed the stack, a fatal error. With the stack limited to 16 MiB, a sum of 2^18
// terms overflowed before sums were built as trees; now compiling needs little stack.
func TestLongSumsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles circuits of 2^18 terms")
	}
	old := debug.SetMaxStack(16 << 20)
	defer debug.SetMaxStack(old)
	const n = 1 << 18
	for _, dot := range []bool{false, true} {
		for _, name := range []string{"plonk", "r1cs"} {
			ccs, err := compileWith(name, &longSum{X: make([]frontend.Variable, n), dot: dot})
			if err != nil {
				t.Fatalf("%s dot=%v: %v", name, dot, err)
			}
			if name == "plonk" && ccs.GetNbConstraints() > n+4 {
				t.Errorf("plonk dot=%v: %d constraints for a sum of %d terms", dot, ccs.GetNbConstraints(), n)
			}
		}
	}
}

// TestSumValues checks sum and Dot on small vectors of every length around the chunk
// size, and that a wrong total fails, in both builders.
func TestSumValues(t *testing.T) {
	for _, n := range []int{0, 1, 2, sumChunk - 1, sumChunk, sumChunk + 1, sumChunk*sumChunk + 3} {
		for _, dot := range []bool{false, true} {
			x := make([]frontend.Variable, n)
			total := 0
			for i := range x {
				x[i] = i*7 - 5
				total += i*7 - 5
			}
			if dot {
				total = 3*total + 1
			}
			shape := &longSum{X: make([]frontend.Variable, n), dot: dot}
			for _, name := range []string{"plonk", "r1cs"} {
				ccs, err := compileWith(name, shape)
				if err != nil {
					t.Fatal(err)
				}
				for _, tot := range []int{total, total + 1} {
					w, err := frontend.NewWitness(&longSum{X: x, Total: tot}, Field)
					if err != nil {
						t.Fatal(err)
					}
					if err := ccs.IsSolved(w); (err == nil) != (tot == total) {
						t.Fatalf("n=%d dot=%v total %d (want %d): solved=%v", n, dot, tot, total, err == nil)
					}
				}
			}
		}
	}
}
