package prover

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model/quant"
)

// TestOpenLegacyModelID: a model directory written before settings were normalized
// (settings.json without range_check, the model ID hashed with an empty one) still
// opens, under the ID its verifiers were deployed with; any other ID is corrupt.
func TestOpenLegacyModelID(t *testing.T) {
	onnx, err := os.ReadFile(filepath.Join("..", "examples", "mnist_cnn", "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := Create(dir, onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	legacyCfg := quant.DefaultConfig()
	legacyCfg.RangeCheck = ""
	settings, err := json.Marshal(legacyCfg)
	if err != nil {
		t.Fatal(err)
	}
	legacy := legacyModelID(m.Program, settings)
	if legacy == "" || legacy == m.ID {
		t.Fatalf("legacy ID %q, current %q", legacy, m.ID)
	}
	for _, c := range []struct {
		id      string
		corrupt bool
	}{
		{legacy, false},
		{m.ID, false},
		{"0000", true},
	} {
		if err := m.manifest.putFile(dir, "settings.json", settings); err != nil {
			t.Fatal(err)
		}
		m.manifest.ModelID = c.id
		if err := m.manifest.write(dir); err != nil {
			t.Fatal(err)
		}
		got, err := Open(dir)
		switch {
		case c.corrupt && !errors.Is(err, ErrCorrupt):
			t.Errorf("ID %s: err %v, want ErrCorrupt", c.id, err)
		case !c.corrupt && err != nil:
			t.Errorf("ID %s: %v", c.id, err)
		case !c.corrupt && got.ID != c.id:
			t.Errorf("opened with ID %s, want %s", got.ID, c.id)
		}
	}
}
