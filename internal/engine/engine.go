// Package engine implements the service's api.Engine with the real pipeline (model,
// quant, circuits, prover, verifier).
//
// Proofs can run in a child process (ProveCommand): gnark cannot interrupt a running
// prover, so a job's timeout or cancellation kills the child and really frees the
// worker. Compiled circuits and keys of in-process calls are cached by the prover.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// Engine runs the pipeline. The zero value proves in-process on the CPU.
type Engine struct {
	// ProveCommand, when set, is the command line of a child process that proves one
	// inference: it is run with the extra arguments
	//   --dir DIR --system SYS --input IN.json --out OUT.json [--device D]
	// and must write a prover.Proof as JSON to OUT (see `zkml internal-prove`).
	ProveCommand []string
	// Device is the proving device (cpu or gpu).
	Device prover.Device
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
	cfg := quant.DefaultConfig()
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("%w: %v", api.ErrInvalidSettings, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", api.ErrInvalidSettings, err)
	}
	return cfg, nil
}

// Compile implements api.Engine: it quantizes the model and compiles both circuits.
func (e *Engine) Compile(ctx context.Context, dir string, onnx []byte, settings []byte) (api.ModelInfo, error) {
	cfg, err := ParseSettings(settings)
	if err != nil {
		return api.ModelInfo{}, err
	}
	m, err := prover.Create(dir, onnx, cfg)
	if err != nil {
		return api.ModelInfo{}, classify(err)
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
func (e *Engine) Setup(ctx context.Context, dir string, system string) error {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return err
	}
	return classify(m.SetupWith(sys, e.SetupPolicy))
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
	if len(e.ProveCommand) > 0 {
		p, err = e.proveChild(ctx, dir, sys, input)
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

// proveChild proves in a child process, killed when ctx ends.
func (e *Engine) proveChild(ctx context.Context, dir string, sys circuits.System, input []byte) (*prover.Proof, error) {
	tmp, err := os.MkdirTemp("", "zkml-prove-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	inPath, outPath := filepath.Join(tmp, "input.json"), filepath.Join(tmp, "proof.json")
	if err := os.WriteFile(inPath, input, 0o600); err != nil {
		return nil, err
	}
	args := append(append([]string{}, e.ProveCommand[1:]...), "--dir", dir, "--system", string(sys), "--input", inPath, "--out", outPath, "--device", string(e.device()))
	cmd := exec.CommandContext(ctx, e.ProveCommand[0], args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("prover process: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		return nil, err
	}
	var p prover.Proof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("prover process output: %w", err)
	}
	return &p, nil
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

// Verify implements api.Engine: a bad or undecodable proof is (false, nil).
func (e *Engine) Verify(ctx context.Context, dir string, system string, proof []byte, publicInputs []string) (bool, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return false, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return false, err
	}
	vk, err := m.VerifyingKeyBytes(sys)
	if err != nil {
		return false, err
	}
	pub, err := verifier.PublicWitness(publicInputs)
	if err == nil {
		err = verifier.Verify(string(sys), vk, proof, pub)
	}
	if errors.Is(err, verifier.ErrInvalidProof) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
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
	var buf bytes.Buffer
	if m.Provenance(sys).Trust == prover.TrustDevelopment {
		buf.WriteString(prover.DevVerifierBanner)
	}
	if err := verifier.ExportSolidity(&buf, vk, OutputsOption(m)...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// OutputsOption tells an exported wrapper where the model outputs sit among the public
// inputs, when they are public.
func OutputsOption(m *prover.Model) []verifier.ExportOption {
	l := circuits.NewLayout(m.Program)
	if len(l.Outputs) == 0 || !l.Outputs[0].Public {
		return nil
	}
	n := 0
	for _, s := range l.Outputs {
		n += s.Len
	}
	return []verifier.ExportOption{verifier.WithOutputs(l.Outputs[0].Offset, n)}
}
