// Package hintfuzz checks that the hints of a model circuit cannot be lied about.
//
// A hint is a value the prover computes outside the circuit (a rescale's quotient, a
// sign, a division's quotient, the limbs and multiplicities of the range argument...);
// the circuit's constraints must pin it down. The fuzzer compiles a program's circuit,
// replaces one call of one hint with a wrapper that runs the honest hint and then
// perturbs its outputs (solver.OverrideHint), and solves. The perturbation is harmless
// if the witness no longer solves, or if it solves with every public value unchanged; a
// witness that solves with a different public value is a forged proof.
//
// Public values are inputs of a witness, so solving the model's own circuit with the
// honest claims would only say "rejected" for any forgery that changes an output. The
// fuzzer therefore solves a probe: the same circuit, built by the same code, in which
// every equality between a computed value and a claimed one (the outputs and the
// hashed groups' commitments) records the computed value instead of asserting it. The
// probe has every other constraint of the circuit, so a perturbed witness that solves
// the probe with computed values v proves the claim v in the real circuit; the fuzzer
// confirms each such finding on the real constraint system.
//
// Solving runs on one task, so hint calls happen in the deterministic order of the
// constraint system's levels: a call is named by its hint and its rank among that
// hint's calls, and attributed to the layer whose constraints it was created among.
package hintfuzz

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"path"
	"slices"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	fcs "github.com/consensys/gnark/frontend/cs"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// Case is one lowered program with honest integer inputs.
type Case struct {
	Name   string
	Prog   *quant.Program
	Inputs [][]int64
}

// Site is one hint call of the honest solve.
type Site struct {
	Hint solver.HintID
	// Name is the hint's short name, such as "circuits.rescaleHint".
	Name string
	// Rank is the call's position among the calls of Hint, in solving order.
	Rank int
	// In and Out are the honest call's inputs and outputs.
	In, Out []*big.Int

	offset uint32 // the constraint offset of the call's instruction
}

// Deferred is the layer of hint calls made by the arguments gnark and zkml build after
// the last layer (range argument limbs and multiplicities, lookup tables).
const Deferred = "deferred range/lookup arguments"

// Outcome is what a perturbation led to.
type Outcome int

// Outcomes.
const (
	// Unchanged: the perturbed outputs equal the honest ones (nothing was tried).
	Unchanged Outcome = iota
	// Rejected: the perturbed witness does not solve.
	Rejected
	// Benign: it solves, with every public value equal to the honest one.
	Benign
	// Forged: it solves with a different public value (a soundness bug).
	Forged
)

func (o Outcome) String() string {
	return [...]string{"unchanged", "rejected", "benign", "forged"}[o]
}

// Target is a compiled case ready to be fuzzed.
type Target struct {
	Case   Case
	System circuits.System

	probe constraint.ConstraintSystem
	// real and stats are the model's own circuit, compiled on first use.
	real     constraint.ConstraintSystem
	stats    *circuits.Stats
	layout   *circuits.Layout
	nbClaims int
	honest   []*big.Int // the claimed values the honest witness computes
	assign   *circuits.Circuit
	probeW   witness.Witness
	sites    []Site
}

// Compile builds the real and the probe constraint systems of c for sys and records
// every hint call of the honest witness.
func Compile(c Case, sys circuits.System) (*Target, error) {
	p := c.Prog
	ref, err := p.Eval(c.Inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: reference: %w", c.Name, err)
	}
	a, err := circuits.Assign(p, c.Inputs, ref.Outputs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	pc := newProbe(p)
	build := r1cs.NewBuilder[constraint.U64]
	if sys == circuits.Plonk {
		build = scs.NewBuilder[constraint.U64]
	}
	probe, err := frontend.Compile(circuits.Field, build, pc, frontend.IgnoreUnconstrainedInputs())
	if err != nil {
		return nil, fmt.Errorf("%s: compile probe: %w", c.Name, err)
	}
	t := &Target{Case: c, System: sys, probe: probe, layout: circuits.NewLayout(p), nbClaims: pc.nbClaims, assign: a}
	if t.probeW, err = probeWitness(a); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if err := t.recordSites(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	// The probe must compute exactly the honest claims: the outputs, then the
	// commitments, in the order circuits.Circuit asserts them.
	var want []*big.Int
	for i, s := range t.layout.Outputs {
		for j := range s.Len {
			want = append(want, big.NewInt(ref.Outputs[i][j]))
		}
	}
	for _, h := range t.layout.Hashes {
		v, err := toBig(a.Public[h.Offset])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		want = append(want, v)
	}
	if len(want) != len(t.honest) {
		return nil, fmt.Errorf("%s: probe recorded %d claims, want %d", c.Name, len(t.honest), len(want))
	}
	for i := range want {
		if want[i].Mod(want[i], circuits.Field).Cmp(t.honest[i]) != 0 {
			return nil, fmt.Errorf("%s: probe claim %d is %v, the reference says %v", c.Name, i, t.honest[i], want[i])
		}
	}
	return t, nil
}

// Sites returns the honest solve's hint calls in solving order.
func (t *Target) Sites() []Site { return t.sites }

// NbConstraints is the size of the probe (the model circuit's, less its claim checks).
func (t *Target) NbConstraints() int { return t.probe.GetNbConstraints() }

// compileReal compiles the model's own circuit, for confirmation and attribution.
func (t *Target) compileReal() error {
	if t.real != nil {
		return nil
	}
	var err error
	t.real, t.stats, err = circuits.Compile(t.Case.Prog, t.System)
	return err
}

// Layer names the layer a call belongs to, "name (op)", or Deferred: the layer among
// whose constraints its instruction was created (the probe and the model circuit share
// every constraint up to the claim checks, which come after the last layer).
func (t *Target) Layer(s Site) (string, error) {
	if err := t.compileReal(); err != nil {
		return "", err
	}
	n := 0
	for _, l := range t.stats.Layers {
		n += l.Constraints
		if int(s.offset) < n {
			return fmt.Sprintf("%s (%s)", l.Name, l.Op), nil
		}
	}
	return Deferred, nil
}

// recordSites solves the probe honestly and records every prover hint call.
func (t *Target) recordSites() error {
	insts, err := hintInstructions(t.probe)
	if err != nil {
		return err
	}
	var calls []Site
	rank := map[solver.HintID]int{}
	opts := []solver.Option{}
	for id := range insts.ids {
		honest := registered(id)
		if honest == nil {
			return fmt.Errorf("hint %d (%s) is not registered", id, insts.names[id])
		}
		name := insts.names[id]
		opts = append(opts, solver.OverrideHint(id, func(f *big.Int, in, out []*big.Int) error {
			err := honest(f, in, out)
			calls = append(calls, Site{Hint: id, Name: name, Rank: rank[id], In: cloneAll(in), Out: cloneAll(out)})
			rank[id]++
			return err
		}))
	}
	claims, err := t.solveProbe(t.probeW, opts...)
	if err != nil {
		return fmt.Errorf("honest witness does not solve the probe: %w", err)
	}
	t.honest = claims
	if len(calls) != len(insts.order) {
		return fmt.Errorf("solver made %d hint calls, the constraint system has %d", len(calls), len(insts.order))
	}
	for i := range calls {
		if calls[i].Hint != insts.order[i].id {
			return fmt.Errorf("hint call %d is %s, the level order says %s", i, calls[i].Name, insts.names[insts.order[i].id])
		}
		calls[i].offset = insts.order[i].offset
	}
	t.sites = calls
	return nil
}

// Perturbation changes the outputs of one hint call.
type Perturbation struct {
	Name string
	// Core marks the rewrites a budgeted run tries first: an output's neighbours and
	// negation, and the joint rewrites.
	Core bool
	// Apply rewrites out (the honest outputs, in place); in are the call's inputs.
	Apply func(in, out []*big.Int)
}

// Result describes one tried perturbation.
type Result struct {
	Outcome Outcome
	// Claims are the public values the perturbed witness proves (Forged and Benign).
	Claims []*big.Int
	// Confirmed: the real constraint system accepts the forged claims too.
	Confirmed bool
}

// Try solves the probe with site's call perturbed by p.
func (t *Target) Try(site Site, p Perturbation) (Result, error) {
	out := cloneAll(site.Out)
	p.Apply(cloneAll(site.In), out)
	changed := false
	for i := range out {
		out[i].Mod(out[i], circuits.Field)
		if out[i].Cmp(site.Out[i]) != 0 {
			changed = true
		}
	}
	if !changed {
		return Result{Outcome: Unchanged}, nil
	}
	return t.judge(t.assign, t.probeW, t.tamper(site, p))
}

// judge solves the probe for assignment a (w is its probe witness) and compares the
// claims it computes with the honest ones; forged claims are confirmed on the model's
// own circuit with a's inputs.
func (t *Target) judge(a *circuits.Circuit, w witness.Witness, opts ...solver.Option) (Result, error) {
	claims, err := t.solveProbe(w, opts...)
	if err != nil {
		return Result{Outcome: Rejected}, nil
	}
	res := Result{Outcome: Benign, Claims: claims}
	for i := range claims {
		if claims[i].Cmp(t.honest[i]) != 0 {
			res.Outcome = Forged
		}
	}
	if res.Outcome == Forged {
		res.Confirmed, err = t.confirm(a, claims, opts...)
	}
	return res, err
}

// tamper returns the solver option that perturbs site's call.
func (t *Target) tamper(site Site, p Perturbation) solver.Option {
	honest := registered(site.Hint)
	rank := 0
	return solver.OverrideHint(site.Hint, func(f *big.Int, in, out []*big.Int) error {
		err := honest(f, in, out)
		if rank == site.Rank {
			p.Apply(in, out)
		}
		rank++
		return err
	})
}

// confirm solves the real constraint system with the claims replaced by the forged
// values (only possible when no claim is a commitment, whose preimage would change).
func (t *Target) confirm(base *circuits.Circuit, claims []*big.Int, opts ...solver.Option) (bool, error) {
	if len(t.layout.Hashes) > 0 {
		return false, nil
	}
	a := &circuits.Circuit{Public: slices.Clone(base.Public), Secret: slices.Clone(base.Secret)}
	k := 0
	for _, s := range t.layout.Outputs {
		dst := a.Secret
		if s.Public {
			dst = a.Public
		}
		for j := range s.Len {
			dst[s.Offset+j] = claims[k]
			k++
		}
	}
	w, err := frontend.NewWitness(a, circuits.Field)
	if err != nil {
		return false, err
	}
	if err := t.compileReal(); err != nil {
		return false, err
	}
	_, err = solve(t.real, w, opts...)
	return err == nil, nil
}

// solveProbe solves the probe on one task and returns the recorded claims.
func (t *Target) solveProbe(w witness.Witness, opts ...solver.Option) ([]*big.Int, error) {
	claims := make([]*big.Int, t.nbClaims)
	opts = append(opts, solver.OverrideHint(captureID, func(_ *big.Int, in, out []*big.Int) error {
		claims[in[0].Int64()] = new(big.Int).Set(in[1])
		out[0].SetInt64(0)
		return nil
	}))
	if _, err := solve(t.probe, w, opts...); err != nil {
		return nil, err
	}
	for i, c := range claims {
		if c == nil {
			return nil, fmt.Errorf("claim %d was not recorded", i)
		}
	}
	return claims, nil
}

// errPanic marks a solver panic, reported as a failure to solve.
var errPanic = errors.New("solver panicked")

// solve runs the solver sequentially (deterministic hint order) with a deterministic
// commitment challenge: a hash of the committed values, as Fiat-Shamir would give.
func solve(ccs constraint.ConstraintSystem, w witness.Witness, opts ...solver.Option) (_ any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	base := []solver.Option{solver.WithNbTasks(1), solver.OverrideHint(bsb22ID, challenge), solver.OverrideHint(maskID, mask)}
	return ccs.Solve(w, append(base, opts...)...)
}

// challenge replaces gnark's commitment placeholder (random outside a prover) by a
// hash of the committed values, so that solving is deterministic and the challenge
// still depends on everything committed.
func challenge(f *big.Int, in, out []*big.Int) error {
	h := sha256.New()
	for _, v := range in {
		b := make([]byte, 32)
		h.Write(v.FillBytes(b))
	}
	out[0].SetBytes(h.Sum(nil))
	out[0].Mod(out[0], f)
	if out[0].Sign() == 0 {
		out[0].SetInt64(1)
	}
	return nil
}

// mask replaces gnark's random commitment mask (hints.Randomize, which reads
// crypto/rand) by a constant, so that solving is deterministic. The mask is free by
// design (it only blinds the commitment), so it is not fuzzed either.
func mask(_ *big.Int, _, out []*big.Int) error {
	for _, o := range out {
		o.SetInt64(1)
	}
	return nil
}

var (
	bsb22ID   = solver.GetHintID(fcs.Bsb22CommitmentComputePlaceholder)
	captureID = solver.GetHintID(captureHint)
	maskID    = hintByName("github.com/consensys/gnark/internal/hints.Randomize")
)

// hintByName finds a registered hint that is not exported.
func hintByName(name string) solver.HintID {
	for _, h := range solver.GetRegisteredHints() {
		if solver.GetHintName(h) == name {
			return solver.GetHintID(h)
		}
	}
	panic("hintfuzz: no registered hint " + name)
}

func init() { solver.RegisterHint(captureHint) }

// captureHint: inputs (index, value); the probe's recorder of a claimed value. The
// fuzzer overrides it to read the values; on its own it records nothing.
func captureHint(_ *big.Int, _, out []*big.Int) error {
	out[0].SetInt64(0)
	return nil
}

func registered(id solver.HintID) solver.Hint {
	for _, h := range solver.GetRegisteredHints() {
		if solver.GetHintID(h) == id {
			return h
		}
	}
	return nil
}

func cloneAll(v []*big.Int) []*big.Int {
	out := make([]*big.Int, len(v))
	for i := range v {
		out[i] = new(big.Int).Set(v[i])
	}
	return out
}

// hintCalls lists a constraint system's prover hint instructions in solving order.
type hintCalls struct {
	order []struct {
		id     solver.HintID
		offset uint32 // the constraint offset of the instruction
	}
	ids   map[solver.HintID]bool
	names map[solver.HintID]string
}

func hintInstructions(ccs constraint.ConstraintSystem) (*hintCalls, error) {
	sys, ok := ccs.(*csbn254.R1CS)
	if !ok {
		return nil, fmt.Errorf("unexpected constraint system %T", ccs)
	}
	hc := &hintCalls{ids: map[solver.HintID]bool{}, names: map[solver.HintID]string{}}
	var h constraint.HintMapping
	for _, level := range sys.Levels {
		for _, i := range level {
			pi := sys.Instructions[i]
			b, ok := sys.Blueprints[pi.BlueprintID].(constraint.BlueprintHint)
			if !ok {
				continue
			}
			b.DecompressHint(&h, pi.Unpack(&sys.System))
			if h.HintID == bsb22ID || h.HintID == captureID || h.HintID == maskID {
				// Not the prover's to choose: the commitment challenge is the
				// verifier's (Fiat-Shamir), the recorder is the probe's own, and
				// the commitment mask is free by design.
				continue
			}
			hc.order = append(hc.order, struct {
				id     solver.HintID
				offset uint32
			}{h.HintID, pi.ConstraintOffset})
			if !hc.ids[h.HintID] {
				hc.ids[h.HintID] = true
				hc.names[h.HintID] = shortName(sys.MHintsDependencies[h.HintID])
			}
		}
	}
	return hc, nil
}

// shortName turns "github.com/zkml/zkml/circuits.rescaleHint" into "circuits.rescaleHint".
func shortName(full string) string { return path.Base(full) }

// probeCircuit is the model circuit with its claims recorded instead of asserted.
type probeCircuit struct {
	Public []frontend.Variable `gnark:",public"`
	Secret []frontend.Variable `gnark:",secret"`

	prog     *quant.Program
	nbClaims int
}

// probeWitness is the probe's witness for a model circuit assignment (the same
// Public and Secret vectors).
func probeWitness(a *circuits.Circuit) (witness.Witness, error) {
	w, err := frontend.NewWitness(&probeCircuit{Public: a.Public, Secret: a.Secret}, circuits.Field)
	if err != nil {
		return nil, fmt.Errorf("probe witness: %w", err)
	}
	return w, nil
}

func newProbe(p *quant.Program) *probeCircuit {
	c := circuits.New(p)
	return &probeCircuit{Public: c.Public, Secret: c.Secret, prog: p}
}

// Define runs circuits.Circuit's Define through an API that records claims.
func (c *probeCircuit) Define(api frontend.API) error {
	inner := circuits.New(c.prog)
	inner.Public, inner.Secret = c.Public, c.Secret
	l := circuits.NewLayout(c.prog)
	claimed := map[string]bool{}
	for _, s := range l.Outputs {
		src := c.Secret
		if s.Public {
			src = c.Public
		}
		for _, v := range src[s.Offset : s.Offset+s.Len] {
			claimed[key(v)] = true
		}
	}
	for _, h := range l.Hashes {
		claimed[key(c.Public[h.Offset])] = true
	}
	rec := &recorder{API: api, claimed: claimed}
	if err := inner.Define(rec); err != nil {
		return err
	}
	c.nbClaims = rec.n
	return rec.err
}

// key identifies a circuit input variable (a builder's linear expression or term).
func key(v frontend.Variable) string { return fmt.Sprintf("%T%v", v, v) }

// recorder is a frontend.API whose AssertIsEqual(computed, claim) (either order), for
// a claim variable, records the computed value through captureHint instead of
// asserting it.
type recorder struct {
	frontend.API
	claimed map[string]bool
	n       int
	err     error
}

func (r *recorder) AssertIsEqual(a, b frontend.Variable) {
	switch {
	case r.isClaim(b):
		r.record(a)
	case r.isClaim(a):
		r.record(b)
	default:
		r.API.AssertIsEqual(a, b)
	}
}

func (r *recorder) isClaim(v frontend.Variable) bool {
	if _, isConst := r.Compiler().ConstantValue(v); isConst {
		return false
	}
	return r.claimed[key(v)]
}

func (r *recorder) record(v frontend.Variable) {
	if _, err := r.Compiler().NewHint(captureHint, 1, r.n, v); err != nil && r.err == nil {
		r.err = err
	}
	r.n++
}

// toBig converts an assignment value (int64 or *big.Int) to a big.Int.
func toBig(v frontend.Variable) (*big.Int, error) {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x), nil
	case *big.Int:
		return new(big.Int).Set(x), nil
	}
	return nil, fmt.Errorf("unexpected assignment value %T", v)
}
