package model

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// modelsDir holds the example models (written by internal/onnxgen, see ../testdata/models/README.md).
const modelsDir = "../testdata/models"

// sharedModels returns the example model folders, skipping the test when there are none.
func sharedModels(t *testing.T) []string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(modelsDir, "*", "network.onnx"))
	if len(dirs) == 0 {
		t.Skipf("no models under %s", modelsDir)
	}
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	return dirs
}

// outputDataTol is the absolute and relative tolerance against EZKL's output_data, which
// were computed in fixed point (observed error below 0.008).
const outputDataTol = 0.02

// declaredOutputs returns the output shapes the ONNX file declares, -1 for symbolic
// dimensions, nil for outputs declared without a shape.
func declaredOutputs(t *testing.T, data []byte) [][]int {
	t.Helper()
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var shapes [][]int
	for _, vi := range m.GetGraph().GetOutput() {
		var s []int
		if sp := vi.GetType().GetTensorType().GetShape(); sp != nil {
			s = []int{}
			for _, d := range sp.GetDim() {
				if d.GetDimParam() != "" || d.GetDimValue() <= 0 {
					s = append(s, -1)
				} else {
					s = append(s, int(d.GetDimValue()))
				}
			}
		}
		shapes = append(shapes, s)
	}
	return shapes
}

// matchesDeclared compares a shape with a declared one whose -1 dimensions match any size.
func matchesDeclared(shape, declared []int) bool {
	if len(shape) != len(declared) {
		return false
	}
	for i, d := range declared {
		if d >= 0 && d != shape[i] {
			return false
		}
	}
	return true
}

// TestSharedModels loads every example model, parses its input.json and checks that the
// float reference returns finite outputs of the shapes Load inferred. When input.json
// carries EZKL's output_data (quantized outputs), the float outputs must be close to it.
func TestSharedModels(t *testing.T) {
	for _, dir := range sharedModels(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			g, err := Load(data)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			f, err := os.Open(filepath.Join(dir, "input.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			inputs, err := ReadInput(f, g)
			if err != nil {
				t.Fatalf("ReadInput: %v", err)
			}
			out, err := g.Eval(inputs)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if len(out) != len(g.Outputs) {
				t.Fatalf("Eval returned %d outputs, the graph declares %d", len(out), len(g.Outputs))
			}
			declared := declaredOutputs(t, data)
			for i, o := range out {
				if !sameShape(o.Shape, g.Outputs[i].Shape) || len(o.Data) != numel(o.Shape) {
					t.Errorf("output %q has shape %v (%d values), Load inferred %v", g.Outputs[i].Name, o.Shape, len(o.Data), g.Outputs[i].Shape)
				}
				if d := declared[i]; d != nil && !matchesDeclared(o.Shape, d) {
					t.Errorf("output %q has shape %v, the model declares %v", g.Outputs[i].Name, o.Shape, d)
				}
				if err := o.CheckFinite(); err != nil {
					t.Errorf("output %q: %v", g.Outputs[i].Name, err)
				}
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "input.json"))
			var doc struct {
				OutputData [][]float64 `json:"output_data"`
			}
			if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err != nil || doc.OutputData == nil {
				return
			}
			for i, want := range doc.OutputData {
				if i >= len(out) || len(want) != len(out[i].Data) {
					t.Errorf("output_data[%d] has %d values, Eval gave %v", i, len(want), out[i].Shape)
					continue
				}
				worst := 0.0
				for j, w := range want {
					d := math.Abs(out[i].Data[j] - w)
					worst = math.Max(worst, d)
					if d > outputDataTol*(1+math.Abs(w)) {
						t.Errorf("output %d element %d = %v, output_data has %v", i, j, out[i].Data[j], w)
					}
				}
				t.Logf("output %d: max |float - output_data| = %.3g", i, worst)
			}
		})
	}
}
