// Package calibrate picks fixed-point settings for a model from sample inputs: for each
// candidate scale it finds the activation width that keeps every range-checked value
// in range with a safety margin, and reports constraints, accuracy against the float
// reference and argmax agreement, so the user can choose the trade-off.
package calibrate

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// Candidate is one evaluated setting.
type Candidate struct {
	Config      quant.Config `json:"config"`
	Constraints int          `json:"constraints"` // Groth16 (R1CS)
	MaxAbsErr   float64      `json:"max_abs_error"`
	Argmax      float64      `json:"argmax_agreement"` // fraction of samples
	MaxAbs      int64        `json:"max_abs_checked_value"`
	Err         string       `json:"error,omitempty"`
}

// Options control the sweep.
type Options struct {
	Scales []int
	// Margin multiplies the largest range-checked value seen before choosing Bits
	// (2 = one spare bit), so unseen inputs a little larger still fit.
	Margin float64
}

// Run evaluates every candidate scale on samples (each a full set of model inputs) and
// returns the candidates and the index of the recommended one (-1 if none works): the
// cheapest whose argmax agreement is the best seen and whose max abs error is within 2x
// of the smallest.
func Run(g *model.Graph, samples [][]*model.Tensor, base quant.Config, opts Options) ([]Candidate, int, error) {
	if len(samples) == 0 {
		return nil, -1, fmt.Errorf("calibration needs at least one sample")
	}
	if opts.Margin < 1 {
		opts.Margin = 2
	}
	want := make([][]*model.Tensor, len(samples))
	for i, s := range samples {
		out, err := g.Eval(s)
		if err != nil {
			return nil, -1, fmt.Errorf("sample %d: %w", i, err)
		}
		want[i] = out
	}
	var cands []Candidate
	for _, s := range opts.Scales {
		cands = append(cands, evaluate(g, samples, want, base, s, opts.Margin))
	}
	return cands, recommend(cands), nil
}

func evaluate(g *model.Graph, samples, want [][]*model.Tensor, base quant.Config, scale int, margin float64) Candidate {
	cfg := base
	cfg.Scale, cfg.ParamScale = scale, scale
	// Lookup tables cover at least [-8, 8) at this scale (where sigmoid/exp saturate).
	cfg.LookupBits = min(16, max(base.LookupBits, scale+4))
	return measure(g, samples, want, cfg, true, false, margin, compiled)
}

// sweep runs the integer reference on every sample and returns the largest |value| of
// the range-checked tensors (inputs and rescale outputs), the max abs error and the
// argmax agreement with the float reference, and the program it ran.
func sweep(g *model.Graph, cfg quant.Config, samples, want [][]*model.Tensor) (int64, float64, float64, *quant.Program, error) {
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	checked := map[int]bool{}
	for _, l := range p.Layers {
		if l.Kind == quant.KRescale || l.Kind == quant.KRangeChk {
			checked[l.Out] = true
		}
	}
	var maxAbs int64
	maxErr, agree := 0.0, 0
	for i, s := range samples {
		qi, err := p.QuantizeInputs(s)
		if err != nil {
			return 0, 0, 0, nil, fmt.Errorf("sample %d: %w", i, err)
		}
		r, err := p.Eval(qi)
		if err != nil {
			return 0, 0, 0, nil, fmt.Errorf("sample %d: %w", i, err)
		}
		for id, vals := range r.Values {
			if !checked[id] {
				continue
			}
			for _, v := range vals {
				maxAbs = max(maxAbs, v, -v)
			}
		}
		got := p.Dequantize(r.Outputs)
		for j := range got {
			for k, v := range got[j].Data {
				maxErr = math.Max(maxErr, math.Abs(v-want[i][j].Data[k]))
			}
		}
		if argmax(got[0].Data) == argmax(want[i][0].Data) {
			agree++
		}
	}
	return maxAbs, maxErr, float64(agree) / float64(len(samples)), p, nil
}

func argmax(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

func recommend(cands []Candidate) int {
	bestAgree, bestErr := -1.0, math.Inf(1)
	for _, c := range cands {
		if c.Err == "" {
			bestAgree = math.Max(bestAgree, c.Argmax)
			bestErr = math.Min(bestErr, c.MaxAbsErr)
		}
	}
	pick := -1
	for i, c := range cands {
		if c.Err != "" || c.Argmax < bestAgree || c.MaxAbsErr > 2*bestErr+1e-12 {
			continue
		}
		if pick < 0 || c.Constraints < cands[pick].Constraints {
			pick = i
		}
	}
	return pick
}
