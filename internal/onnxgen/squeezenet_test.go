package onnxgen

import (
	"bytes"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

// TestSqueezeNet: the full-size network has SqueezeNet 1.0's parameter and
// multiply-accumulate counts (1.25 M params; 0.82 G MACs, torchvision's figure), and
// a scaled-down one loads, evaluates to its class count and is deterministic.
func TestSqueezeNet(t *testing.T) {
	full, _, macs, err := SqueezeNet{Size: 224, Div: 1, Classes: 1000}.Build()
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(full, &m); err != nil {
		t.Fatal(err)
	}
	params := 0
	for _, init := range m.Graph.Initializer {
		params += len(init.FloatData)
	}
	if macs != 818924576 || params != 1248424 {
		t.Errorf("full size: %d MACs, %d params; want 818924576 and 1248424", macs, params)
	}
	s := SqueezeNet{Size: 32, Div: 8, Classes: 10}
	small, input, _, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(small)
	if err != nil {
		t.Fatal(err)
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
		t.Fatalf("outputs %v", out)
	}
	again, _, _, err := s.Build()
	if err != nil || !bytes.Equal(again, small) {
		t.Fatalf("not deterministic (err %v)", err)
	}
	if _, _, _, err := (SqueezeNet{Size: 16, Div: 1, Classes: 10}).Build(); err == nil {
		t.Error("16x16 accepted")
	}
}
