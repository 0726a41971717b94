package model

import (
	"math"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
)

// TestLRNFloat checks the LRN reference against ONNX's formula written out directly
// (the window [c - floor((size-1)/2), c + ceil((size-1)/2)] by math.Floor and math.Ceil),
// for odd and even sizes and a size past the channel count, and its attribute checks.
func TestLRNFloat(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, c := range []struct {
		size              int64
		alpha, beta, bias float32
	}{{3, 0.0002, 0.5, 2}, {4, 0.3, 0.75, 1}, {5, 1e-4, 0.75, 1}, {9, 0.9, 1, 0.5}} {
		b := onnxgen.Seeded("lrn")
		y := b.Node("LRN", []string{"x"}, onnxgen.Int("size", c.size), onnxgen.Float("alpha", c.alpha), onnxgen.Float("beta", c.beta), onnxgen.Float("bias", c.bias))
		data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 2, 6, 3)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(y)}, 8, 13)
		if err != nil {
			t.Fatal(err)
		}
		g, err := Load(data)
		if err != nil {
			t.Fatal(err)
		}
		x := NewTensor(2, 6, 3)
		for i := range x.Data {
			x.Data[i] = r.NormFloat64() * 2
		}
		got, err := g.Eval([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		alpha, beta, bias := float64(c.alpha), float64(c.beta), float64(c.bias)
		for n := range 2 {
			for ch := range 6 {
				for s := range 3 {
					sum := 0.0
					lo := ch - int(math.Floor(float64(c.size-1)/2))
					hi := ch + int(math.Ceil(float64(c.size-1)/2))
					for i := lo; i <= hi; i++ {
						if i >= 0 && i < 6 {
							v := x.Data[(n*6+i)*3+s]
							sum += v * v
						}
					}
					o := (n*6+ch)*3 + s
					want := x.Data[o] / math.Pow(bias+alpha/float64(c.size)*sum, beta)
					if math.Abs(got[0].Data[o]-want) > 1e-12 {
						t.Fatalf("size %d element %d: %v, want %v", c.size, o, got[0].Data[o], want)
					}
				}
			}
		}
	}
	for _, attrs := range [][]*onnx.AttributeProto{
		{onnxgen.Float("alpha", 1)},                           // size missing
		{onnxgen.Int("size", 3), onnxgen.Float("bias", 0)},    // base can be 0
		{onnxgen.Int("size", 3), onnxgen.Float("beta", -0.5)}, // unbounded factor
	} {
		b := onnxgen.Seeded("lrn")
		y := b.Node("LRN", []string{"x"}, attrs...)
		data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 1, 3, 2)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(y)}, 8, 13)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(data); err == nil {
			t.Errorf("attributes %v: loaded", attrs)
		}
	}
}
