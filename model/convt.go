package model

import "fmt"

// ConvTranspose: the float reference and the index plan the circuit lowering shares.

func init() {
	arities["ConvTranspose"] = arity{2, 3}
	extraOps["ConvTranspose"] = evalConvTranspose
}

// ConvTPlan is a ConvTranspose node's geometry for X [N, C, D1..Dk] and
// W [C, M/group, K1..Kk].
type ConvTPlan struct {
	N, C, M, Group   int
	In, Kernel, Out  []int // spatial sizes
	Strides, Dilated []int // strides and dilations per spatial axis
	PadBegin         []int // may be negative (an output_shape larger than the natural one)
}

// Shape is the output shape [N, M, Out...].
func (p *ConvTPlan) Shape() []int { return append([]int{p.N, p.M}, p.Out...) }

// PlanConvTranspose resolves a ConvTranspose node for input shape x and weight shape w.
func PlanConvTranspose(n *Node, x, w []int) (*ConvTPlan, error) {
	k := len(x) - 2
	if k < 1 || len(w) != len(x) {
		return nil, fmt.Errorf("%s: weight shape %v does not match input %v", n.Label(), w, x)
	}
	g := int(n.Attrs.Int("group", 1))
	if g < 1 || x[1]%g != 0 || w[0] != x[1] {
		return nil, fmt.Errorf("%s: group %d inconsistent with input channels %d and weight %v", n.Label(), g, x[1], w)
	}
	p := &ConvTPlan{N: x[0], C: x[1], M: w[1] * g, Group: g, In: x[2:], Kernel: w[2:]}
	ints := func(name string, def int) ([]int, error) {
		v := n.Attrs.Ints(name, nil)
		if v == nil {
			out := make([]int, k)
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) > k {
			v = v[len(v)-k:] // some exporters include the batch and channel axes
		}
		if len(v) != k {
			return nil, fmt.Errorf("%s: %s %v has %d entries, want %d", n.Label(), name, v, len(v), k)
		}
		out := make([]int, k)
		for i, e := range v {
			if e < -MaxTensorElements || e > MaxTensorElements {
				return nil, fmt.Errorf("%s: %s %v out of range", n.Label(), name, v)
			}
			out[i] = int(e)
		}
		return out, nil
	}
	var err error
	if p.Strides, err = ints("strides", 1); err != nil {
		return nil, err
	}
	if p.Dilated, err = ints("dilations", 1); err != nil {
		return nil, err
	}
	outPad, err := ints("output_padding", 0)
	if err != nil {
		return nil, err
	}
	if ks := n.Attrs.Ints("kernel_shape", nil); ks != nil {
		for i, e := range ks[max(0, len(ks)-k):] {
			if int(e) != p.Kernel[i] {
				return nil, fmt.Errorf("%s: kernel_shape %v does not match weight %v", n.Label(), ks, w)
			}
		}
	}
	for i := range k {
		if p.Strides[i] < 1 || p.Dilated[i] < 1 || outPad[i] < 0 {
			return nil, fmt.Errorf("%s: strides, dilations and output_padding must be positive", n.Label())
		}
	}
	autoPad := n.Attrs.String("auto_pad", "NOTSET")
	outShape := n.Attrs.Ints("output_shape", nil)
	p.PadBegin, p.Out = make([]int, k), make([]int, k)
	natural := func(i int) int { return p.Strides[i]*(p.In[i]-1) + outPad[i] + (p.Kernel[i]-1)*p.Dilated[i] + 1 }
	switch {
	case outShape != nil || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
		var target []int
		if outShape != nil {
			if target, err = ints("output_shape", 0); err != nil {
				return nil, err
			}
		} else {
			for i := range k {
				target = append(target, p.In[i]*p.Strides[i])
			}
		}
		for i := range k {
			// total may be negative (a larger output); halve it rounding down, as ONNX.
			total := natural(i) - target[i]
			half := total >> 1
			p.PadBegin[i] = total - half
			if autoPad == "SAME_UPPER" {
				p.PadBegin[i] = half
			}
			p.Out[i] = target[i]
		}
	case autoPad == "NOTSET" || autoPad == "VALID":
		raw := n.Attrs.Ints("pads", nil)
		if raw != nil && len(raw) != 2*k {
			return nil, fmt.Errorf("%s: pads %v has %d entries, want %d", n.Label(), raw, len(raw), 2*k)
		}
		for i := range k {
			begin, end := 0, 0
			if raw != nil && autoPad == "NOTSET" {
				begin = int(max(-MaxTensorElements, min(MaxTensorElements, raw[i])))
				end = int(max(-MaxTensorElements, min(MaxTensorElements, raw[k+i])))
			}
			p.PadBegin[i], p.Out[i] = begin, natural(i)-begin-end
		}
	default:
		return nil, fmt.Errorf("%w: %s: auto_pad %q", ErrUnsupportedOp, n.Label(), autoPad)
	}
	if err := checkOutput(n, p.Shape()); err != nil {
		return nil, err
	}
	for _, o := range p.Out {
		if o < 1 {
			return nil, fmt.Errorf("%s: output size %v is empty", n.Label(), p.Out)
		}
	}
	if err := checkWork(n, p.N*p.C*numel(p.In), p.M/p.Group, numel(p.Kernel)); err != nil {
		return nil, err
	}
	return p, nil
}

// Taps calls emit(o, xi, wi) for every product x[xi]*w[wi] that output element o sums
// (row-major indices into the output, X and W).
func (p *ConvTPlan) Taps(emit func(o, xi, wi int)) {
	k := len(p.In)
	inSize, kSize, outSize := numel(p.In), numel(p.Kernel), numel(p.Out)
	inSt, kSt, outSt := strides(p.In), strides(p.Kernel), strides(p.Out)
	cPerG, mPerG := p.C/p.Group, p.M/p.Group
	pos := make([]int, k)
	for b := range p.N {
		for c := range p.C {
			g := c / cPerG
			for s := range inSize {
				xi := (b*p.C+c)*inSize + s
				for kk := range kSize {
					off, ok := 0, true
					for d := range k {
						pos[d] = (s/inSt[d])%p.In[d]*p.Strides[d] - p.PadBegin[d] + (kk/kSt[d])%p.Kernel[d]*p.Dilated[d]
						if pos[d] < 0 || pos[d] >= p.Out[d] {
							ok = false
							break
						}
						off += pos[d] * outSt[d]
					}
					if !ok {
						continue
					}
					for mm := range mPerG {
						m := g*mPerG + mm
						emit((b*p.M+m)*outSize+off, xi, (c*mPerG+mm)*kSize+kk)
					}
				}
			}
		}
	}
}

func evalConvTranspose(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	p, err := PlanConvTranspose(n, in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	out := NewTensor(p.Shape()...)
	x, w := in[0].Data, in[1].Data
	p.Taps(func(o, xi, wi int) { out.Data[o] += x[xi] * w[wi] })
	if len(in) > 2 && in[2] != nil {
		if in[2].Numel() != p.M {
			return nil, fmt.Errorf("%s: bias shape %v, want [%d]", n.Label(), in[2].Shape, p.M)
		}
		per := numel(p.Out)
		for o := range out.Data {
			out.Data[o] += in[2].Data[(o/per)%p.M]
		}
	}
	return []*Tensor{out}, nil
}
