// Package quant lowers a float ONNX graph to a fixed-point integer program and runs it.
//
// Every tensor is an integer tensor at a power-of-two scale: a value v stands for
// v / 2^scale. Activations live at Config.Scale, parameters at Config.ParamScale, and a
// product is rescaled back to Config.Scale right after the layer that made it. The
// program is written once against the generic Arith interface: the integer reference
// evaluator (IntArith) and the gnark circuit (package circuits) implement the same
// primitives, so the circuit computes the reference function bit for bit.
package quant

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Config holds the fixed-point settings of a program.
type Config struct {
	// Scale is the number of fractional bits of inputs and activations.
	Scale int `json:"scale"`
	// ParamScale is the number of fractional bits of weights and other constants.
	ParamScale int `json:"param_scale"`
	// Bits is the signed bit width a rescaled activation or an input is proven to fit
	// in, |v| < 2^(Bits-1), when neither its static bound nor Widths gives it another
	// (see Widths). Lower gives each such tensor the narrowest width that is sound and
	// cheapest to range-check (widths.go).
	Bits int `json:"bits"`
	// Widths are measured widths by tensor (Layer.Key: "input NAME" or the rescale of an
	// ONNX output, "NAME/rescale" plus "#i" for the i-th of one node): the signed width
	// the tensor needs on calibration inputs, with a 2x margin (CalibrateWidths). A
	// tensor with an entry is proven to its entry's width, or less when its static bound
	// is tighter; entries may exceed Bits (activations that grow get what they need).
	// Every width is enforced in the circuit: a value outside it cannot be proven, and
	// the integer evaluator rejects it first, naming the layer and the width.
	Widths map[string]int `json:"widths,omitempty"`
	// LookupBits bounds the domain of nonlinear lookup tables to 2^LookupBits entries;
	// inputs outside it are clamped (the functions are flat there at this precision).
	LookupBits int `json:"lookup_bits"`

	// RangeCheck selects how range checks are proven: "lookup" (default; a
	// log-derivative argument, fewest constraints, adds one commitment to the proof) or
	// "bits" (binary decomposition; more constraints, no commitment, so Groth16 proofs
	// are cheaper to verify on-chain). Lookup tables (Sigmoid, Softmax) need "lookup".
	RangeCheck string `json:"range_check,omitempty"`

	// What the proof reveals of the model inputs, outputs and parameters.
	InputVis  Visibility `json:"input_visibility"`
	OutputVis Visibility `json:"output_visibility"`
	ParamVis  Visibility `json:"param_visibility"`
}

// DefaultConfig is the configuration used when the user gives none.
func DefaultConfig() Config {
	return Config{Scale: 8, ParamScale: 8, Bits: 24, LookupBits: 12, RangeCheck: "lookup", InputVis: Private, OutputVis: Public, ParamVis: Fixed}
}

// Normalized returns c with every setting that may be left empty spelled out (an empty
// RangeCheck is "lookup"), so that equal settings have one encoding. Lower applies it
// before anything is built: the model ID hashes the program's settings, and the CLI and
// the service must give the same circuit the same ID whichever way the settings came.
func (c Config) Normalized() Config {
	if c.RangeCheck == "" {
		c.RangeCheck = "lookup"
	}
	return c
}

// Validate reports settings that cannot give a sound, working circuit.
func (c Config) Validate() error {
	switch {
	case c.Scale < 0 || c.Scale > 24:
		return fmt.Errorf("scale %d out of range [0, 24]", c.Scale)
	case c.ParamScale < 0 || c.ParamScale > 24:
		return fmt.Errorf("param_scale %d out of range [0, 24]", c.ParamScale)
	case c.Bits < c.Scale+2 || c.Bits > MaxWidth:
		return fmt.Errorf("bits %d out of range [scale+2, %d]", c.Bits, MaxWidth)
	case c.LookupBits < 4 || c.LookupBits > 16:
		return fmt.Errorf("lookup_bits %d out of range [4, 16]", c.LookupBits)
	}
	for k, w := range c.Widths {
		if w < 2 || w > MaxWidth {
			return fmt.Errorf("widths[%q] = %d out of range [2, %d]", k, w, MaxWidth)
		}
	}
	switch c.RangeCheck {
	case "", "lookup", "bits":
	default:
		return fmt.Errorf("range_check %q must be lookup or bits", c.RangeCheck)
	}
	for _, v := range []struct {
		what string
		vis  Visibility
		ok   []Visibility
	}{
		{"input_visibility", c.InputVis, []Visibility{Public, Private, Hashed}},
		{"output_visibility", c.OutputVis, []Visibility{Public, Private, Hashed}},
		{"param_visibility", c.ParamVis, []Visibility{Public, Private, Hashed, Fixed}},
	} {
		if !slices.Contains(v.ok, v.vis) {
			return fmt.Errorf("%s %q must be one of %v", v.what, v.vis, v.ok)
		}
	}
	return nil
}

// ErrOutOfRange is wrapped when a value does not fit the fixed-point range: proving
// would fail, so the integer evaluator reports it first, naming the layer.
var ErrOutOfRange = errors.New("value out of fixed-point range")

// Visibility says what a proof reveals about a tensor.
type Visibility string

// Visibilities.
const (
	Public  Visibility = "public"  // a public input of the proof
	Private Visibility = "private" // a secret witness
	Fixed   Visibility = "fixed"   // a constant baked into the circuit
	// Hashed values are secret witnesses; a public Poseidon2 hash commits to them.
	Hashed Visibility = "hashed"
	// Boundary is the visibility of the inputs or outputs of one segment of a sharded
	// model (package prover/shard) at a cut between segments: secret witnesses
	// committed like Hashed but under one tag for both sides of the cut (see
	// circuits.TagBoundary), boundary inputs range-checked to their bounds. It is never
	// a user setting (Validate refuses it).
	Boundary Visibility = "boundary"
)

// Value is one integer tensor of the program.
type Value struct {
	Shape []int
	Scale int
	// Bound is a proven upper bound on |v| for every element.
	Bound float64
}

// Param is a constant tensor of the model (weights, biases, padding constants).
type Param struct {
	Name  string
	Value int // the value id it defines
	Data  []int64
	// Bits is the signed width of the data; a witness (non-fixed) param is range-checked
	// to it in the circuit.
	Bits int
	// Internal params are constants zkml introduces (such as averaging weights); they are
	// always fixed in the circuit, whatever the model params' visibility.
	Internal bool
}

// Witness reports whether the param is a witness value rather than a circuit constant.
func (p *Program) Witness(par *Param) bool { return !par.Internal && p.ParamVis != Fixed }

// Program is a lowered model.
type Program struct {
	Config
	Values  []Value
	Inputs  []int // value ids of the graph inputs
	Outputs []int // value ids of the graph outputs
	Params  []*Param
	Layers  []*Layer
	Tables  []*Table
	// Names of the ONNX inputs and outputs, parallel to Inputs and Outputs.
	InputNames, OutputNames []string
	// InputQuant and OutputQuant, parallel to Inputs and Outputs (nil entries, or nil
	// slices, for fixed-point tensors), describe integer tensors of quantized models.
	InputQuant  []*QuantIO `json:",omitempty"`
	OutputQuant []*QuantIO `json:",omitempty"`
	// InputGroups and OutputGroups split the inputs (outputs) of a side with Boundary
	// visibility into boundary groups, each committed on its own (one public
	// commitment per group, see circuits.NewLayout): the number of consecutive tensors
	// of Inputs (Outputs) in each group, in order. nil is one group of every tensor
	// (none if there is none); a list has at least two groups of at least one tensor
	// each, summing to len(Inputs) (len(Outputs)), and only a Boundary side has one
	// (circuits.CheckGroups). Encoded only when set (encode.go), so programs without
	// them keep their model IDs.
	InputGroups  []int `json:",omitempty"`
	OutputGroups []int `json:",omitempty"`
	// PrivateInputs, on a side of inputs with Boundary visibility, is the number of
	// leading inputs that are private witnesses, not committed (the segment's own
	// pieces of private model inputs, prover/shard); the boundary groups are the inputs
	// after them. Encoded only when set (encode.go).
	PrivateInputs int `json:",omitempty"`
}

// QuantIO is an integer program input or output. An integer input holds values in
// [Lo, Hi]. With Scale set, the model's tensor is a float that QuantizeLinear (an
// input) or DequantizeLinear (an output) converts, outside the circuit and exactly as
// ONNX defines it: q = clamp(round_half_even(x / Scale[c]) + Zero[c], Lo, Hi) and
// x = (q - Zero[c]) * Scale[c], in float32, with c the element's index on Axis when
// Scale has more than one entry. The proof is over the integers q.
type QuantIO struct {
	Lo, Hi int64
	Scale  []float64 `json:",omitempty"`
	Zero   []int64   `json:",omitempty"`
	Axis   int       `json:",omitempty"`
}

// Kind is a layer's operation.
type Kind string

// Layer kinds.
const (
	KLinear   Kind = "linear"  // out[o] = sum A[ta]*B[tb] (+ C[bias])
	KAdd      Kind = "add"     // out[i] = A[ia]*MA + B[ib]*MB
	KRescale  Kind = "rescale" // out = round(in / 2^Shift), range-checked; optionally ReLU
	KRelu     Kind = "relu"    // out = max(in, 0)
	KMax      Kind = "max"     // out[o] = max over Groups[o] of in
	KMove     Kind = "move"    // out[i] = concat(ins)[Index[i]] or Fill
	KLookup   Kind = "lookup"  // out = Table[clamp(in)]
	KSoftmax  Kind = "softmax" // rows of exp(x - max) / sum
	KRangeChk Kind = "range"   // asserts |in| < 2^(Bits-1), out = in
	KClamp    Kind = "clamp"   // out = min(max(in, Lo), Hi)
	KArgMax   Kind = "argmax"  // out[o] = first index of the max of row Groups[o] (or its one-hot)
	KDiv      Kind = "div"     // out = round(A*MA / (B + MB)) for A >= 0, B + MB > 0
	// KRequant: out = clamp(roundHalfEven((in*Mult[c] + Off[c]) / 2^Shift) + Zero, Lo, Hi)
	// with c = IA[i] (0 without IA): integer requantization of int8 models.
	KRequant Kind = "requant"
)

// Layer is one step of the program. Which fields are used depends on Kind.
type Layer struct {
	Name string // the ONNX node it comes from
	Op   string // ONNX op type
	Kind Kind
	In   []int
	Out  int

	// KLinear: TermStart[o]..TermStart[o+1] index TA/TB; Bias[o] indexes In[2] (-1: none).
	// A layer with Conv or Mat set has no lists: its terms follow from the geometry.
	// Read the terms of any through Terms, LinearOutputs and NumTerms (terms.go).
	TermStart []int32
	TA, TB    []int32
	Bias      []int32
	Conv      *ConvGeom `json:"-"`
	Mat       *MatGeom  `json:"-"`
	// KLinear: 0 computes the outputs directly; n > 0 hints them and proves them by a
	// random-linear-combination check over rows of n consecutive outputs (rlc.go).
	RLC int `json:",omitempty"`
	// KAdd: broadcast indices and multipliers.
	IA, IB []int32
	MA, MB int64
	// KRescale.
	Shift int
	Relu  bool
	// KRelu / KRangeChk / KRescale: the signed bit width the value is proven within
	// (KRangeChk: the value plus Fill).
	Bits int
	// KRescale, and KRangeChk of a float input: the tensor's name in Config.Widths.
	Key string `json:",omitempty"`
	// KMax: Groups[o] lists input indices; KSoftmax: rows.
	Groups [][]int32
	// KMove.
	Index []int32
	Fill  int64
	// KLookup.
	Table *Table
	// KLookup: beyond the table's domain the function continues linearly with slope
	// TailLo / 2^TailShift below it and TailHi / 2^TailShift above it (0: flat). The
	// rescaled tail is proven within TailBits signed bits.
	TailLo    int64 `json:",omitempty"`
	TailHi    int64 `json:",omitempty"`
	TailShift int   `json:",omitempty"`
	TailBits  int   `json:",omitempty"`
	// KLookup: an input above the table's domain is not clamped; the lookup argument
	// rejects it (the integer reference reports it as out of range).
	Strict bool `json:",omitempty"`
	// KLookup, KSoftmax: the worst-case absolute error of the output against the float
	// function of the layer's fixed-point input (compile-time bound; see fitDomain).
	MaxError float64 `json:",omitempty"`
	// KClamp: the bounds; a side with Lo <= -2^(Bits-1) or Hi >= 2^(Bits-1) cannot bind
	// and is skipped.
	Lo int64 `json:",omitempty"`
	Hi int64 `json:",omitempty"`
	// KMax, KArgMax: take the minimum instead of the maximum.
	Min bool `json:",omitempty"`
	// KDiv: the proven widths of the numerator 2*A*MA + d and the divisor 2*d
	// (d = B + MB), both non-negative; Bits bounds the quotient.
	NumBits int `json:",omitempty"`
	DenBits int `json:",omitempty"`
	// KArgMax: ties select the last index (else the first); OneHot writes Hardmax's
	// one-hot rows (else the index, at the output scale).
	Last   bool `json:",omitempty"`
	OneHot bool `json:",omitempty"`
	// KRequant: per-channel multipliers and offsets, the zero point added after
	// rounding. NumBits bounds the rounded value; Bits bounds the clamp's input.
	Mult []int64 `json:",omitempty"`
	Off  []int64 `json:",omitempty"`
	Zero int64   `json:",omitempty"`
	// OutLo and OutHi, when OutHi > 0, restrict the layer to the outputs [OutLo, OutHi)
	// of its output value (flat, row-major): it computes only those, and its
	// per-output lists (TermStart/Bias, Groups, Index, IA/IB) have OutHi - OutLo
	// entries, entry i for output OutLo + i; element-wise kinds read the same indices
	// of their input, a structured KLinear its geometry's terms of those outputs.
	// Several restricted layers may write disjoint ranges of one value (split.go).
	// Encoded only when set (encode.go), so programs without them keep their model IDs.
	OutLo int `json:",omitempty"`
	OutHi int `json:",omitempty"`
}

// Table is a function tabulated on the integer domain [Lo, Lo+len(Values)).
type Table struct {
	Name   string
	Lo     int64
	Values []int64
}

func (p *Program) newValue(shape []int, scale int, bound float64) int {
	p.Values = append(p.Values, Value{Shape: append([]int(nil), shape...), Scale: scale, Bound: bound})
	return len(p.Values) - 1
}

// bitsFor is the smallest signed bit width holding every |v| <= bound.
func bitsFor(bound float64) int {
	b := 1
	for math.Ldexp(1, b-1) <= bound {
		b++
	}
	return b
}

// MaxWidth is the largest signed width Bits or a measured width (Config.Widths) may
// give a tensor.
const MaxWidth = 40

// MaxBound is the largest bound any value may have: it keeps the integer evaluator in
// int64 and every field element far from wrapping around the BN254 modulus.
const MaxBound = 1 << 62

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
