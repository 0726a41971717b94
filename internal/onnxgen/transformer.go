package onnxgen

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Transformer describes a small attention model over token ids [1, Seq] (int64), as
// exporters write one: token embeddings by Gather of the runtime ids, position
// embeddings by Gather of Range(0, Seq) (Shape, Gather, Range and Unsqueeze fold to a
// constant), Layers blocks, and the hidden states [1, Seq, DModel] as output.
type Transformer struct {
	// Style "gpt2": pre-LayerNormalization blocks, one fused QKV projection split in
	// three, a causal mask by Where, Gelu with the tanh approximation, a final
	// LayerNormalization. Style "bert": post-LayerNormalization blocks, separate Q, K, V
	// projections, a padding mask added to the scores (the last Pad positions masked),
	// Gelu in its Erf form, LayerNormalization after the embeddings.
	Style                     string
	Vocab, Seq, DModel, Heads int
	FF, Layers, Pad           int
}

// TransformerModel is a generated transformer: the ONNX bytes, and the names of the
// nodes of the attention core (scores, scaling, mask, Softmax, weighted sum of values),
// to report the cost per attention head.
type TransformerModel struct {
	ONNX      []byte
	Attention []string
}

// maskValue is the masks' "minus infinity": float32's lowest value, as current
// exporters write it (the lowering bounds it, see model.BoundSoftmaxMasks).
const maskValue = -math.MaxFloat32

// Build writes the transformer called name, weights seeded by the name.
func (t Transformer) Build(name string) (*TransformerModel, error) {
	if t.Heads < 1 || t.DModel%t.Heads != 0 || t.Seq < 1 || t.Vocab < 1 || t.Layers < 1 || t.Pad >= t.Seq {
		return nil, fmt.Errorf("onnxgen: transformer %s: bad shape %+v", name, t)
	}
	if t.Style != "gpt2" && t.Style != "bert" {
		return nil, fmt.Errorf("onnxgen: transformer %s: style %q (want gpt2 or bert)", name, t.Style)
	}
	b := Seeded(name)
	m := &TransformerModel{}
	d, s := int64(t.DModel), int64(t.Seq)
	// Embeddings: tokens by runtime ids, positions by a Range that folds.
	x := b.Node("Gather", []string{b.Init("wte", 1, int64(t.Vocab), d), "input_ids"})
	seqLen := b.Node("Gather", []string{b.Node("Shape", []string{"input_ids"}), b.Constant(nil, 1)}, Int("axis", 0))
	positions := b.Node("Range", []string{b.Constant(nil, 0), seqLen, b.Constant(nil, 1)})
	positions = b.Node("Unsqueeze", []string{positions, b.Constant([]int64{1}, 0)})
	x = b.Node("Add", []string{x, b.Node("Gather", []string{b.Init("wpe", 1, s, d), positions})})
	if t.Style == "bert" {
		x = b.layerNorm(x, d)
	}
	for range t.Layers {
		if t.Style == "gpt2" {
			x = b.Node("Add", []string{x, t.attention(b, m, b.layerNorm(x, d))})
			x = b.Node("Add", []string{x, t.feedForward(b, b.layerNorm(x, d))})
		} else {
			x = b.layerNorm(b.Node("Add", []string{x, t.attention(b, m, x)}), d)
			x = b.layerNorm(b.Node("Add", []string{x, t.feedForward(b, x)}), d)
		}
	}
	if t.Style == "gpt2" {
		x = b.layerNorm(x, d)
	}
	ids := ValueInfo("input_ids", 1, s)
	ids.GetType().GetTensorType().ElemType = int32(onnx.TensorProto_INT64)
	var err error
	m.ONNX, err = b.Marshal([]*onnx.ValueInfoProto{ids}, []*onnx.ValueInfoProto{ValueInfo(x, 1, s, d)}, 9, 20)
	return m, err
}

// layerNorm appends a LayerNormalization over the last axis with weights near 1.
func (b *Builder) layerNorm(x string, d int64) string {
	return b.Node("LayerNormalization", []string{x, b.Uniform("ln_g", 0.8, 1.2, d), b.Init("ln_b", 0.1, d)}, Int("axis", -1), Float("epsilon", 1e-5))
}

// linear appends x·W + bias for W [in, out].
func (b *Builder) linear(x string, in, out int64) string {
	return b.Node("Add", []string{b.Node("MatMul", []string{x, b.Init("w", HeScale(int(in)), in, out)}), b.Init("b", 0.1, out)})
}

// heads reshapes [1, Seq, DModel] to [1, Heads, Seq, DModel/Heads] (perm 0 2 1 3), or to
// [1, Heads, DModel/Heads, Seq] for keys (perm 0 2 3 1).
func (t Transformer) heads(b *Builder, x string, keys bool) string {
	x = b.Node("Reshape", []string{x, b.Constant([]int64{4}, 1, int64(t.Seq), int64(t.Heads), int64(t.DModel/t.Heads))})
	if keys {
		return b.Node("Transpose", []string{x}, Ints("perm", 0, 2, 3, 1))
	}
	return b.Node("Transpose", []string{x}, Ints("perm", 0, 2, 1, 3))
}

// attention appends multi-head self-attention of x and its output projection.
func (t Transformer) attention(b *Builder, m *TransformerModel, x string) string {
	d, s := int64(t.DModel), int64(t.Seq)
	var q, k, v string
	if t.Style == "gpt2" {
		qkv := b.linear(x, d, 3*d)
		outs := []string{b.name("q_"), b.name("k_"), b.name("v_")}
		b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: b.name("Split_"), OpType: "Split", Output: outs,
			Input: []string{qkv, b.Int64s("split", []int64{3}, d, d, d)}, Attribute: []*onnx.AttributeProto{Int("axis", 2)}})
		q, k, v = outs[0], outs[1], outs[2]
	} else {
		q, k, v = b.linear(x, d, d), b.linear(x, d, d), b.linear(x, d, d)
	}
	core := func(op string, in []string, attrs ...*onnx.AttributeProto) string {
		o := b.Node(op, in, attrs...)
		m.Attention = append(m.Attention, o)
		return o
	}
	scores := core("MatMul", []string{t.heads(b, q, false), t.heads(b, k, true)})
	scale := b.name("scale")
	b.Graph.Initializer = append(b.Graph.Initializer, &onnx.TensorProto{Name: scale, DataType: int32(onnx.TensorProto_FLOAT),
		FloatData: []float32{float32(1 / math.Sqrt(float64(t.DModel/t.Heads)))}})
	scores = core("Mul", []string{scores, scale})
	if t.Style == "gpt2" {
		// Causal: position i sees positions j <= i; the others are set to maskValue.
		allowed := make([]int32, s*s)
		for i := range s {
			for j := range i + 1 {
				allowed[i*s+j] = 1
			}
		}
		cond, fill := b.name("causal"), b.name("masked")
		b.Graph.Initializer = append(b.Graph.Initializer,
			&onnx.TensorProto{Name: cond, Dims: []int64{1, 1, s, s}, DataType: int32(onnx.TensorProto_BOOL), Int32Data: allowed},
			&onnx.TensorProto{Name: fill, DataType: int32(onnx.TensorProto_FLOAT), FloatData: []float32{maskValue}})
		scores = core("Where", []string{cond, scores, fill})
	} else {
		// Padding: the last Pad positions are never attended to.
		mask := make([]float32, s)
		for j := s - int64(t.Pad); j < s; j++ {
			mask[j] = maskValue
		}
		name := b.name("padding_mask")
		b.Graph.Initializer = append(b.Graph.Initializer, &onnx.TensorProto{Name: name, Dims: []int64{1, 1, 1, s}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: mask})
		scores = core("Add", []string{scores, name})
	}
	probs := core("Softmax", []string{scores}, Int("axis", -1))
	ctx := core("MatMul", []string{probs, t.heads(b, v, false)})
	ctx = b.Node("Transpose", []string{ctx}, Ints("perm", 0, 2, 1, 3))
	ctx = b.Node("Reshape", []string{ctx, b.Constant([]int64{3}, 1, s, d)})
	return b.linear(ctx, d, d)
}

// feedForward appends Linear, Gelu, Linear.
func (t Transformer) feedForward(b *Builder, x string) string {
	d, f := int64(t.DModel), int64(t.FF)
	h := b.linear(x, d, f)
	if t.Style == "gpt2" {
		h = b.Node("Gelu", []string{h}, &onnx.AttributeProto{Name: "approximate", Type: onnx.AttributeProto_STRING, S: []byte("tanh")})
	} else {
		// x * 0.5 * (1 + erf(x / sqrt 2)), as exporters write nn.GELU before opset 20.
		c := func(v float64) string {
			n := b.name("c")
			b.Graph.Initializer = append(b.Graph.Initializer, &onnx.TensorProto{Name: n, DataType: int32(onnx.TensorProto_FLOAT), FloatData: []float32{float32(v)}})
			return n
		}
		e := b.Node("Erf", []string{b.Node("Div", []string{h, c(math.Sqrt2)})})
		h = b.Node("Mul", []string{b.Node("Mul", []string{h, c(0.5)}), b.Node("Add", []string{e, c(1)})})
	}
	return b.linear(h, f, d)
}
