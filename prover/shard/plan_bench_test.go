package shard

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// BenchmarkPlan times SplitBudget (the sharded planner) on synthetic networks and
// reports the plan: segments, layer splits and the largest segment's estimate.
//
//	go test ./prover/shard -run '^$' -bench Plan -benchtime 1x -v
//
// The default case is small (ResNet-50 at 64x64 with a sixteenth of the channels at a
// 512 MiB budget). ZKML_PLAN=arch:size:div:budget[,...] plans others, for example
// ZKML_PLAN=resnet50:224:16:8GiB,squeezenet:224:1:8GiB (arch resnet50, squeezenet,
// vgg16 or alexnet; budget in MiB or GiB). ZKML_PLAN_TRACE=1 prints the planner's
// attempts as they end.
func BenchmarkPlan(b *testing.B) {
	spec := os.Getenv("ZKML_PLAN")
	if spec == "" {
		spec = "resnet50:64:16:512MiB"
	}
	for _, c := range strings.Split(spec, ",") {
		arch, budget, err := parseCase(c)
		if err != nil {
			b.Fatalf("ZKML_PLAN: %v", err)
		}
		b.Run(c, func(b *testing.B) {
			// Full-size ResNet-50 with random weights is a 102 MB model file, and
			// VGG-16's convolutions are over the loader's per-node work limit.
			defer func(old int, work int64) { model.MaxModelBytes, model.MaxNodeWork = old, work }(model.MaxModelBytes, model.MaxNodeWork)
			model.MaxModelBytes, model.MaxNodeWork = 1<<30, 1<<40
			m, _, _, err := arch.Build()
			if err != nil {
				b.Fatal(err)
			}
			p := lower(b, m, quant.DefaultConfig())
			limits := bench.Limits{MaxMemoryBytes: budget}
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, limits)
				if err != nil {
					b.Fatal(err)
				}
				var most, total int64
				ids := map[string]bool{} // segment programs (IDs): identical ones share keys
				for _, s := range pl.Segments {
					e, err := bench.EstimateProgram(s.Program, circuits.Groth16)
					if err != nil {
						b.Fatal(err)
					}
					if limits.Check(e) != nil {
						b.Fatalf("segment %d over the budget: %d MiB", s.Index, e.MemoryBytes>>20)
					}
					most, total = max(most, e.Constraints), total+e.Constraints
					ids[s.ID] = true
				}
				b.Logf("%s: %d layers, %d segments (%d distinct), %d layer splits, %d constraints, largest segment %d, planned in %v",
					c, len(p.Layers), len(pl.Segments), len(ids), len(pl.Splits), total, most, time.Since(start).Round(time.Millisecond))
				b.ReportMetric(float64(len(pl.Segments)), "segments")
				b.ReportMetric(float64(len(ids)), "distinct")
				b.ReportMetric(float64(total), "constraints")
			}
		})
	}
}

func parseBudget(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v << u.shift, err
		}
	}
	return 0, fmt.Errorf("budget %q: want MiB or GiB", s)
}
