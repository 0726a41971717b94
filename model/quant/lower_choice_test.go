package quant

import (
	"fmt"
	"math"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// TestTableChoice (#15): a table larger than --lookup-bits allows is replaced by its
// range-reduced form (the exp split, the symmetric half table) where that is cheaper
// (few elements: the table dominates), and kept where the reduction costs more (many
// elements: the per-element work dominates); either way the output is within the
// error lowering reports, on inputs spanning the bound.
func TestTableChoice(t *testing.T) {
	for _, tc := range []struct {
		op      string
		rows    int64
		reduced bool
	}{
		{"Softmax", 1, true},
		{"Softmax", 2048, false},
		{"Sigmoid", 1, true},
		{"Sigmoid", 2048, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.op, tc.rows), func(t *testing.T) {
			const width = 8
			gp := &onnx.GraphProto{
				Input:  []*onnx.ValueInfoProto{floatInfo("x", tc.rows, width)},
				Output: []*onnx.ValueInfoProto{floatInfo("y", tc.rows, width)},
				Node:   []*onnx.NodeProto{node(tc.op, []string{"x"}, []string{"y"})},
			}
			g := load(t, 13, gp)
			cfg := DefaultConfig()
			cfg.Scale, cfg.ParamScale, cfg.Bits, cfg.LookupBits = 10, 10, 14, 8
			p, err := Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Direct: one lookup (the Softmax gadget's, or the Sigmoid table) of more
			// entries than --lookup-bits allows; reduced: the split or the half table.
			lookups, gadget := 0, false
			for _, l := range p.Layers {
				if l.Kind == KLookup {
					lookups++
				}
				gadget = gadget || l.Kind == KSoftmax
			}
			biggest := largestTable(p)
			reduced := lookups > 1 || (tc.op == "Softmax" && !gadget)
			if reduced != tc.reduced || (!reduced && biggest <= 1<<cfg.LookupBits) {
				t.Fatalf("largest table %d entries, %d lookup layers: want reduced %v", biggest, lookups, tc.reduced)
			}
			tol := errorBound(p, width)
			n := int(tc.rows * width)
			xs := make([]float64, n)
			top := math.Ldexp(1, cfg.Bits-1-cfg.Scale) - 1
			for i := range xs {
				xs[i] = (2*float64(i)/float64(max(n-1, 1)) - 1) * top
				if i%2 == 1 {
					xs[i] = -xs[i] / 3
				}
			}
			in := []*model.Tensor{{Shape: []int{int(tc.rows), width}, Data: xs}}
			qi, err := p.QuantizeInputs(in)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Eval(qi)
			if err != nil {
				t.Fatal(err)
			}
			xq := &model.Tensor{Shape: in[0].Shape, Data: make([]float64, n)}
			for i, v := range qi[0] {
				xq.Data[i] = math.Ldexp(float64(v), -cfg.Scale)
			}
			want, err := g.Eval([]*model.Tensor{xq})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range p.Dequantize(res.Outputs)[0].Data {
				if e := math.Abs(v - want[0].Data[i]); e > tol+1e-12 {
					t.Fatalf("x = %g: error %g beyond the reported bound %g", xq.Data[i], e, tol)
				}
			}
			t.Logf("largest table %d entries, reported error bound %.3g (%.2f steps)", biggest, tol, math.Ldexp(tol, cfg.Scale))
		})
	}
}

func largestTable(p *Program) int {
	n := 0
	for _, tb := range p.Tables {
		n = max(n, len(tb.Values))
	}
	return n
}
