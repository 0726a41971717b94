package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// onnxOperators are the operators of ONNX's default domain (ai.onnx, opsets 1 to 24,
// ONNX's Operators.md), sorted.
var onnxOperators = []string{
	"Abs", "Acos", "Acosh", "Add", "AffineGrid", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan",
	"Atanh", "Attention", "AveragePool", "BatchNormalization", "Bernoulli", "BitShift", "BitwiseAnd",
	"BitwiseNot", "BitwiseOr", "BitwiseXor", "BlackmanWindow", "Cast", "CastLike", "Ceil", "Celu",
	"CenterCropPad", "Clip", "Col2Im", "Compress", "Concat", "ConcatFromSequence", "Constant",
	"ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DFT",
	"DeformConv", "DepthToSpace", "DequantizeLinear", "Det", "Div", "Dropout",
	"DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten",
	"Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
	"GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization",
	"HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If",
	"ImageDecoder", "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM", "LayerNormalization",
	"LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LpNormalization", "LpPool",
	"MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean",
	"MeanVarianceNormalization", "MelWeightMatrix", "Min", "Mish", "Mod", "Mul", "Multinomial", "Neg",
	"NegativeLogLikelihoodLoss", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Optional",
	"OptionalGetElement", "OptionalHasElement", "Or", "PRelu", "Pad", "Pow", "QLinearConv",
	"QLinearMatMul", "QuantizeLinear", "RMSNormalization", "RNN", "RandomNormal", "RandomNormalLike",
	"RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
	"ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
	"ReduceSum", "ReduceSumSquare", "RegexFullMatch", "Relu", "Reshape", "Resize", "ReverseSequence",
	"RoiAlign", "RotaryEmbedding", "Round", "STFT", "Scan", "Scatter", "ScatterElements", "ScatterND",
	"Selu", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
	"SequenceLength", "SequenceMap", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size",
	"Slice", "Softmax", "SoftmaxCrossEntropyLoss", "Softplus", "Softsign", "SpaceToDepth", "Split",
	"SplitToSequence", "Sqrt", "Squeeze", "StringConcat", "StringNormalizer", "StringSplit", "Sub",
	"Sum", "Swish", "Tan", "Tanh", "TensorScatter", "TfIdfVectorizer", "ThresholdedRelu", "Tile",
	"TopK", "Transpose", "Trilu", "Unique", "Unsqueeze", "Upsample", "Where", "Xor",
}

// refusedOperators are the ONNX operators zkml refuses, from the code's own table
// (model.Supports).
func refusedOperators() []string {
	var out []string
	for _, op := range onnxOperators {
		if !model.Supports(op) {
			out = append(out, op)
		}
	}
	return out
}

// refusedSection is docs/operators.md's list of refused operators.
func refusedSection() string {
	ops := refusedOperators()
	var b strings.Builder
	b.WriteString("## Refused operators\n")
	b.WriteString("\nGenerated from the code's operator table (`model.Supports`) over ONNX's default-domain\n")
	fmt.Fprintf(&b, "operators (ai.onnx, opsets 1-24: %d operators, %d supported, %d refused); kept in sync by\n",
		len(onnxOperators), len(onnxOperators)-len(ops), len(ops))
	b.WriteString("`TestRefusedOperatorsDoc` (`go test ./internal/conformance -run TestRefusedOperatorsDoc -update`).\n")
	b.WriteString("Loading a model with any of them fails with an \"unsupported operator\" error naming the\n")
	b.WriteString("operator and the node (`TestRefusedOperatorNamed`). Operators of other domains\n")
	b.WriteString("(ai.onnx.ml, com.microsoft, ...) are refused as well, naming the domain.\n\n")
	for _, op := range ops {
		fmt.Fprintf(&b, "- %s\n", op)
	}
	b.WriteString("\nAccepted at load but refused in circuits on runtime values (they still fold where their\n")
	b.WriteString("inputs are constants; `TestLoweringRefusedNamed`):\n\n")
	for _, op := range loweringRefused {
		fmt.Fprintf(&b, "- %s\n", op)
	}
	b.WriteString("\nRange, Shape and Size are computed at load (their results are constants). Refused forms of\n")
	b.WriteString("supported operators, each naming the node: Pow with a runtime or non-integer exponent\n")
	b.WriteString("other than 0.5, MaxPool's Indices output and storage_order=1, Dropout in training mode with\n")
	b.WriteString("a nonzero ratio, Gather of runtime indices from a runtime table, Conv and ConvTranspose\n")
	b.WriteString("with runtime weights.\n")
	return b.String()
}

// loweringRefused are the operators the float reference evaluates but no circuit
// lowering proves on a runtime input.
var loweringRefused = []string{"Reciprocal"}

// TestLoweringRefusedNamed lowers a one-node model of each loweringRefused operator on
// a runtime input and checks the error: ErrUnsupportedOp naming the operator and node.
func TestLoweringRefusedNamed(t *testing.T) {
	for _, op := range loweringRefused {
		if !model.Supports(op) {
			t.Errorf("%s is refused at load already: remove it from loweringRefused", op)
			continue
		}
		b := onnxgen.Seeded(op)
		b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: "layer_" + op, OpType: op, Input: []string{"x"}, Output: []string{"y"}})
		data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 2, 3)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo("y")}, 8, 21)
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		_, err = quant.Lower(g, Config())
		if !errors.Is(err, model.ErrUnsupportedOp) || !strings.Contains(err.Error(), fmt.Sprintf("%s node %q", op, "layer_"+op)) {
			t.Errorf("%s: err = %v, want ErrUnsupportedOp naming %s node %q", op, err, op, "layer_"+op)
		}
	}
}

// TestRefusedOperatorsDoc checks that docs/operators.md ends with newOperatorsSection
// and refusedSection (-update rewrites them in place; TestCircuitConformance -update
// writes them after the node-test table).
func TestRefusedOperatorsDoc(t *testing.T) {
	const path = "../../docs/operators.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := newOperatorsSection + "\n" + refusedSection()
	i := bytes.Index(doc, []byte(newOperatorsSection[:strings.Index(newOperatorsSection, "\n")]))
	if *update {
		if i < 0 {
			i = len(doc)
			want = "\n" + want
		}
		if err := os.WriteFile(path, append(doc[:i:i], want...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if i < 0 || string(doc[i:]) != want {
		t.Fatalf("%s: the model-zoo and refused-operator sections are stale; run go test ./internal/conformance -run TestRefusedOperatorsDoc -update", path)
	}
}

// TestRefusedOperatorNamed loads a one-node model of every refused operator and
// checks the error: ErrUnsupportedOp, naming the operator and the node.
func TestRefusedOperatorNamed(t *testing.T) {
	for _, op := range refusedOperators() {
		b := onnxgen.Seeded(op)
		b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: "layer_" + op, OpType: op, Input: []string{"x"}, Output: []string{"y"}})
		data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 2, 3)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo("y")}, 8, 21)
		if err != nil {
			t.Fatal(err)
		}
		_, err = model.Load(data)
		if !errors.Is(err, model.ErrUnsupportedOp) || !strings.Contains(err.Error(), fmt.Sprintf("%s node %q", op, "layer_"+op)) {
			t.Errorf("%s: err = %v, want ErrUnsupportedOp naming %s node %q", op, err, op, "layer_"+op)
		}
	}
	// Another domain is refused naming it.
	b := onnxgen.Seeded("ml")
	b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: "scaler", OpType: "Scaler", Domain: "ai.onnx.ml", Input: []string{"x"}, Output: []string{"y"}})
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 2, 3)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo("y")}, 8, 21)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := model.Load(data); !errors.Is(err, model.ErrUnsupportedOp) || !strings.Contains(err.Error(), `Scaler node "scaler"`) || !strings.Contains(err.Error(), "ai.onnx.ml") {
		t.Errorf("ai.onnx.ml Scaler: err = %v", err)
	}
}

// newOperatorsSection lists the operators and forms added for the classic model zoo
// (issue 16) and PyTorch's pools (issue 17) with the tests that cover them; it sits
// between the node-test table and the refused list.
const newOperatorsSection = `## Model-zoo operators and forms

| operator or form | how | tests |
|---|---|---|
| LRN | square sums over the channel window as exact integer products; (bias + alpha/size·S)^-beta by a strict lookup table at the coarsest scale whose rounding costs at most half a step (the factor's error bound, at most 2^-scale, is the layer's ` + "`max_error`" + `; y is within abs(x)·bound + half a step); times x | node tests ` + "`test_lrn`, `test_lrn_default`" + ` (generated, upstream's models and attributes); ` + "`TestLRNWithinReportedBound`, `TestLRNProofSound`" + ` (Groth16 proof, changed outputs and a square sum past the table rejected); ` + "`model.TestLRNFloat`" + ` |
| Dropout with its mask output | inference: the identity; the mask is a constant all-true bool tensor (folded where consumed, a proven constant where it is a graph output); training mode with a nonzero ratio refused naming node and mask | ` + "`TestZooOperators`, `TestDropoutTrainingMaskRefused`" + ` |
| ConstantOfShape and weight constants over 2^24 elements | bounded by a memory budget (` + "`model.MaxConstantBytes`, `ZKML_MAX_CONSTANT_BYTES`" + `, default 2 GiB, 8 bytes per element), refusals name node, shape and bytes | ` + "`model.TestConstantOverElementLimit`, `model.TestConstantBudgetRefusal`" + ` |
| GlobalAveragePool, Concat of many inputs, Flatten and Reshape after pooling, BatchNormalization folded into the preceding Conv, Softmax at the end | existing lowerings, checked together in a scaled-down zoo network (MaxPool in ceil mode, LRN, a SqueezeNet fire module, a Concat of five inputs) and proven | ` + "`TestZooOperators`" + ` |
| MaxPool and AveragePool with stride, padding and dilation together (1-D, 2-D; ceil_mode) | ONNX's output-size formula (a dilated kernel overhanging the padded input by less than a stride gives one window in ceil mode; VALID ignores ceil_mode); kernel sizes, strides, dilations and pads bounded before any size is computed; declared output shapes that differ from the formula refused | ` + "`model.TestPoolOutputSizeONNX`, `TestPoolCeilOverhang`, `TestPoolValidCeil`, `TestPoolDeclaredShapeMismatch`, `TestPoolHostileAttrsBounded`; `quant.TestPoolStridePadDilation`" + ` |
`
