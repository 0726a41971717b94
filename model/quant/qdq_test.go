package quant

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

func scalarInit(name string, dt onnx.TensorProto_DataType, v float64) *onnx.TensorProto {
	t := &onnx.TensorProto{Name: name, DataType: int32(dt)}
	if dt == onnx.TensorProto_FLOAT {
		t.FloatData = []float32{float32(v)}
	} else {
		t.Int32Data = []int32{int32(v)}
	}
	return t
}

// qdqPair quantizes src with (scale, zero) and dequantizes it again into dst.
func qdqPair(g *onnx.GraphProto, src, dst string, scale float64, zero int64) {
	g.Initializer = append(g.Initializer, scalarInit(dst+".s", onnx.TensorProto_FLOAT, scale), scalarInit(dst+".z", onnx.TensorProto_UINT8, float64(zero)))
	g.Node = append(g.Node,
		&onnx.NodeProto{OpType: "QuantizeLinear", Name: dst + ".q", Input: []string{src, dst + ".s", dst + ".z"}, Output: []string{dst + ".int"}},
		&onnx.NodeProto{OpType: "DequantizeLinear", Name: dst + ".dq", Input: []string{dst + ".int", dst + ".s", dst + ".z"}, Output: []string{dst}})
}

// residualQDQ is a QDQ residual block with a float island (scales are arbitrary, as
// calibration makes them; with round decimal scales the float32 reference meets exact
// rounding ties that it breaks by float rounding, see TestQDQResidual):
// y = QDQ(relu(QDQ(QDQ(x·W) + x))) and s = sigmoid(QDQ(QDQ(x·W) + x)).
func residualQDQ(t *testing.T, r *rand.Rand) *model.Graph {
	t.Helper()
	g := &onnx.GraphProto{Input: []*onnx.ValueInfoProto{floatInfo("x", 1, 8)}, Output: []*onnx.ValueInfoProto{floatInfo("y"), floatInfo("s")}}
	qdqPair(g, "x", "xd", 0.0213, 128)
	w := &onnx.TensorProto{Name: "w", Dims: []int64{8, 8}, DataType: int32(onnx.TensorProto_INT8)}
	for range 64 {
		w.Int32Data = append(w.Int32Data, int32(r.Intn(255)-127))
	}
	g.Initializer = append(g.Initializer, w, scalarInit("w.s", onnx.TensorProto_FLOAT, 0.0107), scalarInit("w.z", onnx.TensorProto_INT8, 0))
	g.Node = append(g.Node, &onnx.NodeProto{OpType: "DequantizeLinear", Name: "w.dq", Input: []string{"w", "w.s", "w.z"}, Output: []string{"wd"}},
		node("MatMul", []string{"xd", "wd"}, []string{"m"}))
	qdqPair(g, "m", "md", 0.0517, 120)
	g.Node = append(g.Node, &onnx.NodeProto{OpType: "Add", Name: "add", Input: []string{"md", "xd"}, Output: []string{"a"}})
	qdqPair(g, "a", "ad", 0.0611, 128)
	g.Node = append(g.Node, &onnx.NodeProto{OpType: "Relu", Name: "relu", Input: []string{"ad"}, Output: []string{"r"}})
	qdqPair(g, "r", "y", 0.0397, 0)
	g.Node = append(g.Node, &onnx.NodeProto{OpType: "Sigmoid", Name: "sig", Input: []string{"ad"}, Output: []string{"s"}})
	return load(t, 13, g)
}

// TestQDQResidual proves a QDQ residual block as integers: MatMul and Add become
// QLinear requantizations, Relu acts on the integers, only the Sigmoid island is
// converted to fixed point, and nothing is rescaled from fixed point. The float
// reference computes in float32 and the program in exact integers (with float32
// multipliers), so they may differ by one step where a value falls within float32
// rounding of a tie; they must agree everywhere else.
func TestQDQResidual(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	g := residualQDQ(t, r)
	cfg := testConfig()
	p, err := Lower(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, l := range p.Layers {
		ops[l.Op]++
		if l.Kind == KRescale {
			t.Errorf("layer %s rescales fixed point", l.Name)
		}
	}
	for _, op := range []string{"QLinearMatMul", "QLinearAdd", "DequantizeLinear", "Relu"} {
		if ops[op] == 0 {
			t.Errorf("no %s layer in %v", op, ops)
		}
	}
	if p.InputQuant == nil || p.OutputQuant == nil || p.OutputQuant[0] == nil || p.OutputQuant[1] != nil {
		t.Fatalf("input/output quantization: %+v %+v", p.InputQuant, p.OutputQuant)
	}
	differ, total := 0, 0
	for i := range 60 {
		// Every third input saturates the input quantization, driving every layer to
		// the ends of its static range.
		in := randomInputs(r, g, 1+float64(i%3/2)*20)
		want, got, err := evalBoth(t, g, p, in)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want[0].Data {
			total++
			if d := math.Abs(got[0].Data[i] - w); d > 0.0397*1.001 {
				t.Fatalf("y[%d] = %v, float reference %v: more than one quantization step apart", i, got[0].Data[i], w)
			} else if d > 0 {
				differ++
			}
		}
		for i, w := range want[1].Data {
			if d := math.Abs(got[1].Data[i] - w); d > 0.01 {
				t.Fatalf("s[%d] = %v, float reference %v", i, got[1].Data[i], w)
			}
		}
	}
	if differ*50 > total {
		t.Errorf("%d of %d outputs differ from the float reference by a step; ties should be rare", differ, total)
	}
}

func TestQuantizedErrors(t *testing.T) {
	// An integer tensor read by a float operator without a DequantizeLinear.
	g := &onnx.GraphProto{Input: []*onnx.ValueInfoProto{floatInfo("x", 1, 4)}, Output: []*onnx.ValueInfoProto{floatInfo("y")},
		Initializer: []*onnx.TensorProto{scalarInit("s", onnx.TensorProto_FLOAT, 0.1), scalarInit("z", onnx.TensorProto_UINT8, 3)},
		Node: []*onnx.NodeProto{
			{OpType: "QuantizeLinear", Name: "q", Input: []string{"x", "s", "z"}, Output: []string{"xq"}},
			{OpType: "Sigmoid", Name: "sig", Input: []string{"xq"}, Output: []string{"y"}},
		}}
	_, err := Lower(load(t, 13, g), DefaultConfig())
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `Sigmoid node "sig"`) || !strings.Contains(err.Error(), "integer tensor") {
		t.Fatalf("float op on integers: %v", err)
	}

	// Integer inputs must be integers of their type.
	in := floatInfo("x", 1, 3)
	in.GetType().GetTensorType().ElemType = int32(onnx.TensorProto_UINT8)
	g = &onnx.GraphProto{Input: []*onnx.ValueInfoProto{in}, Output: []*onnx.ValueInfoProto{floatInfo("y")},
		Initializer: []*onnx.TensorProto{scalarInit("s", onnx.TensorProto_FLOAT, 0.1), scalarInit("z", onnx.TensorProto_UINT8, 3)},
		Node:        []*onnx.NodeProto{{OpType: "DequantizeLinear", Name: "dq", Input: []string{"x", "s", "z"}, Output: []string{"y"}}}}
	p, err := Lower(load(t, 13, g), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]float64{{1, 2, 256}, {1, -1, 2}, {1, 2.5, 3}} {
		if _, err := p.QuantizeInputs([]*model.Tensor{{Shape: []int{1, 3}, Data: bad}}); !errors.Is(err, model.ErrBadInput) {
			t.Errorf("uint8 input %v accepted: %v", bad, err)
		}
	}
	qi, err := p.QuantizeInputs([]*model.Tensor{{Shape: []int{1, 3}, Data: []float64{0, 3, 255}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	out := p.Dequantize(res.Outputs)[0].Data
	if want := []float64{float64(float32(-0.3)), 0, float64(float32(float32(252) * float32(0.1)))}; out[0] != want[0] || out[1] != want[1] || out[2] != want[2] {
		t.Errorf("dequantized %v, want %v", out, want)
	}

	// Blocked quantization is rejected naming the node.
	g.Node[0].Attribute = []*onnx.AttributeProto{intAttr("block_size", 2)}
	b, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 21}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := model.Load(b); !errors.Is(err, model.ErrUnsupportedOp) || !strings.Contains(err.Error(), `DequantizeLinear node "dq"`) {
		t.Errorf("blocked DequantizeLinear: %v", err)
	}
}

// FuzzLowerQDQ builds QDQ graphs (MatMul, optional Relu, optional residual Add, optional
// float Sigmoid) with fuzzed sizes, scales, zero points and integer types: loading and
// lowering must never panic and must fail only with the model errors, and a lowered
// program's values must stay within their static bounds (evalBoth checks them).
func FuzzLowerQDQ(f *testing.F) {
	f.Add([]byte{3, 2, 10, 128, 0, 5, 1, 7, 120, 1, 1, 1, 9, 3})
	f.Add([]byte{0, 0, 255, 0, 200, 255, 0, 0, 0, 0, 0, 2, 250, 255, 255, 1})
	for _, c := range []byte{7, 9, 12, 30} {
		f.Add(bytes.Repeat([]byte{c, c + 1, c + 3}, 40))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src := b
		next := func() int {
			if len(src) == 0 {
				return 0
			}
			v := int(src[0])
			src = src[1:]
			return v
		}
		scale := func() float64 { return math.Ldexp(float64(next()), -(next() % 24)) } // may be 0
		dt := func() onnx.TensorProto_DataType {
			if next()%2 == 0 {
				return onnx.TensorProto_UINT8
			}
			return onnx.TensorProto_INT8
		}
		n, m := 1+next()%4, 1+next()%4
		g := &onnx.GraphProto{Input: []*onnx.ValueInfoProto{floatInfo("x", 1, int64(n))}, Output: []*onnx.ValueInfoProto{floatInfo("y")}}
		pair := func(src, dst string) {
			t, zero := dt(), next()
			if t == onnx.TensorProto_INT8 {
				zero -= 128
			}
			g.Initializer = append(g.Initializer, scalarInit(dst+".s", onnx.TensorProto_FLOAT, scale()), scalarInit(dst+".z", t, float64(zero)))
			g.Node = append(g.Node,
				&onnx.NodeProto{OpType: "QuantizeLinear", Name: dst + ".q", Input: []string{src, dst + ".s", dst + ".z"}, Output: []string{dst + ".int"}},
				&onnx.NodeProto{OpType: "DequantizeLinear", Name: dst + ".dq", Input: []string{dst + ".int", dst + ".s", dst + ".z"}, Output: []string{dst}})
		}
		pair("x", "xd")
		w := &onnx.TensorProto{Name: "w", Dims: []int64{int64(n), int64(m)}, DataType: int32(onnx.TensorProto_INT8)}
		for range n * m {
			w.Int32Data = append(w.Int32Data, int32(next()-128))
		}
		ws := &onnx.TensorProto{Name: "w.s", DataType: int32(onnx.TensorProto_FLOAT)}
		axis := []*onnx.AttributeProto{}
		if next()%2 == 0 {
			ws.Dims = []int64{int64(m)}
			for range m {
				ws.FloatData = append(ws.FloatData, float32(scale()))
			}
			axis = append(axis, intAttr("axis", 1))
		} else {
			ws.FloatData = []float32{float32(scale())}
		}
		g.Initializer = append(g.Initializer, w, ws)
		g.Node = append(g.Node, &onnx.NodeProto{OpType: "DequantizeLinear", Name: "w.dq", Input: []string{"w", "w.s"}, Output: []string{"wd"}, Attribute: axis},
			node("MatMul", []string{"xd", "wd"}, []string{"m"}))
		last := "m"
		if next()%2 == 0 {
			g.Node = append(g.Node, &onnx.NodeProto{OpType: "Relu", Name: "relu", Input: []string{last}, Output: []string{"r"}})
			last = "r"
		}
		pair(last, "md")
		last = "md"
		if n == m && next()%2 == 0 {
			g.Node = append(g.Node, &onnx.NodeProto{OpType: "Add", Name: "add", Input: []string{"md", "xd"}, Output: []string{"a"}})
			pair("a", "ad")
			last = "ad"
		}
		if next()%3 == 0 {
			g.Node = append(g.Node, &onnx.NodeProto{OpType: "Sigmoid", Name: "sig", Input: []string{last}, Output: []string{"y"}})
		} else {
			g.Node = append(g.Node, &onnx.NodeProto{OpType: "Identity", Name: "id", Input: []string{last}, Output: []string{"y"}})
		}
		data, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}})
		if err != nil {
			t.Fatal(err)
		}
		gr, err := model.Load(data)
		if err != nil {
			if !errors.Is(err, model.ErrInvalidModel) && !errors.Is(err, model.ErrUnsupportedOp) {
				t.Fatalf("load: %v", err)
			}
			return
		}
		p, err := Lower(gr, DefaultConfig())
		if testing.Verbose() {
			t.Logf("lower: %v", err)
		}
		if err != nil {
			if !errors.Is(err, model.ErrInvalidModel) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("lower: %v", err)
			}
			return
		}
		in := model.NewTensor(1, n)
		for i := range in.Data {
			in.Data[i] = float64(next()-128) / 16
		}
		if _, _, err := evalBoth(t, gr, p, []*model.Tensor{in}); err != nil && !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("eval: %v", err)
		}
	})
}

// TestDivRuntime checks Div by a runtime value: close to the float reference for
// positive divisors (negative dividends included), and a clear out-of-range error
// naming the layer for a divisor that is not positive.
func TestDivRuntime(t *testing.T) {
	g := load(t, 13, &onnx.GraphProto{Input: []*onnx.ValueInfoProto{floatInfo("x", 2, 3), floatInfo("y", 3)}, Output: []*onnx.ValueInfoProto{floatInfo("z")},
		Node: []*onnx.NodeProto{node("Div", []string{"x", "y"}, []string{"z"})}})
	x := &model.Tensor{Shape: []int{2, 3}, Data: []float64{1.5, -2.25, 0, -7, 3.3, 0.01}}
	checkClose(t, g, testConfig(), []*model.Tensor{x, {Shape: []int{3}, Data: []float64{0.5, 1.75, 3}}}, 2, 1)
	p, err := Lower(g, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range [][]float64{{0.5, 0, 1}, {1, -2, 1}} {
		qi, err := p.QuantizeInputs([]*model.Tensor{x, {Shape: []int{3}, Data: y}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Eval(qi)
		wantOutOfRange(t, err, "Div_0")
	}
}
