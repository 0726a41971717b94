package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// BenchmarkSegments proves chosen segments of a sharded plan of a synthetic network
// one by one (Groth16: compile, development setup, ProveSegment, verify of the
// decoded proof against its public witness), so that a network too large to prove
// whole on this machine is measured on a few segments and extrapolated. Per segment
// it logs the layers [First, End) with the first and last layer names, the estimated
// and compiled constraints, the seconds and the Go heap peak of each step (live and
// unswept heap objects, sampled every 20 ms after a GC); it reports the totals over
// the measured segments. Each segment's circuit and keys are dropped before the next.
//
//	go test ./prover/shard -run '^$' -bench Segments -benchtime 1x -v -timeout 30m
//
// The default case is SqueezeNet 1.0 at 64x64 with a sixteenth of the channels at a
// 1 GiB budget (3 segments, all measured, well under a minute). Environment:
//
//	ZKML_SEGMENTS=arch:size:div:budget  the network and budget, as one ZKML_PLAN case
//	                                    of BenchmarkPlan: squeezenet:224:1:8GiB
//	ZKML_SEGMENTS_AT=0,5,12             the segments to measure (default all)
//	ZKML_PLAN_CACHE=/path/plan.json     the plan's splits and cuts: read and rebuilt
//	                                    with SplitWith if the file exists (planning
//	                                    full width takes minutes), else planned with
//	                                    SplitBudget and written there
//
// for example
//
//	ZKML_SEGMENTS=squeezenet:224:1:8GiB ZKML_SEGMENTS_AT=0,12 ZKML_PLAN_CACHE=/tmp/sq224.json \
//	  go test ./prover/shard -run '^$' -bench Segments -benchtime 1x -v -timeout 6h
func BenchmarkSegments(b *testing.B) {
	spec := os.Getenv("ZKML_SEGMENTS")
	if spec == "" {
		spec = "squeezenet:64:16:1GiB"
	}
	arch, budget, err := parseCase(spec)
	if err != nil {
		b.Fatalf("ZKML_SEGMENTS: %v", err)
	}
	// Full-size VGG-16's convolutions are over the loader's per-node work limit (as
	// zkml bench arch lifts it), and ResNet-50 with random weights is a 102 MB file.
	defer func(old int, work int64) { model.MaxModelBytes, model.MaxNodeWork = old, work }(model.MaxModelBytes, model.MaxNodeWork)
	model.MaxModelBytes, model.MaxNodeWork = 1<<30, 1<<40
	onnx, inputJSON, _, err := arch.Build()
	if err != nil {
		b.Fatal(err)
	}
	g, p, err := prover.Build(onnx, quant.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	xs, err := model.ParseInput(inputJSON, g)
	if err != nil {
		b.Fatal(err)
	}
	inputs, err := p.QuantizeInputs(xs)
	if err != nil {
		b.Fatal(err)
	}
	pl := cachedPlan(b, p, spec, budget, os.Getenv("ZKML_PLAN_CACHE"))
	at, err := segmentList(os.Getenv("ZKML_SEGMENTS_AT"), len(pl.Segments))
	if err != nil {
		b.Fatalf("ZKML_SEGMENTS_AT: %v", err)
	}
	ins, outs, _, err := pl.Activations(p, inputs)
	if err != nil {
		b.Fatal(err)
	}
	const sys = circuits.Groth16
	b.ResetTimer()
	for range b.N {
		var tot segmentRun
		var est int64
		for _, i := range at {
			s := pl.Segments[i]
			e, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				b.Fatal(err)
			}
			r, err := runSegment(s, sys, ins[i], outs[i])
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("segment %d/%d: layers [%d, %d) %q .. %q: %d constraints (estimate %d, %+.1f%%), "+
				"compile %.1fs setup %.1fs prove %.1fs (gnark %.1fs) verify %.3fs, heap peak MiB compile %d setup %d prove %d verify %d",
				i, len(pl.Segments), s.First, s.End, pl.Program.Layers[s.First].Name, pl.Program.Layers[s.End-1].Name,
				r.constraints, e.Constraints, 100*float64(e.Constraints-int64(r.constraints))/float64(r.constraints),
				r.secs[0], r.secs[1], r.secs[2], r.gnarkProve, r.secs[3], r.peak[0]>>20, r.peak[1]>>20, r.peak[2]>>20, r.peak[3]>>20)
			tot.constraints += r.constraints
			est += e.Constraints
			for k := range r.secs {
				tot.secs[k] += r.secs[k]
				tot.peak[k] = max(tot.peak[k], r.peak[k])
			}
		}
		b.Logf("%s: %d of %d segments: %d constraints (estimate %d), compile %.1fs setup %.1fs prove %.1fs verify %.3fs, heap peak %d MiB%s",
			spec, len(at), len(pl.Segments), tot.constraints, est, tot.secs[0], tot.secs[1], tot.secs[2], tot.secs[3],
			max(tot.peak[0], tot.peak[1], tot.peak[2], tot.peak[3])>>20, maxRSS())
		b.ReportMetric(float64(len(at)), "segments")
		b.ReportMetric(float64(tot.constraints), "constraints")
		b.ReportMetric(float64(est), "est-constraints")
		for k, name := range []string{"compile", "setup", "prove", "verify"} {
			b.ReportMetric(tot.secs[k], name+"-s")
		}
		b.ReportMetric(float64(max(tot.peak[0], tot.peak[1], tot.peak[2], tot.peak[3])>>20), "peak-heap-MiB")
	}
}

// parseCase reads an arch:size:div:budget case (BenchmarkPlan's ZKML_PLAN, for
// ParseArch's names: resnet50, squeezenet, vgg16, alexnet), classes 1000/div.
func parseCase(c string) (onnxgen.Arch, int64, error) {
	f := strings.Split(c, ":")
	if len(f) != 4 {
		return nil, 0, fmt.Errorf("case %q: want arch:size:div:budget", c)
	}
	size, err1 := strconv.Atoi(f[1])
	div, err2 := strconv.Atoi(f[2])
	budget, err3 := parseBudget(f[3])
	if err := errors.Join(err1, err2, err3); err != nil || size <= 0 || div <= 0 {
		return nil, 0, fmt.Errorf("case %q: bad number (%v)", c, err)
	}
	arch, err := onnxgen.ParseArch(f[0], size, div, 1000/div, false)
	return arch, budget, err
}

// segmentList parses a comma-separated list of segment indices below n (all of them
// when s is empty).
func segmentList(s string, n int) ([]int, error) {
	var at []int
	if s == "" {
		for i := range n {
			at = append(at, i)
		}
		return at, nil
	}
	for _, f := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 || i >= n {
			return nil, fmt.Errorf("segment %q: want an index in [0, %d)", f, n)
		}
		at = append(at, i)
	}
	return at, nil
}

// planCache is what ZKML_PLAN_CACHE records of a plan: enough to rebuild it with
// SplitWith, and the case and plan ID to check the rebuilt plan against.
type planCache struct {
	Case   string       `json:"case"`
	PlanID string       `json:"plan_id"`
	Splits []LayerSplit `json:"splits"`
	Cuts   []int        `json:"cuts"`
}

// cachedPlan rebuilds the plan recorded at path, or plans p with SplitBudget at budget
// and records it there (path "": plans, records nothing).
func cachedPlan(b *testing.B, p *quant.Program, spec string, budget int64, path string) *Plan {
	b.Helper()
	start := time.Now()
	if path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			var c planCache
			if err := json.Unmarshal(data, &c); err != nil {
				b.Fatalf("%s: %v", path, err)
			}
			if c.Case != spec {
				b.Fatalf("%s records a plan of %s, not %s", path, c.Case, spec)
			}
			pl, err := SplitWith(p, c.Splits, c.Cuts)
			if err != nil {
				b.Fatal(err)
			}
			if pl.ID != c.PlanID {
				b.Fatalf("%s records plan %s, its splits and cuts rebuild %s (another zkml version?)", path, c.PlanID, pl.ID)
			}
			b.Logf("%s: plan %.12s from %s: %d layers, %d segments, %d layer splits, rebuilt in %v",
				spec, pl.ID, path, len(pl.Program.Layers), len(pl.Segments), len(pl.Splits), time.Since(start).Round(time.Millisecond))
			return pl
		} else if !errors.Is(err, fs.ErrNotExist) {
			b.Fatal(err)
		}
	}
	pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, bench.Limits{MaxMemoryBytes: budget})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: plan %.12s: %d layers, %d segments, %d layer splits, planned in %v",
		spec, pl.ID, len(pl.Program.Layers), len(pl.Segments), len(pl.Splits), time.Since(start).Round(time.Millisecond))
	if path != "" {
		data, err := json.MarshalIndent(planCache{Case: spec, PlanID: pl.ID, Splits: pl.Splits, Cuts: pl.Cuts()}, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return pl
}

// segmentRun is one segment's measurement: compiled constraints, and per step
// (compile, setup, prove, verify) the seconds and the heap peak in bytes.
type segmentRun struct {
	constraints int
	secs        [4]float64
	peak        [4]uint64
	gnarkProve  float64 // SegmentProof.ProveSeconds: the Groth16 prover alone
}

// runSegment compiles, sets up, proves and verifies segment s on its boundary
// tensors; the circuit and keys are garbage once it returns.
func runSegment(s *Segment, sys circuits.System, in, out [][]int64) (*segmentRun, error) {
	r := &segmentRun{}
	var (
		ccs    constraint.ConstraintSystem
		pk, vk any
		sp     *SegmentProof
	)
	steps := []func() error{
		func() (err error) {
			ccs, _, err = circuits.Compile(s.Program, sys)
			return err
		},
		func() (err error) {
			pk, vk, err = prover.SetupKeys(ccs, sys)
			return err
		},
		func() (err error) {
			// ProveSegment assigns the witness, proves and checks the proof with vk.
			sp, err = ProveSegment(s, sys, ccs, pk, vk, in, out)
			return err
		},
		func() error {
			proof, err := verifier.DecodeProof(string(sys), sp.Proof)
			if err != nil {
				return err
			}
			pub, err := witness.New(circuits.Field)
			if err != nil {
				return err
			}
			if err := pub.UnmarshalBinary(sp.Public); err != nil {
				return err
			}
			if err := prover.VerifyWitness(sys, vk, proof, pub); err != nil {
				return fmt.Errorf("segment %d: proof does not verify: %w", s.Index, err)
			}
			return nil
		},
	}
	for k, step := range steps {
		if k == 2 {
			r.constraints = ccs.GetNbConstraints()
		}
		if k == 3 {
			ccs, pk = nil, nil // the verify step holds only the verifying key
		}
		runtime.GC()
		stop := sampleHeap()
		start := time.Now()
		err := step()
		r.secs[k] = time.Since(start).Seconds()
		r.peak[k] = stop()
		if err != nil {
			return nil, err
		}
	}
	r.gnarkProve = sp.ProveSeconds
	return r, nil
}

// sampleHeap samples the Go heap (live and unswept objects) every 20 ms until the
// returned function is called, which returns the peak in bytes.
func sampleHeap() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	quit, peak := make(chan struct{}), make(chan uint64)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var most uint64
		read := func() {
			metrics.Read(s)
			most = max(most, s[0].Value.Uint64())
		}
		read()
		for {
			select {
			case <-quit:
				read()
				peak <- most
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(quit)
		return <-peak
	}
}

// maxRSS is ", process peak RSS N MiB" from /proc/self/status (VmHWM), or "" where
// that is not readable.
func maxRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
				return fmt.Sprintf(", process peak RSS %d MiB", kb>>10)
			}
		}
	}
	return ""
}
