package onnxgen

import (
	"bytes"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

// params counts a model's parameters: initializer values, and the elements of every
// ConstantOfShape (FillWeights) weight, whose shapes are int64 initializers.
func params(t *testing.T, b []byte) int64 {
	t.Helper()
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int64{}
	var n int64
	for _, init := range m.Graph.Initializer {
		if init.DataType == int32(onnx.TensorProto_INT64) {
			shapes[init.Name] = init.Int64Data
			continue
		}
		n += int64(len(init.FloatData))
	}
	for _, node := range m.Graph.Node {
		if node.OpType == "ConstantOfShape" {
			n += numel(shapes[node.Input[0]])
		}
	}
	return n
}

// TestArchsFullSize: at 224x224 and full width, each architecture has its published
// parameter and multiply-accumulate counts (MACs of every Conv and Gemm, padding taps
// included): ResNet-50 v1 25,557,032 params (torchvision's count) plus the 53,120
// running means and variances of its BatchNormalizations, 3.86 G MACs; VGG-16
// 138,357,544 params, 15.47 G MACs; BVLC AlexNet (grouped convolutions) 60,965,224
// params, 0.72 G MACs.
func TestArchsFullSize(t *testing.T) {
	for _, c := range []struct {
		arch         Arch
		params, macs int64
	}{
		{ResNet50{Size: 224, Div: 1, Classes: 1000, FillWeights: true}, 25610152, 3857973248},
		{VGG16{Size: 224, Div: 1, Classes: 1000, FillWeights: true}, 138357544, 15470264320},
		{AlexNet{Size: 224, Div: 1, Classes: 1000, FillWeights: true}, 60965224, 720608384},
	} {
		b, _, macs, err := c.arch.Build()
		if err != nil {
			t.Fatal(err)
		}
		p := params(t, b)
		t.Logf("%s: %d params, %d MACs, %d bytes", c.arch.Name(), p, macs, len(b))
		if p != c.params || macs != c.macs {
			t.Errorf("%s: %d params, %d MACs; want %d and %d", c.arch.Name(), p, macs, c.params, c.macs)
		}
	}
}

// TestArchsSmall: scaled-down versions load, evaluate to their class count and are
// deterministic; the FillWeights form has the same graph shapes.
func TestArchsSmall(t *testing.T) {
	for _, a := range []Arch{
		ResNet50{Size: 32, Div: 16, Classes: 10},
		VGG16{Size: 32, Div: 16, Classes: 10},
		AlexNet{Size: 64, Div: 16, Classes: 10},
	} {
		b, input, _, err := a.Build()
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(b)
		if err != nil {
			t.Fatalf("%s: %v", a.Name(), err)
		}
		in, err := model.ParseInput(input, g)
		if err != nil {
			t.Fatal(err)
		}
		out, err := g.Eval(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || len(out[0].Data) != 10 {
			t.Fatalf("%s: outputs %v", a.Name(), out)
		}
		again, _, _, err := a.Build()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s: not deterministic (err %v)", a.Name(), err)
		}
	}
}
