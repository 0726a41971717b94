package model

import "fmt"

// Window is the geometry of a 2-D sliding-window op (Conv, MaxPool, AveragePool) on an
// NCHW input: kernel, strides, dilations and the resolved begin/end paddings.
type Window struct {
	N, C, H, W      int
	KH, KW          int
	SH, SW          int
	DH, DW          int
	PadT, PadL      int
	PadB, PadR      int
	OH, OW          int
	CountIncludePad bool
}

// parseWindow resolves the spatial attributes of n for an input of shape in (rank 3
// or 4; rank 3 is treated as height 1) and kernel spatial shape kernel.
func parseWindow(n *Node, in []int, kernel []int, ceilAllowed bool) (Window, error) {
	var w Window
	switch len(in) {
	case 4:
		w.N, w.C, w.H, w.W = in[0], in[1], in[2], in[3]
	case 3:
		w.N, w.C, w.H, w.W = in[0], in[1], 1, in[2]
	default:
		return w, fmt.Errorf("%w: %s: input rank %d is not supported (want NCHW or NCW)", ErrUnsupportedOp, n.Label(), len(in))
	}
	if len(kernel) == 1 {
		kernel = []int{1, kernel[0]}
	}
	if len(kernel) != 2 {
		return w, fmt.Errorf("%w: %s: kernel rank %d is not supported", ErrUnsupportedOp, n.Label(), len(kernel))
	}
	spatial := len(in) - 2
	get := func(name string, def int64) ([]int, error) {
		v := n.Attrs.Ints(name, nil)
		if v == nil {
			v = make([]int64, spatial)
			for i := range v {
				v[i] = def
			}
		}
		if len(v) != spatial {
			return nil, fmt.Errorf("%s: attribute %s has %d values, want %d", n.Label(), name, len(v), spatial)
		}
		out := make([]int, 2)
		out[0], out[1] = 1, 1
		for i, x := range v {
			if x < 1 || x > 1<<16 {
				return nil, fmt.Errorf("%s: attribute %s value %d out of range", n.Label(), name, x)
			}
			out[i+2-spatial] = int(x)
		}
		return out, nil
	}
	s, err := get("strides", 1)
	if err != nil {
		return w, err
	}
	d, err := get("dilations", 1)
	if err != nil {
		return w, err
	}
	w.KH, w.KW, w.SH, w.SW, w.DH, w.DW = kernel[0], kernel[1], s[0], s[1], d[0], d[1]
	if w.KH < 1 || w.KW < 1 {
		return w, fmt.Errorf("%s: empty kernel", n.Label())
	}
	ekH, ekW := (w.KH-1)*w.DH+1, (w.KW-1)*w.DW+1
	ceil := ceilAllowed && n.Attrs.Int("ceil_mode", 0) == 1
	switch pad := n.Attrs.String("auto_pad", "NOTSET"); pad {
	case "NOTSET":
		p := n.Attrs.Ints("pads", nil)
		if p == nil {
			p = make([]int64, 2*spatial)
		}
		if len(p) != 2*spatial {
			return w, fmt.Errorf("%s: pads has %d values, want %d", n.Label(), len(p), 2*spatial)
		}
		for _, x := range p {
			if x < 0 || x > 1<<16 {
				return w, fmt.Errorf("%s: pad %d out of range", n.Label(), x)
			}
		}
		if spatial == 2 {
			w.PadT, w.PadL, w.PadB, w.PadR = int(p[0]), int(p[1]), int(p[2]), int(p[3])
		} else {
			w.PadL, w.PadR = int(p[0]), int(p[1])
		}
		w.OH = outDim(w.H+w.PadT+w.PadB, ekH, w.SH, ceil)
		w.OW = outDim(w.W+w.PadL+w.PadR, ekW, w.SW, ceil)
	case "VALID":
		w.OH = outDim(w.H, ekH, w.SH, ceil)
		w.OW = outDim(w.W, ekW, w.SW, ceil)
	case "SAME_UPPER", "SAME_LOWER":
		w.OH, w.OW = (w.H+w.SH-1)/w.SH, (w.W+w.SW-1)/w.SW
		th := max(0, (w.OH-1)*w.SH+ekH-w.H)
		tw := max(0, (w.OW-1)*w.SW+ekW-w.W)
		if pad == "SAME_UPPER" {
			w.PadT, w.PadB, w.PadL, w.PadR = th/2, th-th/2, tw/2, tw-tw/2
		} else {
			w.PadT, w.PadB, w.PadL, w.PadR = th-th/2, th/2, tw-tw/2, tw/2
		}
	default:
		return w, fmt.Errorf("%s: auto_pad %q is not supported", n.Label(), pad)
	}
	if ceil && w.OH > 0 && (w.OH-1)*w.SH >= w.H+w.PadT {
		w.OH-- // the last window must start inside the input or its begin padding
	}
	if ceil && w.OW > 0 && (w.OW-1)*w.SW >= w.W+w.PadL {
		w.OW--
	}
	if w.OH < 1 || w.OW < 1 {
		return w, fmt.Errorf("%s: kernel larger than padded input", n.Label())
	}
	w.CountIncludePad = n.Attrs.Int("count_include_pad", 0) == 1
	return w, nil
}

// hasEmptyWindow reports whether some output position's window covers no input element
// (a max over nothing, or an average of zero values).
func (w *Window) hasEmptyWindow() bool {
	empty := func(out, size, k, s, d, pad int) bool {
		for o := 0; o < out; o++ {
			hit := false
			for i := 0; i < k && !hit; i++ {
				x := o*s - pad + i*d
				hit = x >= 0 && x < size
			}
			if !hit {
				return true
			}
		}
		return false
	}
	return empty(w.OH, w.H, w.KH, w.SH, w.DH, w.PadT) || empty(w.OW, w.W, w.KW, w.SW, w.DW, w.PadL)
}

func outDim(in, k, s int, ceil bool) int {
	if in < k {
		return 0
	}
	if ceil {
		return (in-k+s-1)/s + 1
	}
	return (in-k)/s + 1
}

// Taps returns, for output position (oh, ow), the flat spatial input offsets (y*W+x) the
// window covers inside the input, the matching kernel offsets (ky*KW+kx), and how many
// kernel positions fall into padding.
func (w *Window) Taps(oh, ow int, in, k []int) ([]int, []int, int) {
	in, k = in[:0], k[:0]
	pad := 0
	for ky := 0; ky < w.KH; ky++ {
		y := oh*w.SH - w.PadT + ky*w.DH
		for kx := 0; kx < w.KW; kx++ {
			x := ow*w.SW - w.PadL + kx*w.DW
			if y < 0 || y >= w.H || x < 0 || x >= w.W {
				// positions past the end padding (ceil mode) are not counted as pads
				if y < w.H+w.PadB && x < w.W+w.PadR {
					pad++
				}
				continue
			}
			in = append(in, y*w.W+x)
			k = append(k, ky*w.KW+kx)
		}
	}
	return in, k, pad
}
