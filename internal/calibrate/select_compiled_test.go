package calibrate

import (
	"testing"

	"github.com/zkml/zkml/model/quant"
)

// How far Select's count (the admission estimate, an upper bound) may exceed the
// compiled circuit's Groth16 constraints: 10% of them plus the fixed allowances a
// small circuit is dominated by (internal/bench: 64 for the commitment, 384 per table,
// of which the circuits here use a fraction).
const (
	selectTolerance      = 0.10
	selectToleranceFixed = 300
)

// TestSelectCountsCompiledProgram (#15): Select ranks settings by the program compile
// builds (with the widths measured on the samples), so the count it reports for its
// choice is the compiled circuit's, up to the estimate's slack; and the circuit is not
// larger than that of the settings the earlier ranking (by the program at the global
// width) chose. Before, 1l_softmax's choice (scale 13, lookup bits 12) was estimated
// at 1,186 constraints and, with the measured widths, lowered to a single exp table of
// more than 2^12 entries, compiled far larger.
func TestSelectCountsCompiledProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles circuits after a full settings search")
	}
	for _, tc := range []struct {
		model string
		rel   float64
		// The settings the earlier ranking chose (scale, param scale, lookup bits, bits).
		old [4]int
	}{
		{"1l_softmax", 1e-2, [4]int{13, 13, 12, 17}},
		{"2l_relu_sigmoid_small", 1e-2, [4]int{10, 10, 4, 12}},
	} {
		t.Run(tc.model, func(t *testing.T) {
			g, samples := loadExample(t, tc.model)
			ch, err := Select(g, samples, quant.DefaultConfig(), Target{RelError: tc.rel})
			if err != nil {
				t.Fatal(err)
			}
			if len(ch.Config.Widths) == 0 {
				t.Fatalf("the choice carries no measured widths: %+v", ch.Config)
			}
			p, err := quant.Lower(g, ch.Config)
			if err != nil {
				t.Fatal(err)
			}
			got, err := compiled(p)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Constraints < got || float64(ch.Constraints-got) > selectTolerance*float64(got)+selectToleranceFixed {
				t.Errorf("Select counts %d constraints for its choice, the compiled circuit has %d (want an upper bound within %.0f%% + %d)",
					ch.Constraints, got, 100*selectTolerance, selectToleranceFixed)
			}
			old := quant.DefaultConfig()
			old.Scale, old.ParamScale, old.LookupBits, old.Bits = tc.old[0], tc.old[1], tc.old[2], tc.old[3]
			if old, err = quant.CalibrateWidths(g, old, samples, 0); err != nil {
				t.Fatal(err)
			}
			po, err := quant.Lower(g, old)
			if err != nil {
				t.Fatal(err)
			}
			was, err := compiled(po)
			if err != nil {
				t.Fatal(err)
			}
			if got > was {
				t.Errorf("the choice compiles to %d constraints, the earlier ranking's settings %v to %d", got, tc.old, was)
			}
			c := ch.Config
			t.Logf("chose scale %d, param scale %d, lookup bits %d, bits %d: %d estimated, %d compiled (+%.1f%%); earlier choice %v: %d compiled",
				c.Scale, c.ParamScale, c.LookupBits, c.Bits, ch.Constraints, got, 100*float64(ch.Constraints-got)/float64(got), tc.old, was)
		})
	}
}
