package prover

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model/quant"
)

// TestOpenBeforeRLC: a model whose lowering now checks linear layers by random linear
// combination (#16; here examples/mnist_cnn with private weights, whose convolutions
// are checked) still opens from a directory recorded before the check existed, under
// its recorded ID and with the program its keys were made for (every layer direct).
// A directory recorded now opens with the checked program; any other ID is corrupt.
func TestOpenBeforeRLC(t *testing.T) {
	onnx, err := os.ReadFile(filepath.Join("..", "examples", "mnist_cnn", "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := quant.DefaultConfig()
	cfg.ParamVis = quant.Private
	dir := t.TempDir()
	m, err := Create(dir, onnx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checked := func(p *quant.Program) int {
		n := 0
		for _, l := range p.Layers {
			if l.RLC > 0 {
				n++
			}
		}
		return n
	}
	if checked(m.Program) == 0 {
		t.Fatal("no layer of the private-weight CNN is checked by RLC")
	}
	direct, _ := m.Program.WithoutRLC()
	if checked(m.Program) == 0 || checked(direct) != 0 {
		t.Fatal("WithoutRLC changed its receiver or kept a check")
	}
	before, err := ModelID(direct)
	if err != nil {
		t.Fatal(err)
	}
	if before == m.ID {
		t.Fatal("the direct program has the checked program's ID")
	}
	for _, c := range []struct {
		name    string
		id      string
		checked bool
		corrupt bool
	}{
		{"recorded now", m.ID, true, false},
		{"recorded before #16", before, false, false},
		{"unknown", "0000", false, true},
	} {
		m.manifest.ModelID = c.id
		if err := m.manifest.write(dir); err != nil {
			t.Fatal(err)
		}
		got, err := Open(dir)
		switch {
		case c.corrupt:
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: err %v, want ErrCorrupt", c.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case got.ID != c.id || (checked(got.Program) > 0) != c.checked:
			t.Errorf("%s: opened with ID %s (want %s), %d checked layers", c.name, got.ID, c.id, checked(got.Program))
		}
	}
}
