package model

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// More data-movement operators: Tile, DepthToSpace, SpaceToDepth and Trilu, index maps
// like the others (free in the circuit).

func init() {
	movementOps["Tile"] = moveTile
	movementOps["DepthToSpace"] = moveDepthToSpace
	movementOps["SpaceToDepth"] = moveDepthToSpace
	movementOps["Trilu"] = moveTrilu
	arities["Tile"] = arity{2, 2}
	arities["DepthToSpace"] = arity{1, 1}
	arities["SpaceToDepth"] = arity{1, 1}
	arities["Trilu"] = arity{1, 2}
}

// moveTile repeats the input repeats[d] times along every axis d.
func moveTile(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	reps, err := constInts(n, consts, 1, "repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(in) {
		return nil, fmt.Errorf("%s: %d repeats for rank %d", n.Label(), len(reps), len(in))
	}
	// Tiling is padding at the end by (repeats-1) copies in wrap mode.
	pads := make([]int64, 2*len(in))
	for d, r := range reps {
		if r < 0 || r > MaxTensorElements {
			return nil, fmt.Errorf("%s: repeat %d out of range", n.Label(), r)
		}
		pads[len(in)+d] = int64(in[d]) * (r - 1)
	}
	return padMap(n, in, pads, "wrap", 0)
}

// moveDepthToSpace rearranges [N, C, H, W] into [N, C/b², H·b, W·b] (DepthToSpace,
// modes DCR and CRD) or back (SpaceToDepth, the inverse of DCR), b the blocksize.
func moveDepthToSpace(n *Node, shapes [][]int, _ []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	b := int(n.Attrs.Int("blocksize", 0))
	if len(in) != 4 || b < 1 || b > 1<<10 {
		return nil, fmt.Errorf("%s: input %v with blocksize %d (want NCHW and a positive blocksize)", n.Label(), in, b)
	}
	N, C, H, W := in[0], in[1], in[2], in[3]
	mode := n.Attrs.String("mode", "DCR")
	var out []int
	// src maps an output coordinate to the input's flat index.
	var src func(o []int) int
	switch {
	case n.Op == "SpaceToDepth":
		if H%b != 0 || W%b != 0 {
			return nil, fmt.Errorf("%s: height %d and width %d must be multiples of blocksize %d", n.Label(), H, W, b)
		}
		out = []int{N, C * b * b, H / b, W / b}
		src = func(o []int) int {
			blk, c := o[1]/C, o[1]%C
			i, j := blk/b, blk%b
			return ((o[0]*C+c)*H+o[2]*b+i)*W + o[3]*b + j
		}
	case mode == "DCR" || mode == "CRD":
		if C%(b*b) != 0 {
			return nil, fmt.Errorf("%s: channels %d are not a multiple of blocksize² %d", n.Label(), C, b*b)
		}
		oc := C / (b * b)
		out = []int{N, oc, H * b, W * b}
		src = func(o []int) int {
			h, i, w, j := o[2]/b, o[2]%b, o[3]/b, o[3]%b
			c := (i*b+j)*oc + o[1] // DCR: depth, then column, then row
			if mode == "CRD" {
				c = o[1]*b*b + i*b + j
			}
			return ((o[0]*C+c)*H+h)*W + w
		}
	default:
		return nil, fmt.Errorf("%w: %s: mode %q", ErrUnsupportedOp, n.Label(), mode)
	}
	if err := checkShape(out); err != nil {
		return nil, fmt.Errorf("%s: output: %v", n.Label(), err)
	}
	idx := make([]int, numel(out))
	coord := make([]int, 4)
	for i := range idx {
		idx[i] = src(coord)
		increment(coord, out)
	}
	return &Movement{Shape: out, Index: idx, Data: []int{0}}, nil
}

// moveTrilu keeps the upper (upper=1: column - row >= k) or lower (column - row <= k)
// triangle of the last two axes and zeroes the rest; k is the optional second input.
func moveTrilu(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	if len(in) < 2 {
		return nil, fmt.Errorf("%s: input rank %d, want at least 2", n.Label(), len(in))
	}
	k := int64(0)
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		ks, err := constInts(n, consts, 1, "k")
		if err != nil || len(ks) != 1 {
			return nil, fmt.Errorf("%s: k must be one integer", n.Label())
		}
		k = ks[0]
	}
	upper := n.Attrs.Int("upper", 1) != 0
	rows, cols := in[len(in)-2], in[len(in)-1]
	idx := make([]int, numel(in))
	for i := range idx {
		r, c := int64(i/cols%rows), int64(i%cols)
		keep := c-r >= k
		if !upper {
			keep = c-r <= k
		}
		if keep {
			idx[i] = i
		} else {
			idx[i] = -1
		}
	}
	return &Movement{Shape: in, Index: idx, Data: []int{0}}, nil
}

func init() {
	arities["Size"] = arity{1, 1}
	extraOps["Size"] = evalSize
	arities["CastLike"] = arity{2, 2}
	extraOps["CastLike"] = evalCastLike
}

// evalSize is Size: the element count, an int64 scalar that depends only on the
// static shape (so it folds like Shape).
func evalSize(_ *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	return []*Tensor{{Shape: []int{}, Data: []float64{float64(in[0].Numel())}, DType: int32(onnx.TensorProto_INT64)}}, nil
}

// evalCastLike is Cast to the element type of the second input.
func evalCastLike(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	to := in[1].DType
	if to == 0 {
		to = int32(onnx.TensorProto_FLOAT)
	}
	cast := &Node{Name: n.Name, Op: "Cast", Inputs: n.Inputs[:1], Outputs: n.Outputs, Attrs: Attrs{"to": {Kind: AttrInt, Int: int64(to)}}}
	f, _ := floatOps("Cast")
	return f(cast, in[:1], opset)
}
