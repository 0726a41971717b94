package circuits

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark/frontend"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

const modelsDir = "../testdata/models"

// loadShared loads a shared example model with its sample input.
func loadShared(t testing.TB, name string) (*model.Graph, []*model.Tensor) {
	t.Helper()
	dir := filepath.Join(modelsDir, name)
	b, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		t.Skipf("shared models not available: %v", err)
	}
	g, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(ib, g)
	if err != nil {
		t.Fatal(err)
	}
	return g, in
}

func sharedModels(t testing.TB) []string {
	entries, err := os.ReadDir(modelsDir)
	if err != nil {
		t.Skipf("shared models not available: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// solve checks whether assignment satisfies the compiled constraint system.
func solve(t *testing.T, p *quant.Program, sys System, assignment *Circuit) error {
	t.Helper()
	ccs, _, err := Compile(p, sys)
	if err != nil {
		t.Fatal(err)
	}
	w, err := frontend.NewWitness(assignment, Field)
	if err != nil {
		t.Fatal(err)
	}
	return ccs.IsSolved(w)
}

func TestSharedModelsSolve(t *testing.T) {
	for _, name := range sharedModels(t) {
		t.Run(name, func(t *testing.T) {
			g, in := loadShared(t, name)
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
			for _, sys := range []System{Groth16, Plonk} {
				a, err := Assign(p, qi, r.Outputs)
				if err != nil {
					t.Fatal(err)
				}
				if err := solve(t, p, sys, a); err != nil {
					t.Fatalf("%s: honest witness not solved: %v", sys, err)
				}
				// A wrong claimed output must not be provable.
				bad := make([][]int64, len(r.Outputs))
				for i := range r.Outputs {
					bad[i] = append([]int64(nil), r.Outputs[i]...)
				}
				bad[0][0]++
				a, _ = Assign(p, qi, bad)
				if err := solve(t, p, sys, a); err == nil {
					t.Fatalf("%s: wrong output was accepted", sys)
				}
			}
		})
	}
}
