// Package qdq turns a float ONNX model into an int8 QDQ-format ONNX model, the way
// onnxruntime's quantize_static(..., quant_format=QuantFormat.QDQ, activation_type=QUInt8,
// weight_type=QInt8) does: activations get uint8 asymmetric QuantizeLinear/DequantizeLinear
// pairs calibrated by min/max over sample inputs, Conv/Gemm/MatMul weights become int8
// symmetric initializers and Conv/Gemm biases int32 initializers, each behind a
// DequantizeLinear. It generates test fixtures for zkml's int8 support.
package qdq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

// Options controls quantization.
type Options struct {
	// PerChannel gives weights (and biases) one scale per output channel instead of one
	// scale per tensor.
	PerChannel bool
}

// quantizable lists the operators whose float activations get Q/DQ pairs.
var quantizable = map[string]bool{
	"Conv": true, "Gemm": true, "MatMul": true, "Relu": true, "MaxPool": true,
	"AveragePool": true, "GlobalAveragePool": true, "Add": true, "Flatten": true,
	"Reshape": true, "Transpose": true, "Squeeze": true, "Unsqueeze": true, "Concat": true,
}

// actParams is the uint8 quantization of one activation.
type actParams struct {
	scale float32
	zp    uint8
}

// quantizer holds the state of one Quantize call.
type quantizer struct {
	gp     *onnx.GraphProto
	g      *model.Graph
	opt    Options
	inits  map[string]*onnx.TensorProto
	used   map[string]bool      // every node and tensor name, for fresh
	acts   map[string]actParams // activations to quantize
	wcache map[string]*weightQ  // quantized weights by name and axis
	nodes  []*onnx.NodeProto    // the rewritten node list
	added  []*onnx.TensorProto  // new initializers
	rename map[string]string    // activation -> its DQ output
	drop   map[string]bool      // replaced float initializers
}

// weightQ is a quantized weight: the DequantizeLinear output and its scales.
type weightQ struct {
	out    string
	scales []float32 // one per channel, or one
}

// Quantize returns the QDQ model bytes. samples are calibration inputs (one []*model.Tensor
// per sample, in graph-input order); activation ranges are the min/max over all samples.
func Quantize(float []byte, samples [][]*model.Tensor, opt Options) ([]byte, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(float, &m); err != nil {
		return nil, fmt.Errorf("qdq: not an ONNX model: %w", err)
	}
	if m.GetGraph() == nil {
		return nil, errors.New("qdq: model has no graph")
	}
	if len(samples) == 0 {
		return nil, errors.New("qdq: no calibration samples")
	}
	g, err := model.Load(float)
	if err != nil {
		return nil, fmt.Errorf("qdq: %w", err)
	}
	q := &quantizer{
		gp: m.GetGraph(), g: g, opt: opt, inits: map[string]*onnx.TensorProto{},
		used: map[string]bool{}, acts: map[string]actParams{}, wcache: map[string]*weightQ{},
		rename: map[string]string{}, drop: map[string]bool{},
	}
	if err := q.calibrate(samples); err != nil {
		return nil, err
	}
	if err := q.rewrite(); err != nil {
		return nil, err
	}
	setOpset(&m, 13)
	return proto.Marshal(&m)
}

// calibrate records every name in use and picks the activations to quantize with their
// uint8 parameters from the min/max of their values over samples.
func (q *quantizer) calibrate(samples [][]*model.Tensor) error {
	for _, tp := range q.gp.GetInitializer() {
		q.inits[tp.GetName()] = tp
		q.used[tp.GetName()] = true
	}
	for _, vi := range append(append(append([]*onnx.ValueInfoProto{}, q.gp.GetInput()...), q.gp.GetOutput()...), q.gp.GetValueInfo()...) {
		q.used[vi.GetName()] = true
	}
	for _, n := range q.gp.GetNode() {
		q.used[n.GetName()] = true
		for _, s := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
			q.used[s] = true
		}
	}
	ranges := map[string]*[2]float64{} // min, max
	for i, s := range samples {
		vals, err := q.g.EvalAll(s)
		if err != nil {
			return fmt.Errorf("qdq: calibration sample %d: %w", i, err)
		}
		for name, t := range vals {
			if _, isConst := q.g.Consts[name]; isConst || t == nil || len(t.Data) == 0 {
				continue
			}
			r, ok := ranges[name]
			if !ok {
				r = &[2]float64{t.Data[0], t.Data[0]}
				ranges[name] = r
			}
			for _, x := range t.Data {
				r[0], r[1] = math.Min(r[0], x), math.Max(r[1], x)
			}
		}
	}
	floatInput := map[string]bool{}
	for _, in := range q.g.Inputs {
		floatInput[in.Name] = in.DType == 0 || in.DType == int32(onnx.TensorProto_FLOAT)
	}
	for _, n := range q.gp.GetNode() {
		if !quantizable[n.GetOpType()] {
			continue
		}
		for _, s := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
			isFloat, isInput := floatInput[s]
			if r, ok := ranges[s]; ok && q.inits[s] == nil && (isFloat || !isInput) {
				q.acts[s] = uint8Params(r[0], r[1])
			}
		}
	}
	return nil
}

// uint8Params is onnxruntime's asymmetric uint8 quantization of the range [lo, hi].
func uint8Params(lo, hi float64) actParams {
	rmin, rmax := math.Min(0, lo), math.Max(0, hi)
	scale := float32((rmax - rmin) / 255)
	if scale == 0 {
		scale = 1
	}
	zp := math.RoundToEven(-rmin / float64(scale))
	return actParams{scale: scale, zp: uint8(math.Max(0, math.Min(255, zp)))}
}

// rewrite builds the new node list and initializers of q.gp.
func (q *quantizer) rewrite() error {
	outputs := map[string]bool{}
	for _, vi := range q.gp.GetOutput() {
		outputs[vi.GetName()] = true
	}
	for _, vi := range q.gp.GetInput() {
		if _, ok := q.acts[vi.GetName()]; ok {
			q.rename[vi.GetName()] = q.qdqPair(vi.GetName(), vi.GetName(), q.fresh(vi.GetName()+"_DequantizeLinear_Output"))
		}
	}
	for _, n := range q.gp.GetNode() {
		x := "" // input 0 before rewiring
		if len(n.Input) > 0 {
			x = n.Input[0]
		}
		for i, s := range n.Input {
			if r, ok := q.rename[s]; ok {
				n.Input[i] = r
			}
		}
		if err := q.quantizeParams(n, x); err != nil {
			return err
		}
		q.nodes = append(q.nodes, n)
		for i, s := range n.Output {
			if _, ok := q.acts[s]; !ok {
				continue
			}
			if outputs[s] {
				// Keep the graph output's name: the producer writes a new name, the DQ s.
				n.Output[i] = q.fresh(s + "_f")
				q.qdqPair(s, n.Output[i], s)
				continue
			}
			q.rename[s] = q.qdqPair(s, s, q.fresh(s+"_DequantizeLinear_Output"))
		}
	}
	q.gp.Node = q.nodes
	q.dropUnused()
	q.gp.Initializer = append(q.gp.Initializer, q.added...)
	return nil
}

// qdqPair appends QuantizeLinear(src) -> DequantizeLinear -> dst for activation name and
// returns dst.
func (q *quantizer) qdqPair(name, src, dst string) string {
	p := q.acts[name]
	scale := q.addInit(name+"_scale", onnx.TensorProto_FLOAT, nil, f32Bytes([]float32{p.scale}))
	zp := q.addInit(name+"_zero_point", onnx.TensorProto_UINT8, nil, []byte{p.zp})
	mid := q.fresh(name + "_QuantizeLinear_Output")
	q.addNode("QuantizeLinear", name+"_QuantizeLinear", []string{src, scale, zp}, mid, -1)
	q.addNode("DequantizeLinear", name+"_DequantizeLinear", []string{mid, scale, zp}, dst, -1)
	return dst
}

// quantizeParams replaces the float weight and bias initializers of a Conv, Gemm or MatMul
// node by int8 and int32 initializers behind DequantizeLinear nodes; x is the node's
// original input 0, whose activation scale the bias scale depends on.
func (q *quantizer) quantizeParams(n *onnx.NodeProto, x string) error {
	op := n.GetOpType()
	if (op != "Conv" && op != "Gemm" && op != "MatMul") || len(n.Input) < 2 || !q.isFloatInit(n.Input[1]) {
		return nil
	}
	w := q.inits[n.Input[1]]
	axis := -1
	if q.opt.PerChannel {
		axis = channelAxis(n, len(w.GetDims()))
	}
	hasBias := op != "MatMul" && len(n.Input) > 2 && q.isFloatInit(n.Input[2])
	if hasBias && op == "Gemm" && axis >= 0 {
		if b := q.inits[n.Input[2]].GetDims(); len(b) != 1 || b[0] != w.GetDims()[axis] {
			axis = -1 // no one bias value per channel: quantize this node per tensor
		}
	}
	wq, err := q.weight(n.Input[1], axis)
	if err != nil {
		return err
	}
	n.Input[1] = wq.out
	if !hasBias {
		return nil
	}
	xp, ok := q.acts[x]
	if !ok {
		return nil // input 0 is not quantized: leave the bias float
	}
	b, ok := q.g.Consts[n.Input[2]]
	if !ok {
		return fmt.Errorf("qdq: bias %q was not loaded", n.Input[2])
	}
	scales := make([]float32, len(wq.scales))
	for i, s := range wq.scales {
		if scales[i] = xp.scale * s; scales[i] == 0 {
			scales[i] = 1
		}
	}
	if axis >= 0 && len(scales) != len(b.Data) {
		return fmt.Errorf("qdq: %s node %q: bias has %d values for %d channels", op, n.GetName(), len(b.Data), len(scales))
	}
	ints := make([]byte, 4*len(b.Data))
	for i, v := range b.Data {
		r := math.RoundToEven(v / float64(scales[i%len(scales)]))
		r = math.Max(math.MinInt32, math.Min(math.MaxInt32, r))
		binary.LittleEndian.PutUint32(ints[4*i:], uint32(int32(r)))
	}
	name := n.Input[2]
	qb := q.addInit(name+"_quantized", onnx.TensorProto_INT32, q.inits[name].GetDims(), ints)
	if axis >= 0 {
		axis = 0 // the bias is 1-D
	}
	n.Input[2] = q.dequant(name, qb, scales, onnx.TensorProto_INT32, axis)
	q.drop[name] = true
	return nil
}

// channelAxis is the output-channel axis of the weight of n (rank dims), or -1.
func channelAxis(n *onnx.NodeProto, rank int) int {
	switch n.GetOpType() {
	case "Conv":
		return 0
	case "Gemm":
		for _, a := range n.GetAttribute() {
			if a.GetName() == "transB" && a.GetI() != 0 {
				return 0
			}
		}
		return 1
	}
	if rank < 2 {
		return -1
	}
	return rank - 1
}

// isFloatInit reports whether name is a float32 initializer.
func (q *quantizer) isFloatInit(name string) bool {
	tp, ok := q.inits[name]
	_, loaded := q.g.Consts[name]
	return ok && loaded && tp.GetDataType() == int32(onnx.TensorProto_FLOAT)
}

// weight quantizes the initializer name to int8 symmetric, per tensor (axis -1) or per
// channel along axis, and returns its DequantizeLinear output.
func (q *quantizer) weight(name string, axis int) (*weightQ, error) {
	key := fmt.Sprintf("%s\x00%d", name, axis)
	if wq, ok := q.wcache[key]; ok {
		return wq, nil
	}
	t := q.g.Consts[name]
	channels, inner := 1, len(t.Data)
	if axis >= 0 {
		if axis >= len(t.Shape) {
			return nil, fmt.Errorf("qdq: weight %q of shape %v has no axis %d", name, t.Shape, axis)
		}
		channels, inner = t.Shape[axis], 1
		for _, d := range t.Shape[axis+1:] {
			inner *= d
		}
	}
	absMax := make([]float64, channels)
	for i, v := range t.Data {
		c := (i / inner) % channels
		absMax[c] = math.Max(absMax[c], math.Abs(v))
	}
	scales := make([]float32, channels)
	for c, a := range absMax {
		if scales[c] = float32(a / 127); scales[c] == 0 {
			scales[c] = 1
		}
	}
	ints := make([]byte, len(t.Data))
	for i, v := range t.Data {
		r := math.RoundToEven(v / float64(scales[(i/inner)%channels]))
		ints[i] = byte(int8(math.Max(-127, math.Min(127, r))))
	}
	qw := q.addInit(name+"_quantized", onnx.TensorProto_INT8, q.inits[name].GetDims(), ints)
	wq := &weightQ{out: q.dequant(name, qw, scales, onnx.TensorProto_INT8, axis), scales: scales}
	q.wcache[key] = wq
	q.drop[name] = true
	return wq, nil
}

// dequant appends a DequantizeLinear of the integer initializer qname (zero point 0 of type
// zt) with the given scales, per channel along axis unless axis is -1, and returns its output.
func (q *quantizer) dequant(name, qname string, scales []float32, zt onnx.TensorProto_DataType, axis int) string {
	var dims []int64
	if axis >= 0 {
		dims = []int64{int64(len(scales))}
	}
	size := 1
	if zt == onnx.TensorProto_INT32 {
		size = 4
	}
	scale := q.addInit(name+"_scale", onnx.TensorProto_FLOAT, dims, f32Bytes(scales))
	zp := q.addInit(name+"_zero_point", zt, dims, make([]byte, size*len(scales)))
	out := q.fresh(name + "_DequantizeLinear_Output")
	q.addNode("DequantizeLinear", name+"_DequantizeLinear", []string{qname, scale, zp}, out, axis)
	return out
}

// addNode appends a node with a fresh name and one output; axis >= 0 sets its axis attribute.
func (q *quantizer) addNode(op, name string, in []string, out string, axis int) {
	n := &onnx.NodeProto{OpType: op, Name: q.fresh(name), Input: in, Output: []string{out}}
	if axis >= 0 {
		n.Attribute = []*onnx.AttributeProto{{Name: "axis", Type: onnx.AttributeProto_INT, I: int64(axis)}}
	}
	q.nodes = append(q.nodes, n)
}

// addInit adds an initializer with a fresh name derived from name and returns that name.
func (q *quantizer) addInit(name string, dt onnx.TensorProto_DataType, dims []int64, raw []byte) string {
	name = q.fresh(name)
	q.added = append(q.added, &onnx.TensorProto{Name: name, DataType: int32(dt), Dims: append([]int64(nil), dims...), RawData: raw})
	return name
}

// fresh returns base, or base with a numeric suffix, not used by any name so far, and
// marks it used.
func (q *quantizer) fresh(base string) string {
	name := base
	for i := 1; q.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	q.used[name] = true
	return name
}

// dropUnused removes the replaced float initializers that nothing reads any more, also from
// the graph inputs of models that list initializers as inputs.
func (q *quantizer) dropUnused() {
	read := map[string]bool{}
	for _, n := range q.gp.GetNode() {
		for _, s := range n.GetInput() {
			read[s] = true
		}
	}
	for _, vi := range q.gp.GetOutput() {
		read[vi.GetName()] = true
	}
	gone := func(name string) bool { return q.drop[name] && !read[name] }
	var inits []*onnx.TensorProto
	for _, tp := range q.gp.GetInitializer() {
		if !gone(tp.GetName()) {
			inits = append(inits, tp)
		}
	}
	q.gp.Initializer = inits
	var ins []*onnx.ValueInfoProto
	for _, vi := range q.gp.GetInput() {
		if !gone(vi.GetName()) {
			ins = append(ins, vi)
		}
	}
	q.gp.Input = ins
}

// setOpset raises the default-domain opset import to at least least, adding one if missing.
func setOpset(m *onnx.ModelProto, least int64) {
	for _, os := range m.GetOpsetImport() {
		if os.GetDomain() == "" || os.GetDomain() == "ai.onnx" {
			os.Version = max(os.GetVersion(), least)
			return
		}
	}
	m.OpsetImport = append(m.OpsetImport, &onnx.OperatorSetIdProto{Domain: "", Version: least})
}

// f32Bytes encodes v as little-endian float32 raw data.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
