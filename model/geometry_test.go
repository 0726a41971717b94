package model

import (
	"math"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// windowCase is one sliding-window geometry with k spatial axes.
type windowCase struct {
	name                       string
	in                         []int // [N, C, D1..Dk]
	m, group                   int   // Conv output channels and groups
	kernel, strides, dilations []int
	pads                       []int // begin..., end...
}

// outSize is the floor-mode output size of spatial axis d.
func (c windowCase) outSize(d int) int {
	k := len(c.kernel)
	ext := (c.kernel[d]-1)*c.dilations[d] + 1
	return (c.in[d+2]+c.pads[d]+c.pads[d+k]-ext)/c.strides[d] + 1
}

// each calls f for every coordinate of shape, row-major.
func each(shape []int, f func(coord []int)) {
	coord := make([]int, len(shape))
	for range numel(shape) {
		f(coord)
		increment(coord, shape)
	}
}

// naive computes Conv (op "Conv"), MaxPool or AveragePool (count_include_pad 0) by
// walking coordinates, independently of Window.
func (c windowCase) naive(op string, x, w []float64) []float64 {
	k := len(c.kernel)
	outSp := make([]int, k)
	for d := range outSp {
		outSp[d] = c.outSize(d)
	}
	inSt := strides(c.in)
	var out []float64
	n, ch := c.in[0], c.in[1]
	channels := ch
	if op == "Conv" {
		channels = c.m
	}
	for b := range n {
		for m := range channels {
			each(outSp, func(oc []int) {
				acc, cnt := 0.0, 0
				if op == "MaxPool" {
					acc = math.Inf(-1)
				}
				cs := []int{m}
				if op == "Conv" {
					cs = cs[:0]
					per := ch / c.group
					for ci := range per {
						cs = append(cs, m/(c.m/c.group)*per+ci)
					}
				}
				for ci, cin := range cs {
					kflat := 0
					each(c.kernel, func(kc []int) {
						defer func() { kflat++ }()
						off := b*inSt[0] + cin*inSt[1]
						for d := range k {
							p := oc[d]*c.strides[d] - c.pads[d] + kc[d]*c.dilations[d]
							if p < 0 || p >= c.in[d+2] {
								return
							}
							off += p * inSt[d+2]
						}
						switch op {
						case "Conv":
							acc += x[off] * w[(m*len(cs)+ci)*numel(c.kernel)+kflat]
						case "MaxPool":
							acc = math.Max(acc, x[off])
						default:
							acc += x[off]
							cnt++
						}
					})
				}
				if op == "AveragePool" {
					acc /= float64(cnt)
				}
				out = append(out, acc)
			})
		}
	}
	return out
}

// TestSlidingWindowND checks Conv, MaxPool and AveragePool with 1, 2 and 3 spatial axes
// (NCW, NCHW, NCDHW) with strides, dilations, asymmetric padding and groups against a
// coordinate-walking reference.
func TestSlidingWindowND(t *testing.T) {
	cases := []windowCase{
		{"1-D", []int{2, 2, 11}, 3, 1, []int{3}, []int{2}, []int{2}, []int{1, 2}},
		{"2-D", []int{1, 4, 7, 8}, 2, 2, []int{2, 3}, []int{2, 1}, []int{1, 2}, []int{1, 0, 0, 2}},
		{"3-D", []int{1, 2, 5, 6, 7}, 4, 2, []int{2, 3, 2}, []int{1, 2, 3}, []int{2, 1, 1}, []int{1, 0, 1, 0, 1, 1}},
		{"3-D plain", []int{2, 3, 4, 4, 4}, 2, 1, []int{2, 2, 2}, []int{1, 1, 1}, []int{1, 1, 1}, []int{0, 0, 0, 0, 0, 0}},
	}
	i64 := func(v []int) []int64 {
		out := make([]int64, len(v))
		for i, e := range v {
			out[i] = int64(e)
		}
		return out
	}
	r := rand.New(rand.NewSource(5))
	for _, c := range cases {
		for _, op := range []string{"Conv", "MaxPool", "AveragePool"} {
			t.Run(op+" "+c.name, func(t *testing.T) {
				attrs := []*onnx.AttributeProto{intsAttr("kernel_shape", i64(c.kernel)...), intsAttr("strides", i64(c.strides)...), intsAttr("pads", i64(c.pads)...)}
				var inits []*onnx.TensorProto
				in := []string{"x"}
				var w []float64
				if op == "Conv" {
					attrs = append(attrs, intsAttr("dilations", i64(c.dilations)...), intAttr("group", int64(c.group)))
					wshape := append([]int64{int64(c.m), int64(c.in[1] / c.group)}, i64(c.kernel)...)
					w = make([]float64, numel(append([]int{c.m, c.in[1] / c.group}, c.kernel...)))
					wf := make([]float32, len(w))
					for i := range w {
						wf[i] = float32(r.NormFloat64())
						w[i] = float64(wf[i])
					}
					inits = append(inits, floatTensorProto("w", wshape, wf...))
					in = append(in, "w")
				} else {
					attrs = append(attrs, intsAttr("dilations", i64(c.dilations)...))
				}
				g, err := Load(modelBytes(t, 19, &onnx.GraphProto{Node: []*onnx.NodeProto{node(op, in, []string{"y"}, attrs...)},
					Initializer: inits, Input: []*onnx.ValueInfoProto{floatInfo("x", i64(c.in)...)}, Output: []*onnx.ValueInfoProto{floatInfo("y")}}))
				if err != nil {
					t.Fatal(err)
				}
				x := NewTensor(c.in...)
				for i := range x.Data {
					x.Data[i] = r.NormFloat64()
				}
				got, err := g.Eval([]*Tensor{x})
				if err != nil {
					t.Fatal(err)
				}
				want := c.naive(op, x.Data, w)
				if len(got[0].Shape) != len(c.in) || len(got[0].Data) != len(want) {
					t.Fatalf("output shape %v (%d values), want rank %d and %d values", got[0].Shape, len(got[0].Data), len(c.in), len(want))
				}
				for i := range want {
					if math.Abs(got[0].Data[i]-want[i]) > 1e-9 {
						t.Fatalf("element %d = %v, want %v", i, got[0].Data[i], want[i])
					}
				}
			})
		}
	}
}
