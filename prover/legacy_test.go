package prover

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model/quant"
)

// TestOpenLegacyModelID: model directories written by earlier versions still open,
// under the ID their verifiers were deployed with: the JSON-based ID recorded before
// the canonical encoding (#16), and that ID hashed with an empty range_check when
// settings.json has none (written before settings were normalized). Any other ID is
// corrupt, and the empty-range_check ID only counts when settings.json has none.
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
	current, err := json.Marshal(quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	legacyCfg := quant.DefaultConfig()
	legacyCfg.RangeCheck = ""
	unnormalized, err := json.Marshal(legacyCfg)
	if err != nil {
		t.Fatal(err)
	}
	jsonID, err := jsonModelID(m.Program)
	if err != nil {
		t.Fatal(err)
	}
	emptyProg := *m.Program
	emptyProg.RangeCheck = ""
	emptyRC, err := jsonModelID(&emptyProg)
	if err != nil {
		t.Fatal(err)
	}
	if len(map[string]bool{m.ID: true, jsonID: true, emptyRC: true}) != 3 {
		t.Fatalf("IDs not distinct: current %s, JSON %s, JSON with empty range_check %s", m.ID, jsonID, emptyRC)
	}
	for _, c := range []struct {
		name     string
		settings []byte
		id       string
		corrupt  bool
	}{
		{"current", current, m.ID, false},
		{"JSON-based (before #16)", current, jsonID, false},
		{"current, unnormalized settings", unnormalized, m.ID, false},
		{"JSON-based, unnormalized settings", unnormalized, jsonID, false},
		{"JSON-based empty range_check, unnormalized settings", unnormalized, emptyRC, false},
		{"JSON-based empty range_check, settings say lookup", current, emptyRC, true},
		{"unknown", current, "0000", true},
	} {
		if err := m.manifest.putFile(dir, "settings.json", c.settings); err != nil {
			t.Fatal(err)
		}
		m.manifest.ModelID = c.id
		if err := m.manifest.write(dir); err != nil {
			t.Fatal(err)
		}
		got, err := Open(dir)
		switch {
		case c.corrupt && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: err %v, want ErrCorrupt", c.name, err)
		case !c.corrupt && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.corrupt && got.ID != c.id:
			t.Errorf("%s: opened with ID %s, want %s", c.name, got.ID, c.id)
		}
	}
}
