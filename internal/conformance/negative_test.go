package conformance

import "testing"

// comparisonOps are operators built from comparisons, clamps, divisions, lookup
// tables or requantization: for each, a claimed output off by one unit must not satisfy the circuit.
var comparisonOps = map[string]bool{
	"Relu": true, "LeakyRelu": true, "PRelu": true, "ThresholdedRelu": true, "Elu": true, "Selu": true,
	"Abs": true, "Sign": true, "Shrink": true, "Clip": true, "HardSigmoid": true, "Softsign": true,
	"Sigmoid": true, "Tanh": true, "Erf": true, "Exp": true, "Softplus": true, "Sqrt": true,
	"Softmax": true, "LogSoftmax": true, "Max": true, "Min": true, "MaxPool": true, "GlobalMaxPool": true,
	"ReduceMax": true, "ArgMax": true, "Hardmax": true,
	// Quantized operators: requantization (rounding, saturation) and integer products.
	"QuantizeLinear": true, "DequantizeLinear": true, "QLinearMatMul": true, "QLinearConv": true,
	"MatMulInteger": true, "ConvInteger": true, "Floor": true, "Ceil": true,
	"Greater": true, "Less": true, "Equal": true, "Where": true, "Div": true, "InstanceNormalization": true,
}

// TestWrongOutputRejected checks, on the first node test of every comparison or
// lookup operator, that the honest witness satisfies the R1CS and that a claimed output
// one unit off (first and last element) does not.
func TestWrongOutputRejected(t *testing.T) {
	cases, err := Load(nodeTests)
	if err != nil || len(cases) == 0 {
		t.Fatalf("node tests under %s: %d cases, %v", nodeTests, len(cases), err)
	}
	cfg := Config()
	seen := map[string]bool{}
	for _, c := range cases {
		if !comparisonOps[c.Op] || seen[c.Op] {
			continue
		}
		seen[c.Op] = true
		t.Run(c.Name, func(t *testing.T) {
			ds := c.Sets[0]
			g, err := c.Graph(ds)
			if err != nil {
				t.Fatal(err)
			}
			m := lowerSound(t, g, cfg)
			qi, out := m.Int(ds.Inputs...)
			if err := m.Solve(qi, out); err != nil {
				t.Fatalf("honest witness rejected: %v", err)
			}
			for _, idx := range []int{0, len(out[0]) - 1} {
				for _, delta := range []int64{1, -1} {
					if err := m.Solve(qi, offByOne(out, 0, idx, delta)); err == nil {
						t.Fatalf("output[%d]%+d accepted", idx, delta)
					}
				}
			}
		})
	}
	if len(seen) < 20 {
		t.Errorf("only %d comparison/lookup operators found in the node tests", len(seen))
	}
}
