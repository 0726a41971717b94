package hintfuzz

import (
	"hash/fnv"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/consensys/gnark/logger"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// The test corpus: the repository's example model, and (where the checkout has them
// beside it, as CI does) the shared example models and ONNX node tests the other
// suites use.
const (
	examplesDir  = "../../examples"
	sharedModels = "../../../shared/models"
	nodeTestsDir = "../../../shared/conformance/onnx-node"
)

// quiet silences gnark's logger (the solver logs every failed constraint).
func quiet(t testing.TB) {
	prev := logger.Logger()
	logger.Disable()
	t.Cleanup(func() { logger.Set(prev) })
}

var (
	corpusOnce  sync.Once
	corpusCases []Case
	corpusErr   error
)

// corpus lowers every case once per test binary.
func corpus(t testing.TB) []Case {
	t.Helper()
	corpusOnce.Do(func() {
		corpusCases, corpusErr = Models(examplesDir, quant.DefaultConfig())
		if corpusErr != nil {
			return
		}
		shared, err := Models(sharedModels, quant.DefaultConfig())
		if err != nil {
			corpusErr = err
			return
		}
		nodes, err := NodeTests(nodeTestsDir)
		if err != nil {
			corpusErr = err
			return
		}
		corpusCases = append(append(corpusCases, shared...), nodes...)
	})
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	if len(corpusCases) < 2 {
		t.Logf("only %d case(s): the shared models and node tests are not beside this checkout", len(corpusCases))
	}
	return corpusCases
}

func seed(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// tally counts perturbation outcomes.
type tally struct {
	sites, tried, rejected, benign, forged int
	byHint                                 map[string]int
}

func (s *tally) add(o *tally) {
	s.sites += o.sites
	s.tried += o.tried
	s.rejected += o.rejected
	s.benign += o.benign
	s.forged += o.forged
	for k, v := range o.byHint {
		s.byHint[k] += v
	}
}

func newTally() *tally { return &tally{byHint: map[string]int{}} }

// budget says how much of a target to fuzz: a number of constraint solves shared by
// the perturbations (so a large circuit gets fewer), within [min, max] perturbations.
type budget struct {
	solved   int // constraints solved per case
	min, max int // perturbations per case
	sites    int // call sites per hint: the first, the last, and random others
}

// plan lists the perturbations to try on tg: per hint, a few call sites (the first,
// the last, random others); per site the core rewrites of each output, then the joint
// ones, then the others. The hints take turns, so every hint of the circuit is tried
// even when the budget is small.
func plan(tg *Target, b budget, rng *rand.Rand) []trial {
	n := b.solved / max(tg.NbConstraints(), 1)
	n = min(max(n, b.min), b.max)
	byHint := map[string][]Site{}
	var names []string
	for _, s := range tg.Sites() {
		if byHint[s.Name] == nil {
			names = append(names, s.Name)
		}
		byHint[s.Name] = append(byHint[s.Name], s)
	}
	queues := make([][]trial, len(names))
	for h, name := range names {
		ss := byHint[name]
		idx := []int{0}
		if len(ss) > 1 {
			idx = append(idx, len(ss)-1)
		}
		if len(ss) > 2 {
			for _, i := range rng.Perm(len(ss) - 2)[:min(b.sites-2, len(ss)-2)] {
				idx = append(idx, i+1)
			}
		}
		var core, rest []trial
		for _, i := range idx {
			for _, p := range Perturbations(ss[i], rng, -1) {
				if p.Core {
					core = append(core, trial{ss[i], p})
				} else {
					rest = append(rest, trial{ss[i], p})
				}
			}
		}
		rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
		queues[h] = append(core, rest...)
	}
	var out []trial
	for k := 0; len(out) < n; k++ {
		added := false
		for _, q := range queues {
			if k < len(q) && len(out) < n {
				out = append(out, q[k])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

type trial struct {
	site Site
	p    Perturbation
}

// fuzzTarget tries the budgeted perturbations on tg and fails the test, naming model,
// layer, hint and perturbation, for any witness that proves other public values.
func fuzzTarget(t *testing.T, tg *Target, b budget) *tally {
	rng := rand.New(rand.NewSource(seed(tg.Case.Name)))
	tl := newTally()
	sites := map[[2]any]bool{}
	for _, tr := range plan(tg, b, rng) {
		site, p := tr.site, tr.p
		res, err := tg.Try(site, p)
		if err != nil {
			t.Fatalf("%s: %s call %d: %v", tg.Case.Name, site.Name, site.Rank, err)
		}
		switch res.Outcome {
		case Unchanged:
			continue
		case Rejected:
			tl.rejected++
		case Benign:
			tl.benign++
		case Forged:
			tl.forged++
			layer, err := tg.Layer(site)
			if err != nil {
				layer = err.Error()
			}
			t.Errorf("SOUNDNESS BUG: model %s (%s), layer %s, hint %s call %d, perturbation %q: the witness solves with public values %v, the integer reference's are %v (confirmed on the real constraint system: %v)",
				tg.Case.Name, tg.System, layer, site.Name, site.Rank, p.Name, res.Claims, tg.honest, res.Confirmed)
		}
		tl.tried++
		tl.byHint[site.Name]++
		sites[[2]any{site.Name, site.Rank}] = true
	}
	tl.sites = len(sites)
	return tl
}

func report(t *testing.T, what string, tl *tally) {
	t.Logf("%s: %d hint call sites, %d perturbations tried: %d rejected, %d solved with unchanged public values, %d accepted with other public values (forged)",
		what, tl.sites, tl.tried, tl.rejected, tl.benign, tl.forged)
	var names []string
	for k := range tl.byHint {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		t.Logf("  %-40s %d perturbations", k, tl.byHint[k])
	}
}

// TestHintPerturbations is the short budget of the hint fuzzer, run in CI: every case
// of the corpus (example models, node tests) as R1CS, the example models also as
// PLONK, a few call sites of every hint, the core perturbations of every output and a
// sample of the others. No perturbation may solve with public values other than the
// integer reference's.
func TestHintPerturbations(t *testing.T) {
	quiet(t)
	b := budget{solved: 300_000, min: 8, max: 150, sites: 3}
	if testing.Short() {
		b = budget{solved: 100_000, min: 4, max: 50, sites: 2}
	}
	total := newTally()
	for _, c := range corpus(t) {
		systems := []circuits.System{circuits.Groth16}
		if !isNodeTest(c) {
			systems = append(systems, circuits.Plonk)
		}
		for _, sys := range systems {
			tg, err := Compile(c, sys)
			if err != nil {
				t.Fatal(err)
			}
			total.add(fuzzTarget(t, tg, b))
		}
	}
	report(t, "hint fuzzer", total)
	if total.tried == 0 {
		t.Fatal("no perturbation was tried")
	}
}

func isNodeTest(c Case) bool { return len(c.Name) > 5 && c.Name[:5] == "test_" }
