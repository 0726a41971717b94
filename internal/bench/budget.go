package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// Budget is the measured constraint cost of each gadget, amortized over a layer of
// BudgetN elements (so the shared range-check and lookup arguments are spread the way a
// real layer spreads them).
type Budget struct {
	System string `json:"system"`
	// FixedMACMul is the multiplication constraints of a Gemm with fixed weights per
	// multiply-accumulate: must be 0 (products by constants are linear combinations;
	// the one constraint per output that makes an R1CS sum one wire is not counted).
	FixedMACMul float64 `json:"fixed_weight_mac_mul"`
	// PrivateMAC is the extra cost of a Gemm with private weights over the same Gemm
	// with fixed weights, per multiply-accumulate: the product plus the range check of
	// the weight (each weight is used once in a Gemm with batch 1).
	PrivateMAC float64 `json:"private_weight_mac"`
	// PrivateMACMul is the private-weight Gemm layer's own constraints per MAC, without
	// the weights' range checks.
	PrivateMACMul float64 `json:"private_weight_mac_mul"`
	Relu          float64 `json:"relu"`
	Rescale       float64 `json:"rescale"`
	RescaleRelu   float64 `json:"rescale_relu"`
	OutputEq      float64 `json:"output_equality"`
	InputCheck    float64 `json:"input_range_check"`
}

// BudgetN is the layer size budgets are measured on; BudgetK the Gemm input width.
const (
	BudgetN = 4096
	BudgetK = 64
)

// oneLayer builds input[1,k] -> op -> output. op is "identity", "relu", "gemm" (k->n,
// weights from a fixed seed) or "gemm_relu".
func oneLayer(op string, k, n int) []byte {
	b := onnxgen.New(op, rand.New(rand.NewPCG(7, 7)))
	x := "input"
	width := k
	switch op {
	case "identity":
		x = b.Node("Identity", []string{x})
	case "relu":
		x = b.Node("Relu", []string{x})
	case "gemm", "gemm_relu":
		w := b.Init("w", onnxgen.HeScale(k), int64(n), int64(k))
		bias := b.Init("b", 0.1, int64(n))
		x = b.Node("Gemm", []string{x, w, bias}, onnxgen.Int("transB", 1))
		if op == "gemm_relu" {
			x = b.Node("Relu", []string{x})
		}
		width = n
	}
	out, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, int64(k))},
		[]*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, int64(width))}, 7, 13)
	if err != nil {
		panic(err)
	}
	return out
}

// compileStats lowers and compiles a model and returns its stats.
func compileStats(onnxBytes []byte, cfg quant.Config, sys circuits.System) (*circuits.Stats, error) {
	g, err := model.Load(onnxBytes)
	if err != nil {
		return nil, err
	}
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return nil, err
	}
	_, st, err := circuits.Compile(p, sys)
	return st, err
}

// MeasureBudget derives the per-gadget budgets of sys from one-layer models:
//
//	output equality  1 per element (one AssertIsEqual; not measured, it is the gadget)
//	input check      (C(identity, 2N) - C(identity, N)) / N - output equality
//	ReLU             (C(relu, N) - C(identity, N)) / N
//	rescale          (C(gemm 1->2N) - C(gemm 1->N)) / N - output equality
//	rescale+ReLU     the same with gemm_relu (quant fuses them)
//	private MAC      (C(gemm K->N, private) - C(gemm K->N, fixed)) / (K*N)
func MeasureBudget(sys circuits.System) (*Budget, error) {
	fixed := quant.DefaultConfig()
	private := fixed
	private.ParamVis = quant.Private
	c := func(op string, k, n int, cfg quant.Config) (*circuits.Stats, error) {
		st, err := compileStats(oneLayer(op, k, n), cfg, sys)
		if err != nil {
			return nil, fmt.Errorf("budget %s %dx%d: %w", op, k, n, err)
		}
		return st, nil
	}
	var errs error
	total := func(op string, k, n int, cfg quant.Config) float64 {
		st, err := c(op, k, n, cfg)
		if err != nil {
			errs = err
			return 0
		}
		return float64(st.Constraints)
	}
	const N = BudgetN
	b := &Budget{System: string(sys), OutputEq: 1}
	id1, id2 := total("identity", N, 0, fixed), total("identity", 2*N, 0, fixed)
	b.InputCheck = (id2-id1)/N - b.OutputEq
	b.Relu = (total("relu", N, 0, fixed) - id1) / N
	b.Rescale = (total("gemm", 1, 2*N, fixed)-total("gemm", 1, N, fixed))/N - b.OutputEq
	b.RescaleRelu = (total("gemm_relu", 1, 2*N, fixed)-total("gemm_relu", 1, N, fixed))/N - b.OutputEq
	const K, M = BudgetK, BudgetN / BudgetK * 4 // 64 x 256 = 16384 MACs
	macs := float64(K * M)
	fst, err := c("gemm", K, M, fixed)
	if err != nil {
		return nil, err
	}
	pst, err := c("gemm", K, M, private)
	if err != nil {
		return nil, err
	}
	b.PrivateMAC = float64(pst.Constraints-fst.Constraints) / macs
	b.FixedMACMul = float64(linearConstraints(fst)) / macs
	b.PrivateMACMul = float64(linearConstraints(pst)) / macs
	return b, errs
}

// linearConstraints sums the constraints of the linear (Gemm/MatMul/Conv) layers,
// less those that make their sums one wire (circuits.WireSumTerms: one per output,
// not per MAC).
func linearConstraints(st *circuits.Stats) int {
	n := 0
	for _, l := range st.Layers {
		if l.Kind == string(quant.KLinear) {
			n += l.Constraints - l.SumWires
		}
	}
	return n
}
