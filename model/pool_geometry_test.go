package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
)

// Issue 17: PyTorch-exported MaxPool1d/MaxPool2d with stride, padding and dilation
// together (and ceil_mode). These tests hold zkml's pooling geometry to ONNX's output-size
// formula, computed here independently in floating point as onnx/reference does, and
// compare the pooled values with a coordinate-walking reference.

// onnxOutSize is onnx.reference's get_output_shape_explicit_padding for one axis.
func onnxOutSize(in, begin, end, k, s, d int, ceil bool) int {
	size := float64(in+begin+end-d*(k-1)-1)/float64(s) + 1
	if !ceil {
		return int(math.Floor(size))
	}
	out := int(math.Ceil(size))
	if (out-1)*s >= in+begin {
		out--
	}
	return out
}

// poolModel writes a one-node pool model with onnxgen, as PyTorch exports it: symbolic
// batch, kernel_shape, strides, pads, dilations and ceil_mode (and storage_order 0 where
// asked); declared is the output shape the model declares (nil: none).
func poolModel(t testing.TB, op string, opset int64, in, kernel, strides, pads, dilations []int64, ceil int64, declared []int64, extra ...*onnx.AttributeProto) []byte {
	t.Helper()
	b := onnxgen.Seeded("pool")
	attrs := append([]*onnx.AttributeProto{onnxgen.Ints("kernel_shape", kernel...), onnxgen.Ints("strides", strides...),
		onnxgen.Ints("pads", pads...), onnxgen.Ints("dilations", dilations...), onnxgen.Int("ceil_mode", ceil)}, extra...)
	y := b.Node(op, []string{"x"}, attrs...)
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", append([]int64{onnxgen.Batch}, in[1:]...)...)},
		[]*onnx.ValueInfoProto{onnxgen.ValueInfo(y, declared...)}, 7, opset)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// naivePool pools x ([N, C, spatial...]) into out (shape from ONNX's formula) by walking
// coordinates: max or mean (count_include_pad 0) over the taps inside the input.
func naivePool(op string, x *Tensor, out []int, k, s, p, d []int) []float64 {
	sp := len(k)
	inSt := strides(x.Shape)
	var res []float64
	for b := range x.Shape[0] {
		for c := range x.Shape[1] {
			each(out[2:], func(oc []int) {
				acc, cnt := math.Inf(-1), 0
				if op == "AveragePool" {
					acc = 0
				}
				each(k, func(kc []int) {
					off := b*inSt[0] + c*inSt[1]
					for a := range sp {
						pos := oc[a]*s[a] - p[a] + kc[a]*d[a]
						if pos < 0 || pos >= x.Shape[a+2] {
							return
						}
						off += pos * inSt[a+2]
					}
					if op == "MaxPool" {
						acc = math.Max(acc, x.Data[off])
					} else {
						acc += x.Data[off]
					}
					cnt++
				})
				if op == "AveragePool" {
					acc /= float64(cnt)
				}
				res = append(res, acc)
			})
		}
	}
	return res
}

// TestPoolOutputSizeONNX sweeps 1-D and 2-D MaxPool and AveragePool over sizes, kernels,
// strides, pads up to the kernel size, dilations and both ceil modes: the output shape
// must equal ONNX's formula, the values the coordinate-walking reference, and a geometry
// ONNX gives no output for must be refused by name, never allocated.
func TestPoolOutputSizeONNX(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	cases := 0
	for _, dims := range []int{1, 2} {
		for _, L := range []int{3, 6, 9} {
			for k := 1; k <= 4; k++ {
				for s := 1; s <= 3; s++ {
					for p := 0; p <= k; p++ {
						for d := 1; d <= 3; d++ {
							for ceil := range 2 {
								for _, op := range []string{"MaxPool", "AveragePool"} {
									in := []int{1, 2, L}
									if dims == 2 {
										in = append(in, L+1)
									}
									ki, si, pi, di := make([]int, dims), make([]int, dims), make([]int, 2*dims), make([]int, dims)
									out := []int{1, 2}
									for a := range dims {
										ki[a], si[a], di[a], pi[a], pi[a+dims] = k, s, d, p, p
										out = append(out, onnxOutSize(in[a+2], p, p, k, s, d, ceil == 1))
									}
									data := poolModel(t, op, 18, i64s(in), i64s(ki), i64s(si), i64s(pi), i64s(di), int64(ceil), nil)
									g, err := Load(data)
									name := fmt.Sprintf("%s %v k%d s%d p%d d%d ceil%d", op, in, k, s, p, d, ceil)
									ok := true
									for _, o := range out[2:] {
										ok = ok && o >= 1
									}
									if !ok {
										if err == nil {
											t.Errorf("%s: loaded with output %v, ONNX gives %v", name, g.Outputs[0].Shape, out)
										}
										continue
									}
									x := NewTensor(in...)
									for i := range x.Data {
										x.Data[i] = r.NormFloat64()
									}
									want := naivePool(op, x, out, ki, si, pi[:dims], di)
									empty := false
									for _, v := range want {
										empty = empty || math.IsInf(v, 0) || math.IsNaN(v)
									}
									if empty {
										// a window entirely in padding: refused (a max over nothing)
										if err == nil || !strings.Contains(err.Error(), "padding") {
											t.Errorf("%s: window in padding: got %v", name, err)
										}
										continue
									}
									if err != nil {
										t.Errorf("%s: %v", name, err)
										continue
									}
									if fmt.Sprint(g.Outputs[0].Shape) != fmt.Sprint(out) {
										t.Errorf("%s: output shape %v, ONNX gives %v", name, g.Outputs[0].Shape, out)
										continue
									}
									got, err := g.Eval([]*Tensor{x})
									if err != nil {
										t.Fatal(name, err)
									}
									for i := range want {
										if math.Abs(got[0].Data[i]-want[i]) > 1e-12 {
											t.Fatalf("%s: element %d = %v, want %v", name, i, got[0].Data[i], want[i])
										}
									}
									cases++
								}
							}
						}
					}
				}
			}
		}
	}
	if cases < 500 {
		t.Fatalf("only %d cases evaluated", cases)
	}
}

func i64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, e := range v {
		out[i] = int64(e)
	}
	return out
}

// TestPoolCeilOverhang: PyTorch's MaxPool1d(3, stride=2, padding=1, dilation=3,
// ceil_mode=True) on length 4 has one window (ONNX and PyTorch: ceil((4+2-7)/2)+1 = 1),
// which zkml refused as "kernel larger than padded input" before issue 17's fix.
func TestPoolCeilOverhang(t *testing.T) {
	g, err := Load(poolModel(t, "MaxPool", 11, []int64{1, 1, 4}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{3}, 1, []int64{1, 1, 1}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Eval([]*Tensor{tensorOf([]int{1, 1, 4}, 5, -1, 7, 2)})
	if err != nil {
		t.Fatal(err)
	}
	// taps at -1 (pad), 2, 5 (past the end): max of x[2] alone.
	if fmt.Sprint(got[0].Shape) != "[1 1 1]" || got[0].Data[0] != 7 {
		t.Fatalf("got %v %v, want [1 1 1] [7]", got[0].Shape, got[0].Data)
	}
}

// TestPoolValidCeil: with auto_pad VALID, ceil_mode does not change the output size in
// ONNX (ceil((in-ek+1)/s) = floor((in-ek)/s)+1); zkml used to add a partial window.
func TestPoolValidCeil(t *testing.T) {
	b := onnxgen.Seeded("valid")
	y := b.Node("MaxPool", []string{"x"}, onnxgen.Ints("kernel_shape", 3), onnxgen.Ints("strides", 2), onnxgen.Int("ceil_mode", 1),
		&onnx.AttributeProto{Name: "auto_pad", Type: onnx.AttributeProto_STRING, S: []byte("VALID")})
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 1, 1, 6)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(y)}, 7, 11)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Outputs[0].Shape) != "[1 1 2]" {
		t.Fatalf("output %v, want [1 1 2]", g.Outputs[0].Shape)
	}
}

// TestPoolDeclaredShapeMismatch: a model whose declared output shape differs from ONNX's
// formula is refused, naming the node and both shapes.
func TestPoolDeclaredShapeMismatch(t *testing.T) {
	_, err := Load(poolModel(t, "MaxPool", 11, []int64{1, 2, 10}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{2}, 1, []int64{1, 2, 6}))
	if err == nil || !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "MaxPool_1") || !strings.Contains(err.Error(), "[1 2 6]") || !strings.Contains(err.Error(), "[1 2 5]") {
		t.Fatalf("err = %v, want a refusal naming MaxPool_1, [1 2 6] and [1 2 5]", err)
	}
	if _, err := Load(poolModel(t, "MaxPool", 11, []int64{1, 2, 10}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{2}, 1, []int64{onnxgen.Batch, 2, 5})); err != nil {
		t.Fatal(err)
	}
}

// TestPoolHostileAttrsBounded: kernel sizes beyond the attribute limit are refused before
// anything is sized from them. Before the fix, kernel_shape 2^48 with dilation 2^16
// overflowed the dilated extent to a negative number, the tap count wrapped to 0, the work
// limit passed, and the load spun through 2^48 kernel positions.
func TestPoolHostileAttrsBounded(t *testing.T) {
	for _, c := range []struct {
		in, k, s, p, d []int64
	}{
		{[]int64{1, 1, 8, 8}, []int64{1 << 48, 1 << 48}, []int64{1 << 16, 1 << 16}, []int64{0, 0, 0, 0}, []int64{1 << 16, 1 << 16}},
		{[]int64{1, 1, 8}, []int64{1 << 62}, []int64{1}, []int64{0, 0}, []int64{4}},
		{[]int64{1, 1, 8}, []int64{1 << 17}, []int64{1}, []int64{1 << 16, 1 << 16}, []int64{1}},
	} {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := Load(poolModel(t, "MaxPool", 12, c.in, c.k, c.s, c.p, c.d, 1, nil))
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("kernel %v: err = %v, want out of range", c.k, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("kernel %v: refused after %v", c.k, el)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("kernel %v: allocated %d bytes", c.k, grew)
		}
	}
}
