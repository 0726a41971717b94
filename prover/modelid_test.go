package prover

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model/quant"
)

// goldenMNISTCNN is the model ID of examples/mnist_cnn with the default settings
// (quant encoding version 1). It changes only when the canonical encoding's version
// does or when lowering makes a different program of the same model: either changes
// the ID of every existing model, which verifier contracts are deployed with, so it
// must be deliberate (and legacy IDs kept opening, see legacyModelID).
const goldenMNISTCNN = "d1a765270b585c6a30209e84a9b7b8f11e38d4c436a4171e95273de707da8873"

func TestModelIDGolden(t *testing.T) {
	onnx, err := os.ReadFile(filepath.Join("..", "examples", "mnist_cnn", "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := Build(onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ModelID(p)
	if err != nil {
		t.Fatal(err)
	}
	if id != goldenMNISTCNN {
		t.Errorf("model ID of examples/mnist_cnn %s, want %s", id, goldenMNISTCNN)
	}
	// It is the SHA-256 of the canonical encoding, and not the JSON-based ID.
	h := sha256.New()
	if err := p.WriteCanonical(h); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		t.Errorf("ModelID %s, SHA-256 of the canonical encoding %s", id, got)
	}
	if legacy, err := jsonModelID(p); err != nil || legacy == id {
		t.Errorf("JSON-based ID %s (%v) equals the canonical one", legacy, err)
	}
	// Every setting changes it.
	for name, change := range map[string]func(c *quant.Config){
		"scale":             func(c *quant.Config) { c.Scale = 7 },
		"param_scale":       func(c *quant.Config) { c.ParamScale = 7 },
		"bits":              func(c *quant.Config) { c.Bits = 20 },
		"widths":            func(c *quant.Config) { c.Widths = map[string]int{"input input": 20} },
		"lookup_bits":       func(c *quant.Config) { c.LookupBits = 10 },
		"range_check":       func(c *quant.Config) { c.RangeCheck = "bits" },
		"input_visibility":  func(c *quant.Config) { c.InputVis = quant.Public },
		"output_visibility": func(c *quant.Config) { c.OutputVis = quant.Hashed },
		"param_visibility":  func(c *quant.Config) { c.ParamVis = quant.Private },
	} {
		cfg := quant.DefaultConfig()
		change(&cfg)
		_, q, err := Build(onnx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if other, err := ModelID(q); err != nil || other == id {
			t.Errorf("%s changed: model ID %s (%v)", name, other, err)
		}
	}
}
