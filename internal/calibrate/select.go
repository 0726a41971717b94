package calibrate

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// DefaultRelativeError is compile's default error target: 1e-3 of the range of the
// model's outputs over the samples.
const DefaultRelativeError = 1e-3

// Target is the accuracy goal of Select and the settings it may not change.
type Target struct {
	// AbsError bounds the max abs error of every output element on every sample
	// against the float reference. 0: RelError times the outputs' range (the largest
	// minus the smallest float output over the samples; 1 if they are all equal).
	AbsError float64
	RelError float64
	// Fixed settings (given explicitly) are kept as in the base config and validated
	// by the same rules; the others are searched.
	FixedScale, FixedParamScale, FixedLookupBits, FixedBits bool
	// Margin multiplies the largest range-checked value seen before choosing Bits
	// (default 2).
	Margin float64
	// Scales bounds the scale search (default 2..16).
	Scales []int
}

// Choice is the setting Select picked.
type Choice struct {
	Candidate
	// Target is the absolute error target; Range the outputs' range it came from
	// (0 when the target was given as an absolute error).
	Target, Range float64
	// Tried is every setting evaluated, in order; Candidate.Constraints there is the
	// admission estimate (an upper bound on the Groth16 constraints) of the program
	// compile builds at that setting (with the widths measured on the samples, in
	// Config.Widths), by which the settings are ranked.
	Tried []Candidate
}

// ErrTarget is wrapped when no setting allowed meets the error target.
var ErrTarget = errors.New("error target not met")

// Select picks the fixed-point settings for g from samples: among the scales, param
// scales and lookup-table sizes that keep every value in range, lower without
// refusing a table and keep the max abs error on the samples within the target, the
// one with the fewest (estimated Groth16) constraints. The activation width Bits comes
// from the values seen, times the margin, as for Run, unless fixed. Settings fixed in
// the target are only validated: an explicit setting that cannot meet the target is an
// error (wrapping ErrTarget) naming it.
func Select(g *model.Graph, samples [][]*model.Tensor, base quant.Config, tgt Target) (*Choice, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("choosing settings needs at least one sample input")
	}
	if tgt.Margin < 1 {
		tgt.Margin = 2
	}
	if tgt.RelError <= 0 {
		tgt.RelError = DefaultRelativeError
	}
	want := make([][]*model.Tensor, len(samples))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range samples {
		out, err := g.Eval(s)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		want[i] = out
		for _, t := range out {
			for _, v := range t.Data {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	ch := &Choice{Target: tgt.AbsError}
	if ch.Target <= 0 {
		ch.Range = hi - lo
		if !(ch.Range > 0) {
			ch.Range = 1
		}
		ch.Target = tgt.RelError * ch.Range
	}
	scales := tgt.Scales
	if len(scales) == 0 {
		for s := 2; s <= 16; s++ {
			scales = append(scales, s)
		}
	}
	if tgt.FixedScale {
		scales = []int{base.Scale}
	}
	best := -1
	consider := func(cfg quant.Config) {
		c := measure(g, samples, want, cfg, !tgt.FixedBits, true, tgt.Margin, estimate)
		if c.Err == "" && c.MaxAbsErr > ch.Target {
			c.Err = fmt.Sprintf("max abs error %.3g above the target %.3g", c.MaxAbsErr, ch.Target)
		}
		ch.Tried = append(ch.Tried, c)
		if c.Err == "" && (best < 0 || c.Constraints < ch.Tried[best].Constraints) {
			best = len(ch.Tried) - 1
		}
	}
	// Scale and param scale, at the base lookup size.
	for _, s := range scales {
		pss := []int{s, s - 2, s + 2}
		if tgt.FixedParamScale {
			pss = []int{base.ParamScale}
		}
		for _, ps := range pss {
			if ps < 0 || ps > 24 {
				continue
			}
			cfg := base
			cfg.Scale, cfg.ParamScale = s, ps
			consider(cfg)
		}
	}
	// Then the table sizes at the best scales: the smallest table that still works
	// is usually the cheapest (tables grow past it where their function needs it).
	if best >= 0 && !tgt.FixedLookupBits && hasTables(g, ch.Tried[best].Config) {
		at := ch.Tried[best].Config
		for lb := 4; lb <= 16; lb += 2 {
			if lb != at.LookupBits {
				cfg := at
				cfg.LookupBits = lb
				consider(cfg)
			}
		}
	}
	if best < 0 {
		return ch, noChoice(ch, tgt, base)
	}
	ch.Candidate = ch.Tried[best]
	return ch, nil
}

// noChoice explains why nothing met the target, naming the explicit settings.
func noChoice(ch *Choice, tgt Target, base quant.Config) error {
	var fixed []string
	if tgt.FixedScale {
		fixed = append(fixed, fmt.Sprintf("--scale %d", base.Scale))
	}
	if tgt.FixedParamScale {
		fixed = append(fixed, fmt.Sprintf("--param-scale %d", base.ParamScale))
	}
	if tgt.FixedLookupBits {
		fixed = append(fixed, fmt.Sprintf("--lookup-bits %d", base.LookupBits))
	}
	if tgt.FixedBits {
		fixed = append(fixed, fmt.Sprintf("--bits %d", base.Bits))
	}
	// The most accurate setting that ran says how far off the target is.
	why := ""
	closest := -1
	for i, c := range ch.Tried {
		if c.Err == "" || strings.HasPrefix(c.Err, "max abs error") {
			if closest < 0 || c.MaxAbsErr < ch.Tried[closest].MaxAbsErr {
				closest = i
			}
		}
	}
	if closest >= 0 {
		c := ch.Tried[closest].Config
		why = fmt.Sprintf("; the most accurate, scale %d, param scale %d, lookup bits %d, bits %d, errs by %.3g", c.Scale, c.ParamScale, c.LookupBits, c.Bits, ch.Tried[closest].MaxAbsErr)
	} else if len(ch.Tried) > 0 {
		why = "; " + ch.Tried[len(ch.Tried)-1].Err
	}
	if len(fixed) > 0 {
		return fmt.Errorf("%w: with %s no setting keeps the max abs error on the samples within %.3g%s: change or drop %s, or raise --max-error",
			ErrTarget, strings.Join(fixed, ", "), ch.Target, why, strings.Join(fixed, ", "))
	}
	return fmt.Errorf("%w: no setting keeps the max abs error on the samples within %.3g%s: raise --max-error", ErrTarget, ch.Target, why)
}

// hasTables reports whether g lowers to any lookup table at cfg (otherwise the table
// size does not matter).
func hasTables(g *model.Graph, cfg quant.Config) bool {
	p, err := quant.Lower(g, cfg)
	return err == nil && len(p.Tables) > 0
}

// estimate is the admission estimate of the Groth16 constraints: computed without
// building the circuit, so that many settings can be ranked quickly.
func estimate(p *quant.Program) (int, error) {
	e, err := bench.EstimateProgram(p, circuits.Groth16)
	if err != nil {
		return 0, err
	}
	return int(e.Constraints), nil
}

// compiled counts the Groth16 constraints of the compiled circuit.
func compiled(p *quant.Program) (int, error) {
	_, st, err := circuits.Compile(p, circuits.Groth16)
	if err != nil {
		return 0, err
	}
	return st.Constraints, nil
}

// measure evaluates cfg on the samples: with fitBits, Bits is first chosen from the
// largest range-checked value seen (at the widest setting) times margin; with widths,
// the per-tensor widths are then measured on the samples (quant.CalibrateWidths, as
// compile lowers with them; capped by Bits when it is not fitted); then the max abs
// error, argmax agreement and constraints (by count) of the program cfg lowers to,
// the one compile builds. A setting that
// cannot run is returned with Err set, naming the settings.
func measure(g *model.Graph, samples, want [][]*model.Tensor, cfg quant.Config, fitBits, widths bool, margin float64, count func(*quant.Program) (int, error)) Candidate {
	c := Candidate{Config: cfg}
	fail := func(err error) Candidate {
		c.Err = fmt.Sprintf("scale %d, param scale %d, lookup bits %d, bits %d: %v", c.Config.Scale, c.Config.ParamScale, c.Config.LookupBits, c.Config.Bits, err)
		return c
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	if fitBits {
		// The widest setting that lowers: a wider activation range makes the static
		// bounds, and so the tables, larger, and lowering may refuse them.
		var maxAbs int64
		var err error
		for _, bits := range []int{40, 32, 24, cfg.Scale + 8, cfg.Scale + 6, cfg.Scale + 4, cfg.Scale + 3} {
			wide := cfg
			wide.Bits = max(bits, cfg.Scale+2)
			c.Config = wide
			if maxAbs, _, _, _, err = sweep(g, wide, samples, want); err == nil {
				break
			}
		}
		if err != nil {
			return fail(err)
		}
		bits := 1
		for math.Ldexp(1, bits-1) <= float64(maxAbs)*margin {
			bits++
		}
		cfg.Bits = min(40, max(bits, cfg.Scale+2))
		c.Config, c.MaxAbs = cfg, maxAbs
	}
	if widths {
		// The widths compile lowers with: measured on the samples (an explicit Bits caps
		// them), so that the error and the count below are those of the program compile
		// builds, whose tables may differ from those at the global width.
		capBits := 0
		if !fitBits {
			capBits = cfg.Bits
		}
		wcfg, err := quant.CalibrateWidths(g, cfg, samples, capBits)
		if err != nil {
			return fail(err)
		}
		cfg = wcfg
		c.Config = cfg
	}
	maxAbs, maxErr, agree, p, err := sweep(g, cfg, samples, want)
	if err != nil {
		return fail(err)
	}
	c.MaxAbs = max(c.MaxAbs, maxAbs)
	c.MaxAbsErr, c.Argmax = maxErr, agree
	if c.Constraints, err = count(p); err != nil {
		return fail(err)
	}
	return c
}
