package model

import (
	"fmt"
	"math"
	"sort"
)

// Movement describes a pure data-movement op (Reshape, Transpose, Gather, Pad, Concat...)
// as an index map: output element i is element Index[i] of the concatenation of the op's
// data inputs, or Fill when Index[i] < 0. The float, integer and circuit evaluators all
// apply the same map, so such ops cost no constraints.
type Movement struct {
	Shape []int
	Index []int
	Fill  float64
	Data  []int // positions of the node inputs that carry data (others are constant parameters)
}

var movementOps = map[string]func(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error){
	"Identity":  moveIdentity,
	"Dropout":   moveDropout,
	"Reshape":   moveReshape,
	"Flatten":   moveFlatten,
	"Squeeze":   moveSqueeze,
	"Unsqueeze": moveUnsqueeze,
	"Transpose": moveTranspose,
	"Gather":    moveGather,
	"Pad":       movePad,
	"Concat":    moveConcat,
	"Slice":     moveSlice,
}

func identityIndex(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func moveIdentity(_ *Node, shapes [][]int, _ []*Tensor, _ int64) (*Movement, error) {
	return &Movement{Shape: shapes[0], Index: identityIndex(numel(shapes[0])), Data: []int{0}}, nil
}

// moveDropout is the inference-mode Dropout: the identity (its mask output is a
// constant, see dropout.go). Training mode with a nonzero ratio is rejected.
func moveDropout(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error) {
	training, err := dropoutTraining(n, consts)
	if err != nil {
		return nil, err
	}
	if training {
		what := "training mode with a nonzero ratio (a random output) is not supported"
		if len(n.Outputs) > 1 && n.Outputs[1] != "" {
			what += fmt.Sprintf("; its mask %q cannot be a constant", n.Outputs[1])
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrUnsupportedOp, n.Label(), what)
	}
	return moveIdentity(n, shapes, consts, opset)
}

func reshapeTo(shape []int, in []int) *Movement {
	return &Movement{Shape: shape, Index: identityIndex(numel(in)), Data: []int{0}}
}

func normAxis(n *Node, axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, fmt.Errorf("%s: axis %d out of range for rank %d", n.Label(), axis, rank)
	}
	return int(axis), nil
}

// distinctAxes normalizes axes for rank (normAxis) and refuses an axis given twice,
// in either spelling (1 and 1-rank are one axis).
func distinctAxes(n *Node, axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := map[int]bool{}
	for i, a := range axes {
		ax, err := normAxis(n, a, rank)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("%s: repeated axis %d", n.Label(), a)
		}
		seen[ax] = true
		out[i] = ax
	}
	return out, nil
}

// maxParam is the magnitude at which integer parameters saturate (Slice uses INT64_MAX
// for "to the end"); it leaves room for adding dimensions without overflow.
const maxParam = 1 << 53

// intParams converts a constant parameter tensor (shape, axes, indices, pads, slice bounds)
// to integers, rejecting NaN and fractions and saturating at ±maxParam.
func intParams(n *Node, t *Tensor, what string) ([]int64, error) {
	out := make([]int64, len(t.Data))
	for i, v := range t.Data {
		if math.IsNaN(v) || (!math.IsInf(v, 0) && v != math.Trunc(v)) {
			return nil, fmt.Errorf("%s: %s value %v is not an integer", n.Label(), what, v)
		}
		out[i] = int64(max(-maxParam, min(maxParam, v)))
	}
	return out, nil
}

// constInts reads input i of n, which must be a constant, as integers.
func constInts(n *Node, consts []*Tensor, i int, what string) ([]int64, error) {
	t, err := constInput(n, consts, i, what)
	if err != nil {
		return nil, err
	}
	return intParams(n, t, what)
}

func constInput(n *Node, consts []*Tensor, i int, what string) (*Tensor, error) {
	if i >= len(consts) || consts[i] == nil {
		return nil, fmt.Errorf("%s: %s (input %d) must be a constant", n.Label(), what, i)
	}
	return consts[i], nil
}

func moveReshape(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	target, err := constInts(n, consts, 1, "shape")
	if err != nil {
		return nil, err
	}
	in := shapes[0]
	if len(target) > MaxRank {
		return nil, fmt.Errorf("%s: target rank %d is over the limit of %d", n.Label(), len(target), MaxRank)
	}
	out := make([]int, len(target))
	infer := -1
	known := 1
	allowZero := n.Attrs.Int("allowzero", 0) == 1
	for i, v := range target {
		switch {
		case v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("%s: more than one -1 in shape", n.Label())
			}
			infer = i
			continue
		case v == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("%s: 0 at position %d beyond input rank", n.Label(), i)
			}
			out[i] = in[i]
		case v < 0 || v > MaxTensorElements:
			return nil, fmt.Errorf("%s: bad target dimension %v", n.Label(), v)
		default:
			out[i] = int(v)
		}
		known *= out[i]
		if known > MaxTensorElements {
			return nil, fmt.Errorf("%s: target shape %v is over the limit of %d elements", n.Label(), target, MaxTensorElements)
		}
	}
	total := numel(in)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("%s: cannot infer dimension for %v from %v", n.Label(), target, in)
		}
		out[infer] = total / known
	}
	if numel(out) != total {
		return nil, fmt.Errorf("%s: cannot reshape %v to %v", n.Label(), in, out)
	}
	m := reshapeTo(out, in)
	m.Data = []int{0}
	return m, nil
}

func moveFlatten(n *Node, shapes [][]int, _ []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	axis := n.Attrs.Int("axis", 1)
	if axis < 0 {
		axis += int64(len(in))
	}
	if axis < 0 || axis > int64(len(in)) {
		return nil, fmt.Errorf("%s: axis %d out of range", n.Label(), axis)
	}
	return reshapeTo([]int{numel(in[:axis]), numel(in[axis:])}, in), nil
}

// axesOf returns Squeeze/Unsqueeze axes: an attribute before opset attrBefore, the
// second input from then on. ok is false when no axes are given.
func axesOf(n *Node, consts []*Tensor, opset int64, attrBefore int64) (axes []int64, ok bool, err error) {
	if opset < attrBefore {
		v := n.Attrs.Ints("axes", nil)
		return v, v != nil, nil
	}
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		t, err := constInput(n, consts, 1, "axes")
		if err != nil {
			return nil, false, err
		}
		ax, err := intParams(n, t, "axes")
		return ax, true, err
	}
	return nil, false, nil
}

func moveSqueeze(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error) {
	in := shapes[0]
	axes, ok, err := axesOf(n, consts, opset, 13)
	if err != nil {
		return nil, err
	}
	drop := map[int]bool{}
	if ok {
		for _, a := range axes {
			ax, err := normAxis(n, a, len(in))
			if err != nil {
				return nil, err
			}
			if in[ax] != 1 {
				return nil, fmt.Errorf("%s: cannot squeeze axis %d of size %d", n.Label(), ax, in[ax])
			}
			drop[ax] = true
		}
	} else {
		for i, d := range in {
			if d == 1 {
				drop[i] = true
			}
		}
	}
	var out []int
	for i, d := range in {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return reshapeTo(out, in), nil
}

func moveUnsqueeze(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error) {
	in := shapes[0]
	axes, ok, err := axesOf(n, consts, opset, 13)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: axes are required", n.Label())
	}
	rank := len(in) + len(axes)
	if rank > MaxRank {
		return nil, fmt.Errorf("%s: output rank %d is over the limit of %d", n.Label(), rank, MaxRank)
	}
	ins := map[int]bool{}
	axs, err := distinctAxes(n, axes, rank)
	if err != nil {
		return nil, err
	}
	for _, ax := range axs {
		ins[ax] = true
	}
	out := make([]int, 0, rank)
	j := 0
	for i := 0; i < rank; i++ {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, in[j])
			j++
		}
	}
	return reshapeTo(out, in), nil
}

func moveTranspose(n *Node, shapes [][]int, _ []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	perm := n.Attrs.Ints("perm", nil)
	if perm == nil {
		for i := len(in) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(in) {
		return nil, fmt.Errorf("%s: perm %v does not match rank %d", n.Label(), perm, len(in))
	}
	seen := map[int64]bool{}
	out := make([]int, len(in))
	for i, p := range perm {
		if p < 0 || p >= int64(len(in)) || seen[p] {
			return nil, fmt.Errorf("%s: bad perm %v", n.Label(), perm)
		}
		seen[p] = true
		out[i] = in[p]
	}
	inStr := strides(in)
	idx := make([]int, numel(out))
	coord := make([]int, len(out))
	for i := range idx {
		j := 0
		for d, c := range coord {
			j += c * inStr[perm[d]]
		}
		idx[i] = j
		increment(coord, out)
	}
	return &Movement{Shape: out, Index: idx, Data: []int{0}}, nil
}

func increment(coord, shape []int) {
	for d := len(shape) - 1; d >= 0; d-- {
		coord[d]++
		if coord[d] < shape[d] {
			return
		}
		coord[d] = 0
	}
}

// gatherParams reads the constant indices (input 1) and the axis of Gather and
// GatherElements.
func gatherParams(n *Node, in []int, consts []*Tensor) (it *Tensor, axis int, indices []int64, err error) {
	if it, err = constInput(n, consts, 1, "indices"); err != nil {
		return nil, 0, nil, err
	}
	if axis, err = normAxis(n, n.Attrs.Int("axis", 0), len(in)); err != nil {
		return nil, 0, nil, err
	}
	indices, err = intParams(n, it, "indices")
	return it, axis, indices, err
}

// gatherIndex resolves index v (negative counts from the end) on an axis of size.
func gatherIndex(n *Node, v int64, size int) (int, error) {
	k := int(v)
	if k < 0 {
		k += size
	}
	if k < 0 || k >= size {
		return 0, fmt.Errorf("%s: index %v out of range for axis size %d", n.Label(), v, size)
	}
	return k, nil
}

func moveGather(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	it, axis, indices, err := gatherParams(n, in, consts)
	if err != nil {
		return nil, err
	}
	out := append(append(append([]int{}, in[:axis]...), it.Shape...), in[axis+1:]...)
	if err := checkShape(out); err != nil {
		return nil, fmt.Errorf("%s: output: %v", n.Label(), err)
	}
	outer, inner := numel(in[:axis]), numel(in[axis+1:])
	idx := make([]int, 0, numel(out))
	for o := 0; o < outer; o++ {
		for _, v := range indices {
			k, err := gatherIndex(n, v, in[axis])
			if err != nil {
				return nil, err
			}
			base := (o*in[axis] + k) * inner
			for i := 0; i < inner; i++ {
				idx = append(idx, base+i)
			}
		}
	}
	return &Movement{Shape: out, Index: idx, Data: []int{0}}, nil
}

// padSource maps coordinate x of a padded axis of size size (x may lie outside
// [0, size)) to the input coordinate it copies under mode, or -1 for the constant fill.
// reflect mirrors about the edge elements without repeating them (numpy's reflect),
// edge repeats the edge element, wrap continues periodically.
func padSource(mode string, x, size int) int {
	if x >= 0 && x < size {
		return x
	}
	switch mode {
	case "edge":
		return min(max(x, 0), size-1)
	case "wrap":
		return ((x % size) + size) % size
	case "reflect":
		if size == 1 {
			return 0
		}
		period := 2 * (size - 1)
		x = ((x % period) + period) % period
		if x >= size {
			x = period - x
		}
		return x
	}
	return -1
}

func movePad(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error) {
	in := shapes[0]
	mode := n.Attrs.String("mode", "constant")
	switch mode {
	case "constant", "reflect", "edge":
	case "wrap":
		if opset < 19 {
			return nil, fmt.Errorf("%s: pad mode wrap needs opset 19", n.Label())
		}
	default:
		return nil, fmt.Errorf("%w: %s: pad mode %q is not supported", ErrUnsupportedOp, n.Label(), mode)
	}
	var pads []int64
	fill := 0.0
	if opset < 11 {
		pads = append([]int64(nil), n.Attrs.Ints("pads", nil)...)
		fill = n.Attrs.Float("value", 0)
	} else {
		var err error
		if pads, err = constInts(n, consts, 1, "pads"); err != nil {
			return nil, err
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			ct, err := constInput(n, consts, 2, "constant_value")
			if err != nil {
				return nil, err
			}
			if len(ct.Data) != 1 {
				return nil, fmt.Errorf("%s: constant_value has %d values, want 1", n.Label(), len(ct.Data))
			}
			fill = ct.Data[0]
		}
		if len(n.Inputs) > 3 && n.Inputs[3] != "" {
			if pads, err = padAxes(n, consts, pads, len(in)); err != nil {
				return nil, err
			}
		}
	}
	return padMap(n, in, pads, mode, fill)
}

// padMap is the index map of padding shape in by pads (begins, then ends; negative
// values crop) in mode (constant, reflect, edge or wrap; fill for constant).
func padMap(n *Node, in []int, pads []int64, mode string, fill float64) (*Movement, error) {
	for i, p := range pads {
		pads[i] = clamp64(p, -maxParam, maxParam)
	}
	if len(pads) != 2*len(in) {
		return nil, fmt.Errorf("%s: pads has %d values, want %d", n.Label(), len(pads), 2*len(in))
	}
	out := make([]int, len(in))
	for i := range in {
		out[i] = in[i] + int(pads[i]) + int(pads[i+len(in)])
		if out[i] < 0 {
			return nil, fmt.Errorf("%s: negative output dimension", n.Label())
		}
		if mode != "constant" && (in[i] == 0 && out[i] > 0) {
			return nil, fmt.Errorf("%s: pad mode %s of an empty axis", n.Label(), mode)
		}
	}
	if err := checkShape(out); err != nil {
		return nil, fmt.Errorf("%s: output: %v", n.Label(), err)
	}
	inStr := strides(in)
	idx := make([]int, numel(out))
	coord := make([]int, len(out))
	for i := range idx {
		j := 0
		for d, c := range coord {
			x := padSource(mode, c-int(pads[d]), in[d])
			if x < 0 {
				j = -1
				break
			}
			j += x * inStr[d]
		}
		idx[i] = j
		increment(coord, out)
	}
	return &Movement{Shape: out, Index: idx, Fill: fill, Data: []int{0}}, nil
}

// padAxes expands pads given for the axes input (opset 18) to pads for every axis.
func padAxes(n *Node, consts []*Tensor, pads []int64, rank int) ([]int64, error) {
	axes, err := constInts(n, consts, 3, "axes")
	if err != nil {
		return nil, err
	}
	if len(pads) != 2*len(axes) {
		return nil, fmt.Errorf("%s: pads has %d values for %d axes", n.Label(), len(pads), len(axes))
	}
	axs, err := distinctAxes(n, axes, rank)
	if err != nil {
		return nil, err
	}
	full := make([]int64, 2*rank)
	for i, ax := range axs {
		full[ax], full[ax+rank] = pads[i], pads[i+len(axes)]
	}
	return full, nil
}

func moveConcat(n *Node, shapes [][]int, _ []*Tensor, _ int64) (*Movement, error) {
	if len(shapes) == 0 {
		return nil, fmt.Errorf("%s: no inputs", n.Label())
	}
	axis, err := normAxis(n, n.Attrs.Int("axis", 0), len(shapes[0]))
	if err != nil {
		return nil, err
	}
	out := append([]int{}, shapes[0]...)
	out[axis] = 0
	data := make([]int, len(shapes))
	for k, s := range shapes {
		if len(s) != len(out) {
			return nil, fmt.Errorf("%s: rank mismatch", n.Label())
		}
		for d := range s {
			if d != axis && s[d] != out[d] {
				return nil, fmt.Errorf("%s: shape mismatch %v", n.Label(), shapes)
			}
		}
		out[axis] += s[axis]
		data[k] = k
	}
	if err := checkShape(out); err != nil {
		return nil, fmt.Errorf("%s: output: %v", n.Label(), err)
	}
	outer := numel(out[:axis])
	idx := make([]int, 0, numel(out))
	for o := 0; o < outer; o++ {
		base := 0
		for _, s := range shapes {
			chunk := numel(s[axis:])
			for i := 0; i < chunk; i++ {
				idx = append(idx, base+o*chunk+i)
			}
			base += numel(s)
		}
	}
	return &Movement{Shape: out, Index: idx, Data: data}, nil
}

func moveSlice(n *Node, shapes [][]int, consts []*Tensor, opset int64) (*Movement, error) {
	in := shapes[0]
	var starts, ends, axes, steps []int64
	if opset < 10 {
		starts, ends, axes = n.Attrs.Ints("starts", nil), n.Attrs.Ints("ends", nil), n.Attrs.Ints("axes", nil)
	} else {
		vals := make([][]int64, 4)
		for i := 1; i <= 4; i++ {
			if i < len(n.Inputs) && n.Inputs[i] != "" {
				t, err := constInput(n, consts, i, "slice parameter")
				if err != nil {
					return nil, err
				}
				if vals[i-1], err = intParams(n, t, "slice parameter"); err != nil {
					return nil, err
				}
			}
		}
		starts, ends, axes, steps = vals[0], vals[1], vals[2], vals[3]
	}
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("%s: starts and ends differ in length", n.Label())
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, 1)
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, fmt.Errorf("%s: slice parameter lengths differ", n.Label())
	}
	begin := make([]int, len(in))
	step := make([]int, len(in))
	out := append([]int{}, in...)
	for i := range in {
		step[i] = 1
	}
	for i, a := range axes {
		ax, err := normAxis(n, a, len(in))
		if err != nil {
			return nil, err
		}
		dim := int64(in[ax])
		st := clamp64(steps[i], -dim-1, dim+1) // larger steps take one element at most
		if st == 0 {
			return nil, fmt.Errorf("%s: zero step", n.Label())
		}
		s, e := starts[i], ends[i]
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		if st > 0 {
			s, e = clamp64(s, 0, dim), clamp64(e, 0, dim)
			out[ax] = int(max(0, (e-s+st-1)/st))
		} else {
			s, e = clamp64(s, 0, dim-1), clamp64(e, -1, dim-1)
			out[ax] = int(max(0, (s-e-st-1)/(-st)))
		}
		begin[ax], step[ax] = int(s), int(st)
	}
	inStr := strides(in)
	idx := make([]int, numel(out))
	coord := make([]int, len(out))
	for i := range idx {
		j := 0
		for d, c := range coord {
			j += (begin[d] + c*step[d]) * inStr[d]
		}
		idx[i] = j
		increment(coord, out)
	}
	return &Movement{Shape: out, Index: idx, Data: []int{0}}, nil
}

func clamp64(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// sortedKeys is used for deterministic error messages.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
