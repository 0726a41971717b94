// Package engine implements the service's api.Engine with the real pipeline (model,
// quant, circuits, prover, verifier).
//
// Compile, setup and proofs can run in a child process (ChildCommand): gnark cannot
// interrupt a running prover, so a job's timeout or cancellation kills the child and
// really frees the worker, and a child that runs out of memory or hits a Go fatal
// error fails its job instead of the whole service. Before any work, the cost of a
// model is estimated from its lowered program and checked against Limits. Compiled
// circuits and keys of in-process calls are cached by the prover.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/verifier"
)

// Engine runs the pipeline. The zero value proves in-process on the CPU.
type Engine struct {
	// ChildCommand, when set, is the command line of a child process that runs one
	// compile, setup or proof: it is run with the flags of ChildArgs and must behave
	// like RunChild (see `zkml internal-job`).
	ChildCommand []string
	// Device is the proving device (cpu or gpu).
	Device prover.Device
	// Limits is the budget a model must fit (zero fields: unlimited); its memory
	// limit is also imposed on every child process.
	Limits bench.Limits
	// SetupPolicy: PLONK keys on a public SRS, and whether development setups (and
	// verifiers for development keys) are refused (ZKML_PTAU, ZKML_REQUIRE_TRUSTED_SETUP).
	SetupPolicy prover.SetupPolicy
}

var _ api.Engine = (*Engine)(nil)

// classify maps pipeline errors to the api's user-fault sentinels.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrInvalidModel), errors.Is(err, model.ErrUnsupportedOp):
		return fmt.Errorf("%w: %v", api.ErrInvalidModel, err)
	case errors.Is(err, model.ErrBadInput), errors.Is(err, quant.ErrOutOfRange):
		return fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	case errors.Is(err, prover.ErrUntrustedSetup):
		return fmt.Errorf("%w: %v", api.ErrInvalidSettings, err)
	}
	return err
}

// ParseSettings decodes compile settings (a JSON object of quant.Config fields) over
// the defaults; unknown fields and invalid values are user errors.
func ParseSettings(b []byte) (quant.Config, error) {
	cfg, _, err := ParseModelSettings(b)
	return cfg, err
}

// ParseModelSettings decodes compile settings: quant.Config fields over the defaults
// and, for a sharded model, the "shard" object (nil when absent).
func ParseModelSettings(b []byte) (quant.Config, *ShardSettings, error) {
	b, sh, err := splitSettings(b)
	if err != nil {
		return quant.DefaultConfig(), nil, err
	}
	cfg, err := parseConfig(b)
	return cfg, sh, err
}

func parseConfig(b []byte) (quant.Config, error) {
	cfg := quant.DefaultConfig()
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("%w: %s", api.ErrInvalidSettings, api.JSONErrorMessage(err))
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", api.ErrInvalidSettings, err)
	}
	return cfg, nil
}

// Estimate lowers the model and bounds its circuit in each proving system.
func Estimate(onnx, settings []byte) ([]*bench.Estimate, error) {
	cfg, err := ParseSettings(settings)
	if err != nil {
		return nil, err
	}
	g, err := model.Load(onnx)
	if err != nil {
		return nil, classify(err)
	}
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return nil, classify(err)
	}
	return EstimateProgram(p)
}

// EstimateProgram bounds the circuit of p in each proving system.
func EstimateProgram(p *quant.Program) ([]*bench.Estimate, error) {
	var out []*bench.Estimate
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		est, err := bench.EstimateProgram(p, sys)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, est)
	}
	return out, nil
}

// checkBudget returns an error wrapping api.ErrOverBudget when an estimate exceeds
// the engine's limits.
func (e *Engine) checkBudget(ests []*bench.Estimate) error {
	for _, est := range ests {
		if err := e.Limits.Check(est); err != nil {
			return fmt.Errorf("%w: %v", api.ErrOverBudget, strings.TrimPrefix(err.Error(), bench.ErrOverBudget.Error()+": "))
		}
	}
	return nil
}

// Admit implements api.Admitter: a model whose estimate (in any proving system, since
// compiling builds both) is above the limits is refused before any work. With
// ChildCommand the model is lowered and estimated in a child under the memory limit,
// so not even the lowering of a hostile model can exhaust this process; a child that
// runs out of memory there means the model is over budget. A model that cannot be
// parsed or lowered is admitted: its compile job reports why.
func (e *Engine) Admit(ctx context.Context, onnx []byte, settings []byte) error {
	if e.Limits == (bench.Limits{}) {
		return nil
	}
	if _, sh, err := splitSettings(settings); err == nil && sh != nil {
		// A sharded model's segments, not the whole, must fit: its compile job splits
		// it under the limits and refuses a layer no segment fits.
		return nil
	}
	var ests []*bench.Estimate
	var err error
	if len(e.ChildCommand) > 0 {
		// The child refuses a model over the limits by its structural estimate before
		// lowering it (OpEstimate runs checkGraph first).
		var res *childResult
		res, err = e.runChild(ctx, ChildArgs{Op: OpEstimate}, modelFiles(onnx, settings))
		if errors.Is(err, api.ErrResourceLimit) {
			return fmt.Errorf("%w: lowering the model needed more than the memory limit of %d MiB (ZKML_MAX_JOB_MEMORY)",
				api.ErrOverBudget, e.Limits.MaxMemoryBytes>>20)
		}
		if errors.Is(err, api.ErrOverBudget) {
			return err
		}
		if err == nil {
			ests = res.Estimates
		}
	} else {
		if err := e.checkGraph(onnx, settings); err != nil {
			return err
		}
		ests, err = Estimate(onnx, settings)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return nil
	}
	return e.checkBudget(ests)
}

func modelFiles(onnx, settings []byte) map[string][]byte {
	files := map[string][]byte{"model.onnx": onnx}
	if len(settings) > 0 {
		files["settings.json"] = settings
	}
	return files
}

// Compile implements api.Engine: it quantizes the model, checks its estimate against
// the limits and compiles both circuits (all of it in a child process with
// ChildCommand).
func (e *Engine) Compile(ctx context.Context, dir string, onnx []byte, settings []byte) (api.ModelInfo, error) {
	cfg, sh, err := ParseModelSettings(settings)
	if err != nil {
		return api.ModelInfo{}, err
	}
	if len(e.ChildCommand) > 0 {
		res, err := e.runChild(ctx, ChildArgs{Op: OpCompile, Dir: dir}, modelFiles(onnx, settings))
		if err != nil {
			return api.ModelInfo{}, err
		}
		if res.Info == nil {
			return api.ModelInfo{}, errors.New("compile process wrote no model info")
		}
		return *res.Info, nil
	}
	if err := e.checkGraph(onnx, settings); err != nil {
		return api.ModelInfo{}, err
	}
	m, err := prover.Create(dir, onnx, cfg)
	if err != nil {
		return api.ModelInfo{}, classify(err)
	}
	if sh != nil {
		return e.compileSharded(ctx, m, sh)
	}
	ests, err := EstimateProgram(m.Program)
	if err != nil {
		return api.ModelInfo{}, err
	}
	if err := e.checkBudget(ests); err != nil {
		return api.ModelInfo{}, err
	}
	info := api.ModelInfo{ModelID: m.ID, Constraints: map[string]int{}}
	for _, in := range m.Graph.Inputs {
		info.Inputs = append(info.Inputs, in.Shape)
	}
	for _, out := range m.Graph.Outputs {
		info.Outputs = append(info.Outputs, out.Shape)
	}
	stats := map[string]*circuits.Stats{}
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		if err := ctx.Err(); err != nil {
			return api.ModelInfo{}, err
		}
		st, err := m.Compile(sys)
		if err != nil {
			return api.ModelInfo{}, classify(err)
		}
		info.Constraints[string(sys)] = st.Constraints
		stats[string(sys)] = st
	}
	info.Stats, err = json.Marshal(stats)
	return info, err
}

// Setup implements api.Engine.
func (e *Engine) Setup(ctx context.Context, dir string, system string) (api.Provenance, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return api.Provenance{}, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	if len(e.ChildCommand) > 0 {
		if _, err := e.runChild(ctx, ChildArgs{Op: OpSetup, Dir: dir, System: string(sys)}, nil); err != nil {
			return api.Provenance{}, err
		}
	} else {
		if err := e.checkDir(dir, sys); err != nil {
			return api.Provenance{}, err
		}
		m, err := prover.Open(dir)
		if err != nil {
			return api.Provenance{}, err
		}
		if shard.Sharded(m) {
			if err := e.setupSharded(m, sys); err != nil {
				return api.Provenance{}, classify(err)
			}
		} else if err := m.SetupWith(sys, e.SetupPolicy); err != nil {
			return api.Provenance{}, classify(err)
		}
	}
	p, err := prover.ReadProvenance(dir, sys)
	if err != nil {
		return api.Provenance{}, err
	}
	return ProvenanceView(p), nil
}

// ProvenanceView is the API's form of a key's provenance.
func ProvenanceView(p *prover.Provenance) api.Provenance {
	if p == nil {
		p = &prover.Provenance{Trust: prover.TrustDevelopment}
	}
	v := api.Provenance{Trust: p.Trust, Summary: p.Summary(), Beacon: p.Beacon}
	if p.Ptau != nil {
		v.Ptau = &api.PtauView{BLAKE2b: p.Ptau.BLAKE2b, Power: p.Ptau.Power, DomainPower: p.Ptau.DomainPower, Contributors: p.Ptau.Contributors}
	}
	for i, c := range p.Contributions {
		v.Contributions = append(v.Contributions, api.ContributionView{Index: i + 1, Name: c.Name, Hash: c.Hash, Time: c.Time})
	}
	return v
}

// Prove implements api.Engine.
func (e *Engine) Prove(ctx context.Context, dir string, system string, input []byte, progress func(stage string, frac float64)) (api.ProofResult, error) {
	if progress == nil {
		progress = func(string, float64) {}
	}
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return api.ProofResult{}, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return api.ProofResult{}, err
	}
	in, err := model.ParseInput(input, m.Graph)
	if err != nil {
		return api.ProofResult{}, classify(err)
	}
	// Range errors are reported here, before any proving (and before a child starts).
	if _, err := prover.NewWitness(m.Program, in); err != nil {
		return api.ProofResult{}, classify(err)
	}
	progress("prove", 0.1)
	var p *prover.Proof
	if len(e.ChildCommand) > 0 {
		var res *childResult
		res, err = e.runChild(ctx, ChildArgs{Op: OpProve, Dir: dir, System: string(sys), Device: string(e.device())},
			map[string][]byte{"input.json": input})
		if err == nil && res.Proof == nil {
			err = errors.New("prove process wrote no proof")
		}
		if err == nil {
			p = res.Proof
		}
	} else {
		p, err = m.Prove(sys, in, prover.WithDevice(e.device()))
	}
	if err != nil {
		return api.ProofResult{}, classify(err)
	}
	progress("calldata", 0.95)
	cd, err := calldata(sys, p)
	if err != nil {
		return api.ProofResult{}, err
	}
	progress("done", 1)
	return api.ProofResult{Proof: p.Proof, PublicInputs: p.PublicInputs, Outputs: p.Outputs, Calldata: cd, ProveSeconds: p.ProveSeconds}, nil
}

func (e *Engine) device() prover.Device {
	if e.Device == "" {
		return prover.CPU
	}
	return e.Device
}

// proveInProcess proves one inference here (the child's side of OpProve).
func (e *Engine) proveInProcess(dir, system string, input []byte) (*prover.Proof, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return nil, err
	}
	in, err := model.ParseInput(input, m.Graph)
	if err != nil {
		return nil, classify(err)
	}
	p, err := m.Prove(sys, in, prover.WithDevice(e.device()))
	return p, classify(err)
}

func calldata(sys circuits.System, p *prover.Proof) ([]byte, error) {
	proof, err := verifier.DecodeProof(string(sys), p.Proof)
	if err != nil {
		return nil, err
	}
	pub, err := verifier.PublicWitness(p.PublicInputs)
	if err != nil {
		return nil, err
	}
	return verifier.Calldata(proof, pub)
}

// Verify implements api.Engine: a bad or undecodable proof, a non-canonical public
// input, or a proof made with other params than the model's is invalid with its reason,
// never an error.
func (e *Engine) Verify(ctx context.Context, dir string, system string, proof []byte, publicInputs []string) (api.Verdict, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return api.Verdict{}, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return api.Verdict{}, err
	}
	if shard.Sharded(m) {
		return api.Verdict{Reason: "model " + m.ID + " is sharded: its proofs are bundles of segment proofs (verify a bundle)"}, nil
	}
	vk, err := m.VerifyingKeyBytes(sys)
	if err != nil {
		return api.Verdict{}, err
	}
	pub, err := verifier.PublicWitness(publicInputs)
	if err == nil {
		var p any
		if p, err = verifier.DecodeProof(string(sys), proof); err == nil {
			err = verifier.VerifyModel(m.Program, string(sys), vk, p, pub)
		}
	}
	if errors.Is(err, verifier.ErrInvalidProof) {
		return api.Verdict{Reason: err.Error()}, nil
	}
	if err != nil {
		return api.Verdict{}, err
	}
	return api.Verdict{Valid: true}, nil
}

// SolidityVerifier implements api.Engine.
func (e *Engine) SolidityVerifier(ctx context.Context, dir string, system string) ([]byte, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return nil, err
	}
	if shard.Sharded(m) {
		// Sharded models have development keys only (setupSharded).
		if e.SetupPolicy.RequireTrusted {
			return nil, classify(fmt.Errorf("%w: the keys of sharded model %s come from a development setup", prover.ErrUntrustedSetup, m.ID))
		}
		pl, err := shard.Load(m)
		if err != nil {
			return nil, err
		}
		return bundleVerifier(m, pl, sys), nil
	}
	if err := m.CheckTrusted(sys, e.SetupPolicy); err != nil {
		return nil, classify(err)
	}
	vkb, err := m.VerifyingKeyBytes(sys)
	if err != nil {
		return nil, err
	}
	vk, err := verifier.VerifyingKey(string(sys), vkb)
	if err != nil {
		return nil, err
	}
	opts, err := ExportOptions(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if m.Provenance(sys).Trust == prover.TrustDevelopment {
		buf.WriteString(prover.DevVerifierBanner)
	}
	if err := verifier.ExportSolidity(&buf, vk, opts...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ExportOptions configures an exported wrapper for m (verifier.ProgramOptions).
func ExportOptions(m *prover.Model) ([]verifier.ExportOption, error) {
	return verifier.ProgramOptions(m.Program)
}
