package calibrate

import (
	"math/rand"
	"os"
	"testing"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

func TestCalibrate(t *testing.T) {
	b, err := os.ReadFile("../../testdata/models/2l_relu_sigmoid_small/network.onnx")
	if err != nil {
		t.Skip("shared models not available")
	}
	g, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	var samples [][]*model.Tensor
	for i := 0; i < 8; i++ {
		in := model.NewTensor(g.Inputs[0].Shape...)
		for j := range in.Data {
			in.Data[j] = rng.NormFloat64() * 3
		}
		samples = append(samples, []*model.Tensor{in})
	}
	cands, best, err := Run(g, samples, quant.DefaultConfig(), Options{Scales: []int{2, 6, 10}})
	if err != nil {
		t.Fatal(err)
	}
	if best < 0 {
		t.Fatalf("no recommendation: %+v", cands)
	}
	for _, c := range cands {
		if c.Err != "" {
			t.Errorf("scale %d: %s", c.Config.Scale, c.Err)
			continue
		}
		// The chosen width must hold every value seen, with the margin.
		if float64(c.MaxAbs)*2 >= float64(int64(1)<<(c.Config.Bits-1)) {
			t.Errorf("scale %d: bits %d too small for max %d", c.Config.Scale, c.Config.Bits, c.MaxAbs)
		}
	}
	// Finer scales are more accurate.
	if !(cands[2].MaxAbsErr < cands[0].MaxAbsErr) {
		t.Errorf("scale 10 error %g not below scale 2 error %g", cands[2].MaxAbsErr, cands[0].MaxAbsErr)
	}
	if _, _, err := Run(g, nil, quant.DefaultConfig(), Options{Scales: []int{8}}); err == nil {
		t.Error("no samples: want an error")
	}
}
