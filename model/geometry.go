package model

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Window is the geometry of a sliding-window op (Conv, MaxPool, AveragePool) on an
// [N, C, D1, ..., Dk] input with k >= 1 spatial axes (NCW, NCHW, NCDHW): per spatial axis
// the input size, kernel, stride, dilation, resolved begin/end paddings and output size.
type Window struct {
	N, C            int
	In, K           []int // input and kernel sizes per spatial axis
	S, D            []int // strides and dilations
	PadBegin        []int
	PadEnd          []int
	Out             []int // output sizes
	CountIncludePad bool
}

// Spatial is the number of input positions per channel.
func (w *Window) Spatial() int { return numel(w.In) }

// Outputs is the number of output positions per channel.
func (w *Window) Outputs() int { return numel(w.Out) }

// KernelSize is the number of kernel taps.
func (w *Window) KernelSize() int { return numel(w.K) }

// OutShape is the output shape [N, channels, Out...].
func (w *Window) OutShape(channels int) []int {
	return append([]int{w.N, channels}, w.Out...)
}

// parseWindow resolves the spatial attributes of n for an input of shape in (rank >= 3)
// and kernel spatial shape kernel.
func parseWindow(n *Node, in []int, kernel []int, ceilAllowed bool) (Window, error) {
	var w Window
	if len(in) < 3 {
		return w, fmt.Errorf("%w: %s: input rank %d is not supported (want N, C and at least one spatial axis)", ErrUnsupportedOp, n.Label(), len(in))
	}
	spatial := len(in) - 2
	if len(kernel) != spatial {
		return w, fmt.Errorf("%s: kernel rank %d does not match input rank %d", n.Label(), len(kernel), len(in))
	}
	w.N, w.C, w.In, w.K = in[0], in[1], append([]int(nil), in[2:]...), append([]int(nil), kernel...)
	get := func(name string, def int64) ([]int, error) {
		v := n.Attrs.Ints(name, nil)
		out := make([]int, spatial)
		if v == nil {
			for i := range out {
				out[i] = int(def)
			}
			return out, nil
		}
		if len(v) != spatial {
			return nil, fmt.Errorf("%s: attribute %s has %d values, want %d", n.Label(), name, len(v), spatial)
		}
		for i, x := range v {
			if x < 1 || x > maxWindowAttr {
				return nil, fmt.Errorf("%s: attribute %s value %d out of range", n.Label(), name, x)
			}
			out[i] = int(x)
		}
		return out, nil
	}
	var err error
	if w.S, err = get("strides", 1); err != nil {
		return w, err
	}
	if w.D, err = get("dilations", 1); err != nil {
		return w, err
	}
	for _, k := range w.K {
		if k < 1 {
			return w, fmt.Errorf("%s: empty kernel", n.Label())
		}
		if k > maxWindowAttr {
			// Unchecked, (k-1)*dilation overflowed and the kernel's tap count wrapped,
			// so a hostile kernel_shape passed the work and size limits (issue 17).
			return w, fmt.Errorf("%s: kernel size %d out of range (at most %d)", n.Label(), k, maxWindowAttr)
		}
	}
	w.PadBegin, w.PadEnd, w.Out = make([]int, spatial), make([]int, spatial), make([]int, spatial)
	ceil := ceilAllowed && n.Attrs.Int("ceil_mode", 0) == 1
	pad := n.Attrs.String("auto_pad", "NOTSET")
	var p []int64
	if pad == "NOTSET" {
		if p = n.Attrs.Ints("pads", nil); p == nil {
			p = make([]int64, 2*spatial)
		}
		if len(p) != 2*spatial {
			return w, fmt.Errorf("%s: pads has %d values, want %d", n.Label(), len(p), 2*spatial)
		}
		for _, x := range p {
			if x < 0 || x > maxWindowAttr {
				return w, fmt.Errorf("%s: pad %d out of range", n.Label(), x)
			}
		}
	}
	for i := range spatial {
		ek := (w.K[i]-1)*w.D[i] + 1 // the dilated kernel's extent
		switch pad {
		case "NOTSET":
			w.PadBegin[i], w.PadEnd[i] = int(p[i]), int(p[i+spatial])
			w.Out[i] = OutputSize(w.In[i], w.PadBegin[i], w.PadEnd[i], ek, w.S[i], ceil)
		case "VALID":
			// ONNX: ceil((in - ek + 1) / s) with ceil_mode, floor((in - ek) / s) + 1
			// without: the same number, so ceil_mode does not change a VALID window.
			w.Out[i] = OutputSize(w.In[i], 0, 0, ek, w.S[i], false)
		case "SAME_UPPER", "SAME_LOWER":
			w.Out[i] = (w.In[i] + w.S[i] - 1) / w.S[i]
			total := max(0, (w.Out[i]-1)*w.S[i]+ek-w.In[i])
			w.PadBegin[i], w.PadEnd[i] = total/2, total-total/2
			if pad == "SAME_LOWER" {
				w.PadBegin[i], w.PadEnd[i] = w.PadEnd[i], w.PadBegin[i]
			}
		default:
			return w, fmt.Errorf("%s: auto_pad %q is not supported", n.Label(), pad)
		}
		if w.Out[i] < 1 {
			return w, fmt.Errorf("%s: the dilated kernel (extent %d) does not fit the padded input (%d + %d + %d) along spatial axis %d: output size %d",
				n.Label(), ek, w.In[i], w.PadBegin[i], w.PadEnd[i], i, w.Out[i])
		}
	}
	w.CountIncludePad = n.Attrs.Int("count_include_pad", 0) == 1
	return w, nil
}

// hasEmptyWindow reports whether some output position's window covers no input element
// (a max over nothing, or an average of zero values).
func (w *Window) hasEmptyWindow() bool {
	for i := range w.In {
		for o := 0; o < w.Out[i]; o++ {
			hit := false
			for k := 0; k < w.K[i] && !hit; k++ {
				x := o*w.S[i] - w.PadBegin[i] + k*w.D[i]
				hit = x >= 0 && x < w.In[i]
			}
			if !hit {
				return true
			}
		}
	}
	return false
}

// maxWindowAttr bounds kernel sizes, strides, dilations and pads: far beyond any model,
// and small enough that (kernel-1)*dilation + pads cannot overflow.
const maxWindowAttr = 1 << 16

// OutputSize is ONNX's output size of one spatial axis of a sliding window with explicit
// pads (the reference implementation's get_output_shape_explicit_padding, as PyTorch
// computes it too): floor or ceil of (in + begin + end - ek) / s, plus one, where ek is
// the dilated kernel's extent; in ceil mode the last window must start inside the input
// or its begin padding, else it is dropped. The numerator may be negative (a dilated
// kernel wider than the padded input): the result is then 0 or less, except in ceil mode,
// where ONNX and PyTorch give one window when the kernel overhangs by less than a stride.
// Callers refuse results below 1; nothing is ever allocated from an unchecked size.
func OutputSize(in, begin, end, ek, s int, ceil bool) int {
	num := in + begin + end - ek
	var out int
	if ceil {
		out = ceilDiv(num, s) + 1
		if out > 0 && (out-1)*s >= in+begin {
			out--
		}
	} else {
		out = floorDiv(num, s) + 1
	}
	return out
}

// floorDiv and ceilDiv round toward minus and plus infinity (Go's / truncates toward 0).
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// Taps returns, for the output position o (row-major over Out), the flat spatial input
// offsets (row-major over In) the window covers inside the input, the matching flat
// kernel offsets (row-major over K), and how many kernel positions fall into padding.
// in and k are reused as the result's storage.
func (w *Window) Taps(o int, in, k []int) ([]int, []int, int) {
	in, k = in[:0], k[:0]
	spatial := len(w.In)
	st, inStr := make([]int, spatial), strides(w.In)
	for i := spatial - 1; i >= 0; i-- {
		st[i] = (o%w.Out[i])*w.S[i] - w.PadBegin[i] // the window's first position
		o /= w.Out[i]
	}
	pad := 0
	for kk := range w.KernelSize() {
		off, inside, counted := 0, true, true
		r := kk
		for i := spatial - 1; i >= 0; i-- {
			x := st[i] + (r%w.K[i])*w.D[i]
			r /= w.K[i]
			if x < 0 || x >= w.In[i] {
				inside = false
				// positions past the end padding (ceil mode) are not counted as pads
				if x >= w.In[i]+w.PadEnd[i] {
					counted = false
				}
			}
			off += x * inStr[i]
		}
		switch {
		case inside:
			in = append(in, off)
			k = append(k, kk)
		case counted:
			pad++
		}
	}
	return in, k, pad
}

// checkDeclaredWindows compares the output shapes of the sliding-window nodes (Conv and
// the pools) with the shapes the model declares for them (graph outputs and value_info,
// where every dimension is a number): exporters write the shape they computed, so a
// difference means the model and zkml disagree on the geometry (ceil mode, dilation,
// padding), and the model is refused instead of proven with another output size.
func (g *Graph) checkDeclaredWindows(gp *onnx.GraphProto) error {
	declared := map[string][]int{}
	for _, vi := range append(append([]*onnx.ValueInfoProto(nil), gp.GetOutput()...), gp.GetValueInfo()...) {
		dims := vi.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 {
			continue
		}
		shape := make([]int, len(dims))
		for i, d := range dims {
			if d.GetDimParam() != "" || d.GetDimValue() <= 0 || d.GetDimValue() > MaxTensorElements {
				shape = nil // symbolic or unknown: nothing to compare
				break
			}
			shape[i] = int(d.GetDimValue())
		}
		if shape != nil {
			declared[vi.GetName()] = shape
		}
	}
	for _, n := range g.Nodes {
		switch n.Op {
		case "Conv", "MaxPool", "AveragePool":
		default:
			continue
		}
		want, ok := declared[n.Outputs[0]]
		got := g.Shapes[n.Outputs[0]]
		if !ok || len(want) != len(got) {
			continue
		}
		for i := 1; i < len(got); i++ { // the batch axis may be declared with another size
			if want[i] != got[i] {
				return invalidf("%s: the model declares output shape %v, the ONNX output-size formula gives %v (check ceil_mode, pads, strides and dilations)",
					n.Label(), want, got)
			}
		}
	}
	return nil
}
