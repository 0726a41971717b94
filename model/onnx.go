package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// MaxModelBytes is the upper bound on the size of an ONNX file Load accepts. A
// variable so that a benchmark of a full-size network with random weights (ResNet-50:
// 102 MB) may lift it, as MaxNodeWork.
var MaxModelBytes = 64 << 20

// MaxTensorElements bounds any single tensor (initializer or activation).
const MaxTensorElements = 1 << 24

// ErrInvalidModel is wrapped by every error caused by a malformed or unsupported model.
var ErrInvalidModel = errors.New("invalid model")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidModel, fmt.Sprintf(format, args...))
}

// AttrKind is the type of an ONNX attribute.
type AttrKind int

// Attribute kinds we understand.
const (
	AttrFloat AttrKind = iota + 1
	AttrInt
	AttrString
	AttrTensor
	AttrFloats
	AttrInts
	AttrStrings
)

// Attr is one decoded ONNX node attribute.
type Attr struct {
	Kind   AttrKind
	Float  float64
	Int    int64
	String string
	Tensor *Tensor
	Floats []float64
	Ints   []int64
}

// Attrs holds a node's attributes by name.
type Attrs map[string]Attr

// Int returns the integer attribute name, or def when absent.
func (a Attrs) Int(name string, def int64) int64 {
	if v, ok := a[name]; ok && v.Kind == AttrInt {
		return v.Int
	}
	return def
}

// Float returns the float attribute name, or def when absent.
func (a Attrs) Float(name string, def float64) float64 {
	if v, ok := a[name]; ok && v.Kind == AttrFloat {
		return v.Float
	}
	return def
}

// Ints returns the integer-list attribute name, or def when absent.
func (a Attrs) Ints(name string, def []int64) []int64 {
	if v, ok := a[name]; ok && v.Kind == AttrInts {
		return v.Ints
	}
	return def
}

// String returns the string attribute name, or def when absent.
func (a Attrs) String(name string, def string) string {
	if v, ok := a[name]; ok && v.Kind == AttrString {
		return v.String
	}
	return def
}

// Node is one operator application in the graph.
type Node struct {
	Name    string
	Op      string
	Inputs  []string // "" marks an omitted optional input
	Outputs []string
	Attrs   Attrs
}

// Label names the node for error messages: `Op "name"`.
func (n *Node) Label() string {
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		name = n.Outputs[0]
	}
	return fmt.Sprintf("%s node %q", n.Op, name)
}

// Value is a named graph input or output with its static shape.
type Value struct {
	Name  string
	Shape []int
	// DType is the declared ONNX element type of a graph input (0: unknown, float).
	DType int32
}

// Graph is a loaded ONNX model: runtime inputs, outputs, topologically ordered nodes,
// constants (initializers, Constant nodes and folded subgraphs) and static shapes of
// every value.
type Graph struct {
	Opset   int64
	Inputs  []Value
	Outputs []Value
	Nodes   []*Node
	Consts  map[string]*Tensor
	Shapes  map[string][]int
	// Dequantized records the constants that folding computed with DequantizeLinear
	// (an int8 QDQ model's weights and biases), so that the integer lowering can use the
	// integers the model defines instead of re-quantizing the float result.
	Dequantized map[string]*Dequant
}

// Dequant is a folded DequantizeLinear: its node and constant integer operands.
type Dequant struct {
	Node             *Node
	Int, Scale, Zero *Tensor
}

// Load parses an ONNX model, resolves symbolic dimensions to 1, folds constants and
// infers static shapes. Errors wrap ErrInvalidModel, or ErrUnsupportedOp for a well-formed
// model using an operator (or an operator feature) zkml does not support.
func Load(data []byte) (*Graph, error) {
	return LoadWithConstants(data, nil)
}

// LoadWithConstants is Load with some graph inputs bound to fixed values: each key of consts
// names a runtime input of the model, which becomes a constant before folding and is removed
// from Graph.Inputs. Use it for models that take operator parameters (a Reshape's shape,
// Gather indices, Pad pads, Slice bounds) as graph inputs. A bound tensor must match the
// input's declared shape, where symbolic dimensions match any size. Errors about consts
// wrap ErrBadInput.
func LoadWithConstants(data []byte, consts map[string]*Tensor) (*Graph, error) {
	if len(data) == 0 {
		return nil, invalidf("empty ONNX file")
	}
	if len(data) > MaxModelBytes {
		return nil, invalidf("ONNX file is %d bytes, over the %d byte limit", len(data), MaxModelBytes)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, invalidf("not an ONNX protobuf: %v", err)
	}
	gp := m.GetGraph()
	if gp == nil || (len(gp.GetNode()) == 0 && len(gp.GetOutput()) == 0) {
		return nil, invalidf("ONNX file has no graph")
	}
	g := &Graph{Consts: map[string]*Tensor{}, Shapes: map[string][]int{}, Dequantized: map[string]*Dequant{}}
	for _, os := range m.GetOpsetImport() {
		if os.GetDomain() == "" || os.GetDomain() == "ai.onnx" {
			g.Opset = os.GetVersion()
		}
	}
	if g.Opset == 0 {
		return nil, invalidf("model imports no default-domain opset")
	}
	for _, tp := range gp.GetInitializer() {
		t, err := decodeTensor(tp)
		if err != nil {
			return nil, invalidf("initializer %q: %v", tp.GetName(), err)
		}
		g.Consts[tp.GetName()] = t
	}
	bound := 0
	for _, vi := range gp.GetInput() {
		if _, isConst := g.Consts[vi.GetName()]; isConst {
			continue
		}
		if t, ok := consts[vi.GetName()]; ok {
			if err := checkBound(vi, t); err != nil {
				return nil, err
			}
			g.Consts[vi.GetName()] = t.Clone()
			bound++
			continue
		}
		if vi.GetName() == "" {
			return nil, invalidf("graph input without a name")
		}
		if _, dup := g.Shapes[vi.GetName()]; dup {
			return nil, invalidf("graph input %q is declared twice", vi.GetName())
		}
		shape, err := valueShape(vi)
		if err != nil {
			return nil, invalidf("input %q: %v", vi.GetName(), err)
		}
		g.Inputs = append(g.Inputs, Value{Name: vi.GetName(), Shape: shape, DType: vi.GetType().GetTensorType().GetElemType()})
		g.Shapes[vi.GetName()] = shape
	}
	if bound != len(consts) {
		for _, name := range sortedKeys(consts) {
			if !isRuntimeInput(gp, name) {
				return nil, fmt.Errorf("%w: cannot bind %q: it is not a runtime input of the model", ErrBadInput, name)
			}
		}
	}
	known := map[string]bool{"": true}
	for name := range g.Consts {
		known[name] = true
	}
	for _, in := range g.Inputs {
		known[in.Name] = true
	}
	for i, np := range gp.GetNode() {
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("%w: %s node %q: operator domain %q is not supported", ErrUnsupportedOp, np.GetOpType(), np.GetName(), d)
		}
		n := &Node{Name: np.GetName(), Op: np.GetOpType(), Inputs: np.GetInput(), Outputs: np.GetOutput(), Attrs: Attrs{}}
		if n.Name == "" {
			n.Name = fmt.Sprintf("%s_%d", n.Op, i)
		}
		if _, ok := floatOps(n.Op); !ok {
			return nil, fmt.Errorf("%w: %s is not supported", ErrUnsupportedOp, n.Label())
		}
		if len(n.Outputs) == 0 || n.Outputs[0] == "" {
			return nil, invalidf("%s: has no output", n.Label())
		}
		for _, ap := range np.GetAttribute() {
			a, err := decodeAttr(ap)
			if err != nil {
				return nil, invalidf("%s: attribute %q: %v", n.Label(), ap.GetName(), err)
			}
			n.Attrs[ap.GetName()] = a
		}
		for _, in := range n.Inputs {
			if !known[in] {
				return nil, invalidf("%s: input %q is not produced by an earlier node (graph not topologically sorted or dangling)", n.Label(), in)
			}
		}
		for _, out := range n.Outputs {
			if out != "" && known[out] {
				return nil, invalidf("%s: output %q is already defined (graph is not in SSA form)", n.Label(), out)
			}
			known[out] = true
		}
		g.Nodes = append(g.Nodes, n)
	}
	for _, vi := range gp.GetOutput() {
		if vi.GetName() == "" || !known[vi.GetName()] {
			return nil, invalidf("graph output %q is never produced", vi.GetName())
		}
		g.Outputs = append(g.Outputs, Value{Name: vi.GetName()})
	}
	if len(g.Outputs) == 0 {
		return nil, invalidf("graph has no outputs")
	}
	if err := g.fold(); err != nil {
		return nil, err
	}
	if err := g.checkDeclaredWindows(gp); err != nil {
		return nil, err
	}
	return g, nil
}

// isRuntimeInput reports whether name is a graph input without an initializer.
func isRuntimeInput(gp *onnx.GraphProto, name string) bool {
	for _, tp := range gp.GetInitializer() {
		if tp.GetName() == name {
			return false
		}
	}
	for _, vi := range gp.GetInput() {
		if vi.GetName() == name {
			return true
		}
	}
	return false
}

// checkBound checks a tensor bound to graph input vi against its declared shape.
func checkBound(vi *onnx.ValueInfoProto, t *Tensor) error {
	fail := func(why string) error {
		return fmt.Errorf("%w: cannot bind input %q: %s", ErrBadInput, vi.GetName(), why)
	}
	if t == nil || len(t.Data) != numel(t.Shape) {
		return fail("tensor is nil or its data does not match its shape")
	}
	if t.Numel() > MaxTensorElements {
		return fail("tensor is too large")
	}
	if err := t.CheckFinite(); err != nil {
		return fail(err.Error())
	}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return fail("only tensor inputs can be bound")
	}
	if tt.GetShape() == nil {
		return nil // rank unknown: anything goes
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != len(t.Shape) {
		return fail(fmt.Sprintf("shape %v has rank %d, the model declares rank %d", t.Shape, len(t.Shape), len(dims)))
	}
	for i, d := range dims {
		if d.GetDimParam() == "" && d.GetDimValue() > 0 && d.GetDimValue() != int64(t.Shape[i]) {
			return fail(fmt.Sprintf("shape %v differs from the declared dimension %d of axis %d", t.Shape, d.GetDimValue(), i))
		}
	}
	return nil
}

func valueShape(vi *onnx.ValueInfoProto) ([]int, error) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return nil, errors.New("only tensor inputs are supported")
	}
	dims := tt.GetShape().GetDim()
	if len(dims) > MaxRank {
		return nil, fmt.Errorf("rank %d is over the limit of %d", len(dims), MaxRank)
	}
	shape := []int{}
	for _, d := range dims {
		v := d.GetDimValue()
		switch {
		case d.GetDimParam() != "" || v == 0:
			v = 1 // symbolic (batch) dimension
		case v < 0:
			return nil, fmt.Errorf("negative dimension %d", v)
		case v > MaxTensorElements:
			return nil, fmt.Errorf("dimension %d is over the limit of %d elements", v, MaxTensorElements)
		}
		shape = append(shape, int(v))
	}
	if err := checkShape(shape); err != nil {
		return nil, err
	}
	return shape, nil
}

func decodeAttr(ap *onnx.AttributeProto) (Attr, error) {
	switch ap.GetType() {
	case onnx.AttributeProto_FLOAT:
		return Attr{Kind: AttrFloat, Float: float64(ap.GetF())}, nil
	case onnx.AttributeProto_INT:
		return Attr{Kind: AttrInt, Int: ap.GetI()}, nil
	case onnx.AttributeProto_STRING:
		return Attr{Kind: AttrString, String: string(ap.GetS())}, nil
	case onnx.AttributeProto_TENSOR:
		t, err := decodeTensor(ap.GetT())
		return Attr{Kind: AttrTensor, Tensor: t}, err
	case onnx.AttributeProto_FLOATS:
		fs := make([]float64, len(ap.GetFloats()))
		for i, f := range ap.GetFloats() {
			fs[i] = float64(f)
		}
		return Attr{Kind: AttrFloats, Floats: fs}, nil
	case onnx.AttributeProto_INTS:
		return Attr{Kind: AttrInts, Ints: ap.GetInts()}, nil
	case onnx.AttributeProto_STRINGS:
		return Attr{Kind: AttrStrings}, nil
	default:
		return Attr{}, fmt.Errorf("attribute type %v is not supported", ap.GetType())
	}
}

// DecodeTensorProto decodes a serialized ONNX TensorProto (the format of the ONNX
// backend tests' input_*.pb and output_*.pb files).
func DecodeTensorProto(data []byte) (*Tensor, error) {
	var tp onnx.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, fmt.Errorf("not a TensorProto: %w", err)
	}
	return decodeTensor(&tp)
}

func decodeTensor(tp *onnx.TensorProto) (*Tensor, error) {
	if tp == nil {
		return nil, errors.New("missing tensor")
	}
	if tp.GetDataLocation() == onnx.TensorProto_EXTERNAL {
		return nil, errors.New("external tensor data is not supported")
	}
	if len(tp.GetDims()) > MaxRank {
		return nil, fmt.Errorf("rank %d is over the limit of %d", len(tp.GetDims()), MaxRank)
	}
	shape := make([]int, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		if d < 0 || d > MaxTensorElements {
			return nil, fmt.Errorf("bad dimension %d", d)
		}
		shape[i] = int(d)
	}
	if err := checkShape(shape); err != nil {
		return nil, err
	}
	n := numel(shape)
	dt := onnx.TensorProto_DataType(tp.GetDataType())
	t := &Tensor{Shape: shape, Data: make([]float64, n), DType: int32(dt)}
	raw := tp.GetRawData()
	size := map[onnx.TensorProto_DataType]int{
		onnx.TensorProto_FLOAT: 4, onnx.TensorProto_DOUBLE: 8, onnx.TensorProto_INT64: 8,
		onnx.TensorProto_INT32: 4, onnx.TensorProto_INT16: 2, onnx.TensorProto_UINT16: 2,
		onnx.TensorProto_INT8: 1, onnx.TensorProto_UINT8: 1, onnx.TensorProto_BOOL: 1,
		onnx.TensorProto_UINT32: 4, onnx.TensorProto_UINT64: 8,
	}[dt]
	if size == 0 {
		return nil, fmt.Errorf("data type %v is not supported", dt)
	}
	if len(raw) > 0 {
		if len(raw) != n*size {
			return nil, fmt.Errorf("raw data has %d bytes, want %d for shape %v", len(raw), n*size, shape)
		}
		le := binary.LittleEndian
		for i := range t.Data {
			b := raw[i*size:]
			switch dt {
			case onnx.TensorProto_FLOAT:
				t.Data[i] = float64(math.Float32frombits(le.Uint32(b)))
			case onnx.TensorProto_DOUBLE:
				t.Data[i] = math.Float64frombits(le.Uint64(b))
			case onnx.TensorProto_INT64:
				t.Data[i] = float64(int64(le.Uint64(b)))
			case onnx.TensorProto_UINT64:
				t.Data[i] = float64(le.Uint64(b))
			case onnx.TensorProto_INT32:
				t.Data[i] = float64(int32(le.Uint32(b)))
			case onnx.TensorProto_UINT32:
				t.Data[i] = float64(le.Uint32(b))
			case onnx.TensorProto_INT16:
				t.Data[i] = float64(int16(le.Uint16(b)))
			case onnx.TensorProto_UINT16:
				t.Data[i] = float64(le.Uint16(b))
			case onnx.TensorProto_INT8:
				t.Data[i] = float64(int8(b[0]))
			case onnx.TensorProto_UINT8, onnx.TensorProto_BOOL:
				t.Data[i] = float64(b[0])
			}
		}
		return t, nil
	}
	var src []float64
	switch dt {
	case onnx.TensorProto_FLOAT:
		for _, v := range tp.GetFloatData() {
			src = append(src, float64(v))
		}
	case onnx.TensorProto_DOUBLE:
		src = tp.GetDoubleData()
	case onnx.TensorProto_INT64:
		for _, v := range tp.GetInt64Data() {
			src = append(src, float64(v))
		}
	case onnx.TensorProto_UINT32, onnx.TensorProto_UINT64:
		for _, v := range tp.GetUint64Data() {
			src = append(src, float64(v))
		}
	default: // int32 and all narrower integer types are stored in int32_data
		for _, v := range tp.GetInt32Data() {
			src = append(src, float64(v))
		}
	}
	if len(src) != n {
		return nil, fmt.Errorf("tensor has %d values, want %d for shape %v", len(src), n, shape)
	}
	copy(t.Data, src)
	return t, nil
}
