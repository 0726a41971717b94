package onnxgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zkml/zkml/model"
)

//go:generate go test -run TestCheckedInModels -update .

var update = flag.Bool("update", false, "rewrite the example models under testdata/models and examples/")

// Where the generated files are checked in, relative to this package.
const (
	modelsDir  = "../../testdata/models"
	exampleDir = "../../examples/mnist_cnn"
)

// mnistSampleCount is how many calibration samples examples/mnist_cnn/samples.json holds.
const mnistSampleCount = 4

// generated returns every checked-in file (path relative to this package) and its
// expected content.
func generated(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range ExampleNames() {
		e, err := BuildExample(name)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Join(modelsDir, name, "network.onnx")] = e.ONNX
		files[filepath.Join(modelsDir, name, "input.json")] = append(e.Input, '\n')
	}
	onnxBytes, input, err := MNISTCNN.Build("mnist_cnn")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := MNISTSamples(mnistSampleCount)
	if err != nil {
		t.Fatal(err)
	}
	files[filepath.Join(exampleDir, "network.onnx")] = onnxBytes
	files[filepath.Join(exampleDir, "input.json")] = append(input, '\n')
	files[filepath.Join(exampleDir, "samples.json")] = append(samples, '\n')
	return files
}

// TestCheckedInModels checks that the model files in the repository are exactly what
// this package generates (run `go generate ./internal/onnxgen` after changing a model),
// and that testdata/models holds no model this package does not define.
func TestCheckedInModels(t *testing.T) {
	files := generated(t)
	for path, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run go generate ./internal/onnxgen)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generated model (run go generate ./internal/onnxgen)", path)
		}
	}
	dirs, err := os.ReadDir(modelsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && !slices.Contains(ExampleNames(), d.Name()) {
			t.Errorf("%s/%s is not an example model of onnxgen", modelsDir, d.Name())
		}
	}
}

// TestExamplesLoad checks that every generated model loads, accepts its sample input and
// evaluates, and that building is deterministic.
func TestExamplesLoad(t *testing.T) {
	for _, name := range ExampleNames() {
		t.Run(name, func(t *testing.T) {
			e, err := BuildExample(name)
			if err != nil {
				t.Fatal(err)
			}
			g, err := model.Load(e.ONNX)
			if err != nil {
				t.Fatal(err)
			}
			in, err := model.ParseInput(e.Input, g)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.Eval(in); err != nil {
				t.Fatal(err)
			}
			again, err := BuildExample(name)
			if err != nil || !bytes.Equal(again.ONNX, e.ONNX) || !bytes.Equal(again.Input, e.Input) {
				t.Fatalf("%s is not deterministic (err %v)", name, err)
			}
		})
	}
	if _, err := BuildExample("nope"); err == nil {
		t.Error("unknown example accepted")
	}
}
