package hintfuzz

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark/logger"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// The test corpus: the repository's example model, the example models the project
// writes (internal/onnxgen) and the vendored ONNX node tests the other suites use.
const (
	examplesDir  = "../../examples"
	sharedModels = "../../testdata/models"
	nodeTestsDir = "../../testdata/onnx-node"
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
		// The example models again under the other range-check mode and with every
		// group hashed (params private), so gnark's bit decomposition, the witness
		// params' range checks and the commitments are fuzzed too.
		var variants []Case
		for _, dir := range []string{examplesDir, sharedModels} {
			for _, v := range configVariants() {
				cs, err := Models(dir, v.cfg)
				if err != nil {
					corpusErr = err
					return
				}
				for _, c := range cs {
					if v.cfg.RangeCheck == "bits" && len(c.Prog.Tables) > 0 {
						continue // lookup tables need the lookup mode
					}
					c.Name += " [" + v.name + "]"
					variants = append(variants, c)
				}
			}
		}
		// And with widths measured on the sample input (compile --input): the
		// narrowest range checks.
		for _, dir := range []string{examplesDir, sharedModels} {
			cs, err := CalibratedModels(dir, quant.DefaultConfig())
			if err != nil {
				corpusErr = err
				return
			}
			for _, c := range cs {
				c.Name += " [measured widths]"
				variants = append(variants, c)
			}
		}
		corpusCases = append(append(append(corpusCases, shared...), variants...), nodes...)
	})
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	if len(corpusCases) < 100 {
		t.Fatalf("only %d case(s): the example models and node tests under testdata/ are missing", len(corpusCases))
	}
	return corpusCases
}

type configVariant struct {
	name string
	cfg  quant.Config
}

func configVariants() []configVariant {
	bits := quant.DefaultConfig()
	bits.RangeCheck = "bits"
	hashed := quant.DefaultConfig()
	hashed.InputVis, hashed.OutputVis, hashed.ParamVis = quant.Hashed, quant.Hashed, quant.Private
	return []configVariant{{"range_check bits", bits}, {"hashed, private params", hashed}}
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
	names, byHint := sitesByHint(tg.Sites())
	queues := make([][]trial, len(names))
	for h, name := range names {
		queues[h], _ = coreFirst(pickSites(byHint[name], b.sites, rng), rng)
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

// pickSites picks up to n of one hint's call sites (at least one): the first, then
// the last, then random others.
func pickSites(ss []Site, n int, rng *rand.Rand) []Site {
	picked := []Site{ss[0]}
	if n > 1 && len(ss) > 1 {
		picked = append(picked, ss[len(ss)-1])
	}
	if others := min(n-2, len(ss)-2); others > 0 {
		for _, i := range rng.Perm(len(ss) - 2)[:others] {
			picked = append(picked, ss[i+1])
		}
	}
	return picked
}

// sitesByHint groups sites by hint, the hints in the order of their first call.
func sitesByHint(sites []Site) ([]string, map[string][]Site) {
	byHint := map[string][]Site{}
	var names []string
	for _, s := range sites {
		if byHint[s.Name] == nil {
			names = append(names, s.Name)
		}
		byHint[s.Name] = append(byHint[s.Name], s)
	}
	return names, byHint
}

// coreFirst lists every perturbation of the sites: the core ones (in site order)
// first, then the others shuffled; nCore counts the core ones.
func coreFirst(sites []Site, rng *rand.Rand) (trials []trial, nCore int) {
	var rest []trial
	for _, s := range sites {
		for _, p := range Perturbations(s, rng, -1) {
			if p.Core {
				trials = append(trials, trial{s, p})
			} else {
				rest = append(rest, trial{s, p})
			}
		}
	}
	nCore = len(trials)
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	return append(trials, rest...), nCore
}

type trial struct {
	site Site
	p    Perturbation
}

// fuzzTarget tries the budgeted perturbations on tg.
func fuzzTarget(t *testing.T, tg *Target, b budget) *tally {
	return runTrials(t, tg, plan(tg, b, rand.New(rand.NewSource(seed(tg.Case.Name)))))
}

// runTrials tries each perturbation and fails the test, naming model, layer, hint and
// perturbation, for any witness that proves other public values.
func runTrials(t *testing.T, tg *Target, trials []trial) *tally {
	tl := newTally()
	sites := map[[2]any]bool{}
	for _, tr := range trials {
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

// TestHintPerturbations is the hint fuzzer's budget run in CI: every case of the corpus
// (example models, their config variants, node tests) as R1CS, the example models also
// as PLONK, a few call sites of every hint, the core perturbations of every output and a
// sample of the others. No perturbation may solve with public values other than the
// integer reference's.
//
// In CI (ZKML_HINTFUZZ_BUDGET unset or "ci") a case with a kind (system, variant,
// operators, hint) no earlier case perturbed gets up to 60 perturbations (at least one
// per hint), a case whose kinds were all perturbed before gets 4 (the hints in turn),
// and the variants are fuzzed as R1CS only; every kind must be perturbed at least once. ZKML_HINTFUZZ_BUDGET=full gives every case the whole
// budget and PLONK for every variant.
func TestHintPerturbations(t *testing.T) {
	quiet(t)
	full := fullBudget(t)
	b := budget{solved: 300_000, min: 8, max: 150, sites: 3}
	repeat := b
	if !full {
		b.max = 60
		repeat = budget{min: 4, max: 12, sites: 2}
	}
	if testing.Short() {
		b = budget{solved: 100_000, min: 4, max: 50, sites: 2}
		repeat = budget{min: 2, max: 6, sites: 1}
	}
	total := newTally()
	seen, tried := map[string]bool{}, map[string]bool{}
	for _, c := range corpus(t) {
		systems := []circuits.System{circuits.Groth16}
		if !isNodeTest(c) && (full || !isVariant(c)) {
			systems = append(systems, circuits.Plonk)
		}
		for _, sys := range systems {
			tg, err := Compile(c, sys)
			if err != nil {
				t.Fatal(err)
			}
			bb := repeat
			names, _ := sitesByHint(tg.Sites())
			for _, s := range tg.Sites() {
				if k := kind(tg, s); !tried[k] {
					// A new kind: the whole budget, and at least one turn per hint.
					bb = b
					bb.min = max(b.min, len(names))
					bb.max = max(b.max, bb.min)
				}
				seen[kind(tg, s)] = true
			}
			tl := fuzzTarget(t, tg, bb)
			for _, s := range tg.Sites() {
				if tl.byHint[s.Name] > 0 {
					tried[kind(tg, s)] = true
				}
			}
			total.add(tl)
		}
	}
	report(t, "hint fuzzer", total)
	if total.tried == 0 {
		t.Fatal("no perturbation was tried")
	}
	var missed []string
	for k := range seen {
		if !tried[k] {
			missed = append(missed, k)
		}
	}
	slices.Sort(missed)
	if len(missed) > 0 {
		t.Errorf("%d of %d hint kinds were never perturbed: %v", len(missed), len(seen), missed)
	}
	t.Logf("%d hint kinds (system, variant, operators, hint) perturbed", len(tried))
}

// kind names what a hint call exercises: the proof system, the case's config variant,
// the operators of its program and the hint.
func kind(tg *Target, s Site) string {
	variant := ""
	if i := strings.LastIndex(tg.Case.Name, " ["); i >= 0 {
		variant = tg.Case.Name[i:]
	}
	var ops []string
	for _, l := range tg.Case.Prog.Layers {
		if !slices.Contains(ops, l.Op) {
			ops = append(ops, l.Op)
		}
	}
	slices.Sort(ops)
	return fmt.Sprintf("%s%s %s: %s", tg.System, variant, strings.Join(ops, "+"), s.Name)
}

// isVariant reports whether c is an example model under another config (its name
// carries the variant in brackets).
func isVariant(c Case) bool { return strings.HasSuffix(c.Name, "]") }

func isNodeTest(c Case) bool { return strings.HasPrefix(c.Name, "test_") }

// TestFuzzerSeesChangedClaims checks the fuzzer's own detection path: a witness whose
// computation really differs (here a changed private input, which the circuit allows)
// solves the probe, is judged Forged against the original claims, and is confirmed by
// the model's own constraint system with the recorded claims as outputs; the recorded
// claims are the integer reference's outputs on that input. A fuzzer that could not
// tell this apart from a rejection would pass with any gadget.
func TestFuzzerSeesChangedClaims(t *testing.T) {
	quiet(t)
	c := corpus(t)[0]
	tg, err := Compile(c, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	in := make([][]int64, len(c.Inputs))
	for i := range c.Inputs {
		in[i] = slices.Clone(c.Inputs[i])
	}
	for j := range in[0] {
		in[0][j] = (in[0][j] + 97) % 200
	}
	ref, err := c.Prog.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	a, err := circuits.Assign(c.Prog, in, ref.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := probeWitness(a)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.judge(a, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Forged || !res.Confirmed {
		t.Fatalf("changed input: outcome %v, confirmed %v; want forged and confirmed", res.Outcome, res.Confirmed)
	}
	k := 0
	for _, out := range ref.Outputs {
		for _, v := range out {
			want := new(big.Int).Mod(big.NewInt(v), circuits.Field)
			if res.Claims[k].Cmp(want) != 0 {
				t.Fatalf("claim %d = %v, the reference says %v", k, res.Claims[k], v)
			}
			k++
		}
	}
}

var (
	targetsMu sync.Mutex
	targets   = map[int]*Target{}
)

// target compiles corpus case i once per process.
func target(t testing.TB, cases []Case, i int) *Target {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	if tg, ok := targets[i]; ok {
		return tg
	}
	tg, err := Compile(cases[i], circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	targets[i] = tg
	return tg
}

// FuzzHints is the long budget of the hint fuzzer (go test -fuzz FuzzHints
// ./internal/hintfuzz): the input chooses a corpus case, a hint call, an output and a
// perturbation, either one of Perturbations' list or an arbitrary value written into,
// or added to, the output.
func FuzzHints(f *testing.F) {
	quiet(f)
	cases := corpus(f)
	for i := range min(len(cases), 16) {
		f.Add(uint16(i), uint32(i*7), uint8(i%3), uint16(i), []byte{byte(i), 1})
	}
	f.Fuzz(func(t *testing.T, ci uint16, si uint32, mode uint8, j uint16, raw []byte) {
		tg := target(t, cases, int(ci)%len(cases))
		sites := tg.Sites()
		if len(sites) == 0 {
			return
		}
		site := sites[int(si)%len(sites)]
		var p Perturbation
		switch mode % 3 {
		case 0:
			ps := Perturbations(site, rand.New(rand.NewSource(int64(si))), -1)
			p = ps[int(j)%len(ps)]
		default:
			o := int(j) % len(site.Out)
			v := new(big.Int).SetBytes(raw)
			set := mode%3 == 1
			p = Perturbation{Name: fmt.Sprintf("out[%d] %s %v", o, map[bool]string{true: "=", false: "+"}[set], v), Apply: func(_, out []*big.Int) {
				if set {
					out[o].Set(v)
				} else {
					out[o].Add(out[o], v)
				}
			}}
		}
		res, err := tg.Try(site, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome == Forged {
			layer, _ := tg.Layer(site)
			t.Fatalf("SOUNDNESS BUG: model %s, layer %s, hint %s call %d, perturbation %q: public values %v, reference %v (confirmed: %v)",
				tg.Case.Name, layer, site.Name, site.Rank, p.Name, res.Claims, tg.honest, res.Confirmed)
		}
	})
}
