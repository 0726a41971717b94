package qdq

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

const modelsDir = "../../testdata/models"

type fixture struct {
	name  string
	float []byte
	g     *model.Graph
	input []*model.Tensor
}

// fixtures loads the shared example models this package is tested on, skipping the test
// when none is available.
func fixtures(t *testing.T) []fixture {
	t.Helper()
	var fs []fixture
	for _, name := range []string{"2l_relu_fc", "1l_conv", "3l_relu_conv_fc", "1l_mlp"} {
		dir := filepath.Join(modelsDir, name)
		data, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		g, err := model.Load(data)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		js, err := os.ReadFile(filepath.Join(dir, "input.json"))
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		in, err := model.ParseInput(js, g)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fs = append(fs, fixture{name, data, g, in})
	}
	if len(fs) == 0 {
		t.Skipf("no example models under %s", modelsDir)
	}
	return fs
}

// quantizeBoth quantizes f per tensor and per channel.
func quantizeBoth(t *testing.T, f fixture, samples ...[]*model.Tensor) map[bool][]byte {
	t.Helper()
	if len(samples) == 0 {
		samples = [][]*model.Tensor{f.input}
	}
	out := map[bool][]byte{}
	for _, pc := range []bool{false, true} {
		q, err := Quantize(f.float, samples, Options{PerChannel: pc})
		if err != nil {
			t.Fatalf("%s (per channel %v): %v", f.name, pc, err)
		}
		out[pc] = q
	}
	return out
}

func parse(t *testing.T, data []byte) *onnx.ModelProto {
	t.Helper()
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// graphIndex gives the producer of each value and the initializers of a graph.
type graphIndex struct {
	prod  map[string]*onnx.NodeProto
	init  map[string]*onnx.TensorProto
	users map[string][]*onnx.NodeProto
	konst map[string]bool // values computable without runtime inputs
}

func index(gp *onnx.GraphProto) *graphIndex {
	ix := &graphIndex{map[string]*onnx.NodeProto{}, map[string]*onnx.TensorProto{}, map[string][]*onnx.NodeProto{}, map[string]bool{}}
	for _, tp := range gp.GetInitializer() {
		ix.init[tp.GetName()] = tp
		ix.konst[tp.GetName()] = true
	}
	for _, n := range gp.GetNode() {
		allConst := true
		for _, s := range n.GetInput() {
			ix.users[s] = append(ix.users[s], n)
			allConst = allConst && (s == "" || ix.konst[s])
		}
		for _, s := range n.GetOutput() {
			ix.prod[s] = n
			ix.konst[s] = allConst || n.GetOpType() == "Shape"
		}
	}
	return ix
}

// rawValues decodes the raw_data of a new initializer.
func rawValues(t *testing.T, tp *onnx.TensorProto) []float64 {
	t.Helper()
	raw := tp.GetRawData()
	var out []float64
	switch onnx.TensorProto_DataType(tp.GetDataType()) {
	case onnx.TensorProto_UINT8:
		for _, b := range raw {
			out = append(out, float64(b))
		}
	case onnx.TensorProto_INT8:
		for _, b := range raw {
			out = append(out, float64(int8(b)))
		}
	case onnx.TensorProto_INT32:
		for i := 0; i+4 <= len(raw); i += 4 {
			out = append(out, float64(int32(binary.LittleEndian.Uint32(raw[i:]))))
		}
	case onnx.TensorProto_FLOAT:
		for i := 0; i+4 <= len(raw); i += 4 {
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
		}
	default:
		t.Fatalf("initializer %q: unexpected data type %d", tp.GetName(), tp.GetDataType())
	}
	n := 1
	for _, d := range tp.GetDims() {
		n *= int(d)
	}
	if len(out) != n {
		t.Fatalf("initializer %q: %d values for dims %v", tp.GetName(), len(out), tp.GetDims())
	}
	return out
}

// dqInit checks that value is the output of a DequantizeLinear of an initializer of type
// want with a float scale and a zero point of type want, and returns the integer values,
// the scales, the zero points and the axis attribute (-1 if absent).
func (ix *graphIndex) dqInit(t *testing.T, value string, want onnx.TensorProto_DataType) (q, scale, zp []float64, axis int) {
	t.Helper()
	dq := ix.prod[value]
	if dq == nil || dq.GetOpType() != "DequantizeLinear" || len(dq.GetInput()) != 3 {
		t.Fatalf("%q is not produced by a 3-input DequantizeLinear (producer %v)", value, dq)
	}
	var tps [3]*onnx.TensorProto
	for i, s := range dq.GetInput() {
		if tps[i] = ix.init[s]; tps[i] == nil {
			t.Fatalf("DequantizeLinear %q: input %q is not an initializer", dq.GetName(), s)
		}
	}
	for i, dt := range []onnx.TensorProto_DataType{want, onnx.TensorProto_FLOAT, want} {
		if got := onnx.TensorProto_DataType(tps[i].GetDataType()); got != dt {
			t.Fatalf("DequantizeLinear %q: input %d has type %v, want %v", dq.GetName(), i, got, dt)
		}
	}
	axis = -1
	for _, a := range dq.GetAttribute() {
		if a.GetName() == "axis" {
			axis = int(a.GetI())
		}
	}
	return rawValues(t, tps[0]), rawValues(t, tps[1]), rawValues(t, tps[2]), axis
}

// activation checks that value comes from QuantizeLinear -> DequantizeLinear with a float
// scalar scale and a uint8 scalar zero point, and returns the scale.
func (ix *graphIndex) activation(t *testing.T, value string) float64 {
	t.Helper()
	dq := ix.prod[value]
	if dq == nil || dq.GetOpType() != "DequantizeLinear" {
		t.Fatalf("activation %q is not produced by a DequantizeLinear", value)
	}
	qn := ix.prod[dq.GetInput()[0]]
	if qn == nil || qn.GetOpType() != "QuantizeLinear" {
		t.Fatalf("DequantizeLinear %q does not read a QuantizeLinear", dq.GetName())
	}
	for _, n := range []*onnx.NodeProto{qn, dq} {
		sc, zp := ix.init[n.GetInput()[1]], ix.init[n.GetInput()[2]]
		if sc == nil || zp == nil || len(sc.GetDims()) != 0 || len(zp.GetDims()) != 0 ||
			sc.GetDataType() != int32(onnx.TensorProto_FLOAT) || zp.GetDataType() != int32(onnx.TensorProto_UINT8) {
			t.Fatalf("%s %q: scale/zero point are not float/uint8 scalar initializers", n.GetOpType(), n.GetName())
		}
	}
	if qn.GetInput()[1] != dq.GetInput()[1] || qn.GetInput()[2] != dq.GetInput()[2] {
		t.Fatalf("Q/DQ pair of %q has mismatched parameters", value)
	}
	return rawValues(t, ix.init[dq.GetInput()[1]])[0]
}

// checkQDQ asserts the structure of the QDQ model qm made from fm.
func checkQDQ(t *testing.T, fm, qm *onnx.ModelProto, perChannel bool) {
	t.Helper()
	for _, os := range qm.GetOpsetImport() {
		if os.GetDomain() == "" && os.GetVersion() < 13 {
			t.Errorf("default opset %d < 13", os.GetVersion())
		}
	}
	fg, qg := fm.GetGraph(), qm.GetGraph()
	fix, qix := index(fg), index(qg)
	if len(fg.GetOutput()) != len(qg.GetOutput()) {
		t.Fatalf("graph outputs changed")
	}
	for i, vi := range fg.GetOutput() {
		if qg.GetOutput()[i].GetName() != vi.GetName() {
			t.Errorf("graph output %d renamed from %q to %q", i, vi.GetName(), qg.GetOutput()[i].GetName())
		}
	}
	var kept []*onnx.NodeProto
	for _, n := range qg.GetNode() {
		if op := n.GetOpType(); op != "QuantizeLinear" && op != "DequantizeLinear" {
			kept = append(kept, n)
		}
	}
	if len(kept) != len(fg.GetNode()) {
		t.Fatalf("QDQ model has %d original nodes, float model %d", len(kept), len(fg.GetNode()))
	}
	for i, n := range kept {
		fn := fg.GetNode()[i]
		op := n.GetOpType()
		if op != fn.GetOpType() {
			t.Fatalf("node %d: op %s, want %s", i, op, fn.GetOpType())
		}
		if !quantizable[op] {
			continue
		}
		for j, s := range n.GetInput() {
			if s == "" || qix.konst[s] && (j > 0 || op == "Concat" || op == "Add") {
				continue // a parameter
			}
			if (op == "Conv" || op == "Gemm" || op == "MatMul") && j > 0 {
				continue // checked below
			}
			qix.activation(t, s)
		}
		for _, s := range n.GetOutput() {
			users := qix.users[s]
			if len(users) != 1 || users[0].GetOpType() != "QuantizeLinear" {
				t.Errorf("%s node %q: output %q is not read by exactly one QuantizeLinear", op, n.GetName(), s)
			}
		}
		for j, s := range fn.GetOutput() {
			if isOutput(fg, s) && qix.prod[s].GetOpType() != "DequantizeLinear" {
				t.Errorf("graph output %q (output %d of %s) does not come from a DequantizeLinear", s, j, op)
			}
		}
		if op != "Conv" && op != "Gemm" && op != "MatMul" {
			continue
		}
		w := fix.init[fn.GetInput()[1]]
		if w == nil {
			t.Fatalf("%s node %q: float weight is not an initializer", op, fn.GetName())
		}
		if qix.init[fn.GetInput()[1]] != nil {
			t.Errorf("float weight %q is still an initializer", fn.GetInput()[1])
		}
		wf := decode(t, w)
		wq, ws, wzp, axis := qix.dqInit(t, n.GetInput()[1], onnx.TensorProto_INT8)
		wantAxis := -1
		if perChannel {
			wantAxis = outputAxis(fn)
		}
		if op == "Gemm" && len(fn.GetInput()) > 2 {
			if b := fix.init[fn.GetInput()[2]]; b != nil && (len(b.GetDims()) != 1 || wantAxis >= 0 && b.GetDims()[0] != w.GetDims()[wantAxis]) {
				wantAxis = -1
			}
		}
		if axis != wantAxis {
			t.Fatalf("%s node %q: weight axis %d, want %d", op, n.GetName(), axis, wantAxis)
		}
		inner := len(wf.Data)
		if axis >= 0 {
			if len(ws) != int(w.GetDims()[axis]) {
				t.Fatalf("%s node %q: %d weight scales for %d channels", op, n.GetName(), len(ws), w.GetDims()[axis])
			}
			inner = 1
			for _, d := range w.GetDims()[axis+1:] {
				inner *= int(d)
			}
		} else if len(ws) != 1 {
			t.Fatalf("%s node %q: %d per-tensor weight scales", op, n.GetName(), len(ws))
		}
		for _, z := range wzp {
			if z != 0 {
				t.Fatalf("%s node %q: nonzero weight zero point", op, n.GetName())
			}
		}
		for k, v := range wf.Data {
			s := ws[(k/inner)%len(ws)]
			if math.Abs(wq[k]) > 127 || math.Abs(wq[k]*s-v) > s/2*(1+1e-6) {
				t.Fatalf("%s node %q: weight %d = %v quantized to %v * %v", op, n.GetName(), k, v, wq[k], s)
			}
		}
		if op == "MatMul" || len(fn.GetInput()) < 3 || fix.init[fn.GetInput()[2]] == nil {
			continue
		}
		sx := qix.activation(t, n.GetInput()[0])
		bf := decode(t, fix.init[fn.GetInput()[2]])
		bq, bs, bzp, baxis := qix.dqInit(t, n.GetInput()[2], onnx.TensorProto_INT32)
		if (baxis >= 0) != (axis >= 0) || len(bs) != len(ws) || len(bzp) != len(ws) {
			t.Fatalf("%s node %q: bias axis %d with %d scales, weight axis %d", op, n.GetName(), baxis, len(bs), axis)
		}
		for c := range bs {
			if bs[c] != float64(float32(sx)*float32(ws[c])) || bzp[c] != 0 {
				t.Fatalf("%s node %q: bias scale %v, want %v * %v", op, n.GetName(), bs[c], sx, ws[c])
			}
		}
		for k, v := range bf.Data {
			if s := bs[k%len(bs)]; math.Abs(bq[k]*s-v) > s/2*(1+1e-6) {
				t.Fatalf("%s node %q: bias %d = %v quantized to %v * %v", op, n.GetName(), k, v, bq[k], s)
			}
		}
	}
}

// outputAxis is the output-channel axis of the weight of a Conv, Gemm or 2-D MatMul node.
func outputAxis(n *onnx.NodeProto) int {
	if n.GetOpType() != "Gemm" {
		return map[string]int{"Conv": 0, "MatMul": 1}[n.GetOpType()]
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == "transB" && a.GetI() == 1 {
			return 0
		}
	}
	return 1
}

func isOutput(gp *onnx.GraphProto, name string) bool {
	for _, vi := range gp.GetOutput() {
		if vi.GetName() == name {
			return true
		}
	}
	return false
}

func decode(t *testing.T, tp *onnx.TensorProto) *model.Tensor {
	t.Helper()
	data, err := proto.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	x, err := model.DecodeTensorProto(data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestStructure(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			for pc, q := range quantizeBoth(t, f) {
				checkQDQ(t, parse(t, f.float), parse(t, q), pc)
			}
		})
	}
}

// TestCalibrationRange checks that the graph input's scale covers all samples and 0.
func TestCalibrationRange(t *testing.T) {
	f := fixtures(t)[0]
	in := f.input[0]
	lo, hi := in.Clone(), in.Clone()
	for i := range lo.Data {
		lo.Data[i], hi.Data[i] = 0.5, 3
	}
	lo.Data[0], hi.Data[len(hi.Data)-1] = -2, 5.5
	rest := f.input[1:]
	out, err := Quantize(f.float, [][]*model.Tensor{append([]*model.Tensor{lo}, rest...), append([]*model.Tensor{hi}, rest...)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	qm := parse(t, out)
	ix := index(qm.GetGraph())
	x := f.g.Inputs[0].Name
	qn := ix.users[x][0]
	if qn.GetOpType() != "QuantizeLinear" {
		t.Fatalf("graph input %q is read by %s, want QuantizeLinear", x, qn.GetOpType())
	}
	scale := rawValues(t, ix.init[qn.GetInput()[1]])[0]
	zp := rawValues(t, ix.init[qn.GetInput()[2]])[0]
	if want := float64(float32(7.5 / 255)); scale != want || zp != math.RoundToEven(2/want) {
		t.Errorf("input scale %v zero point %v, want %v and %v", scale, zp, want, math.RoundToEven(2/want))
	}
}

// TestEval compares the QDQ model's outputs with the float model's on the sample input and
// its negation (both used for calibration).
func TestEval(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			neg := make([]*model.Tensor, len(f.input))
			for i, x := range f.input {
				neg[i] = x.Clone()
				for k := range neg[i].Data {
					neg[i].Data[k] = -neg[i].Data[k]
				}
			}
			for pc, q := range quantizeBoth(t, f, f.input, neg) {
				for _, in := range [][]*model.Tensor{f.input, neg} {
					want, err := f.g.Eval(in)
					if err != nil {
						t.Fatal(err)
					}
					checkEval(t, want, q, in, pc)
				}
			}
		})
	}
}

// checkEval evaluates the QDQ model q on input and compares its outputs with want, the float
// model's: the largest difference must stay below 5% of the largest float magnitude.
func checkEval(t *testing.T, want []*model.Tensor, q []byte, input []*model.Tensor, perChannel bool) {
	t.Helper()
	g, err := model.Load(q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Eval(input)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		var maxAbs, maxDiff float64
		for k, v := range w.Data {
			maxAbs = math.Max(maxAbs, math.Abs(v))
			maxDiff = math.Max(maxDiff, math.Abs(v-got[i].Data[k]))
		}
		if maxDiff > 0.05*maxAbs {
			t.Errorf("per channel %v: output %d differs by %v (max |float| %v)", perChannel, i, maxDiff, maxAbs)
		}
		t.Logf("per channel %v: output %d max diff %.4g of max |float| %.4g", perChannel, i, maxDiff, maxAbs)
	}
}

func TestRejectsGarbage(t *testing.T) {
	if _, err := Quantize([]byte("this is not an onnx model \xff\xff\xff"), [][]*model.Tensor{{}}, Options{}); err == nil {
		t.Error("Quantize accepted garbage bytes")
	}
	if _, err := Quantize(nil, nil, Options{}); err == nil {
		t.Error("Quantize accepted an empty model")
	}
}

func floatValue(name string, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	tt := &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: tt}}}
}

func floatInit(name string, dims []int64, data ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_FLOAT), Dims: dims, FloatData: data}
}

// TestNonQuantizable builds X -> MatMul -> Relu -> r (graph output, also read by) ->
// Softmax -> Gemm(transB=0) -> y at opset 11 and checks the rewiring around the float
// Softmax and the intermediate graph output.
func TestNonQuantizable(t *testing.T) {
	gp := &onnx.GraphProto{
		Name:   "g",
		Input:  []*onnx.ValueInfoProto{floatValue("X", 2, 4)},
		Output: []*onnx.ValueInfoProto{floatValue("r", 2, 3), floatValue("y", 2, 2)},
		Initializer: []*onnx.TensorProto{
			floatInit("W1", []int64{4, 3}, 0.5, -1, 0.25, 2, 0.1, -0.3, -0.7, 0.9, 1.1, 0, 0.4, -0.2),
			floatInit("W2", []int64{3, 2}, 1, -2, 0.5, 3, -1.5, 0.25),
			floatInit("B2", []int64{2}, 0.1, -0.2),
		},
		Node: []*onnx.NodeProto{
			{OpType: "MatMul", Name: "mm", Input: []string{"X", "W1"}, Output: []string{"m"}},
			{OpType: "Relu", Name: "relu", Input: []string{"m"}, Output: []string{"r"}},
			{OpType: "Softmax", Name: "sm", Input: []string{"r"}, Output: []string{"s"}},
			{OpType: "Gemm", Name: "gemm", Input: []string{"s", "W2", "B2"}, Output: []string{"y"}},
		},
	}
	fm := &onnx.ModelProto{IrVersion: 7, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 11}}, Graph: gp}
	float, err := proto.Marshal(fm)
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(float)
	if err != nil {
		t.Fatal(err)
	}
	x := &model.Tensor{Shape: []int{2, 4}, Data: []float64{1, -2, 0.5, 3, -1, 0.25, 2, -0.5}}
	f := fixture{"synthetic", float, g, []*model.Tensor{x}}
	for pc, q := range quantizeBoth(t, f) {
		qm := parse(t, q)
		checkQDQ(t, fm, qm, pc)
		ix := index(qm.GetGraph())
		if ix.prod["r"].GetOpType() != "DequantizeLinear" || ix.prod["s"].GetOpType() != "Softmax" {
			t.Fatalf("r is produced by %s, s by %s", ix.prod["r"].GetOpType(), ix.prod["s"].GetOpType())
		}
		if sm := ix.prod["s"]; sm.GetInput()[0] != "r" {
			t.Errorf("Softmax reads %q, want the DequantizeLinear output r", sm.GetInput()[0])
		}
		if ix.prod["y"].GetOpType() != "DequantizeLinear" {
			t.Errorf("graph output y is produced by %s", ix.prod["y"].GetOpType())
		}
		if v := qm.GetOpsetImport()[0].GetVersion(); v != 13 {
			t.Errorf("opset %d, want 13", v)
		}
	}
	want, err := g.Eval(f.input)
	if err != nil {
		t.Fatal(err)
	}
	for pc, q := range quantizeBoth(t, f) {
		checkEval(t, want, q, f.input, pc)
	}
}
