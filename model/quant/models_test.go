package quant

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model"
)

// TestSharedModelsLower lowers every shared example model with the default settings
// (BatchNormalization folded where it follows a Conv or Gemm) and checks the integer
// reference against the float reference on the model's input.json.
func TestSharedModelsLower(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/models/*/network.onnx")
	if len(dirs) == 0 {
		t.Skip("no shared models")
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			g, err := model.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "input.json"))
			if err != nil {
				t.Skip("no input.json")
			}
			in, err := model.ParseInput(raw, g)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, g, DefaultConfig(), in, 64, 16)
		})
	}
}
