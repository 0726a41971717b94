// Package apitest provides a deterministic fake api.Engine for tests of the API, the
// queue and the service: it does no cryptography, sleeps where the real pipeline would
// work, honours cancellation, and produces proofs that Verify accepts and a tampered
// proof that it rejects.
package apitest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zkml/zkml/api"
)

// Engine is the fake. The zero value works with no delays.
type Engine struct {
	// Delay is slept in each stage (compile, setup, witness, prove).
	Delay time.Duration
	// Block makes Prove wait until its context is cancelled (a proof that never ends).
	Block bool
	// FailProve makes the first FailProve Prove calls return a transient error.
	FailProve int32
	// Provenance, when set, is what Setup reports instead of development keys.
	Provenance *api.Provenance

	Compiles, Setups, Proves, Verifies atomic.Int32
}

var (
	_ api.Engine          = (*Engine)(nil)
	_ api.SettingsChecker = (*Engine)(nil)
)

// CheckSettings refuses what Compile refuses: settings that are not a JSON object, or
// {"invalid": true}.
func (e *Engine) CheckSettings(settings []byte) error {
	var s struct {
		Invalid bool `json:"invalid"`
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil || s.Invalid {
			return fmt.Errorf("fake: settings: %w", api.ErrInvalidSettings)
		}
	}
	return nil
}

func (e *Engine) sleep(ctx context.Context) error {
	if e.Delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(e.Delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Compile accepts any bytes except those starting with "bad" (api.ErrInvalidModel);
// settings {"invalid": true} yield api.ErrInvalidSettings.
func (e *Engine) Compile(ctx context.Context, dir string, onnx []byte, settings []byte) (api.ModelInfo, error) {
	e.Compiles.Add(1)
	if len(onnx) == 0 || bytes.HasPrefix(onnx, []byte("bad")) {
		return api.ModelInfo{}, fmt.Errorf("fake: parse onnx: %w", api.ErrInvalidModel)
	}
	if err := e.CheckSettings(settings); err != nil {
		return api.ModelInfo{}, err
	}
	if err := e.sleep(ctx); err != nil {
		return api.ModelInfo{}, err
	}
	sum := sha256.Sum256(onnx)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return api.ModelInfo{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "circuit.bin"), sum[:], 0o644); err != nil {
		return api.ModelInfo{}, err
	}
	return api.ModelInfo{
		ModelID:     fmt.Sprintf("%x", sum[:8]),
		Constraints: map[string]int{"groth16": 1000 + len(onnx), "plonk": 3000 + len(onnx)},
		Inputs:      [][]int{{1, 4}},
		Outputs:     [][]int{{1, 2}},
		Stats:       json.RawMessage(`{"layers":[{"op":"Gemm","constraints":800},{"op":"Relu","constraints":200}]}`),
	}, nil
}

// Setup writes a verifying key derived from the circuit: development keys, unless
// Provenance is set.
func (e *Engine) Setup(ctx context.Context, dir string, system string) (api.Provenance, error) {
	e.Setups.Add(1)
	circuit, err := os.ReadFile(filepath.Join(dir, "circuit.bin"))
	if err != nil {
		return api.Provenance{}, fmt.Errorf("fake: setup before compile: %w", err)
	}
	if err := e.sleep(ctx); err != nil {
		return api.Provenance{}, err
	}
	vk := sha256.Sum256(append([]byte(system+"|"), circuit...))
	if err := os.WriteFile(filepath.Join(dir, system+".vk"), vk[:], 0o644); err != nil {
		return api.Provenance{}, err
	}
	if e.Provenance != nil {
		return *e.Provenance, nil
	}
	return api.Provenance{Trust: api.TrustDevelopment, Summary: "development (fake single-party setup)"}, nil
}

func (e *Engine) vk(dir, system string) ([]byte, error) {
	vk, err := os.ReadFile(filepath.Join(dir, system+".vk"))
	if err != nil {
		return nil, fmt.Errorf("fake: no %s keys: %w", system, err)
	}
	return vk, nil
}

func sign(vk []byte, public []string) []byte {
	m := hmac.New(sha256.New, vk)
	m.Write([]byte(strings.Join(public, ",")))
	return m.Sum(nil)
}

// Prove needs four inputs per row; public inputs are the inputs scaled by 2^7 and the
// proof is an HMAC of them under the verifying key.
func (e *Engine) Prove(ctx context.Context, dir string, system string, input []byte, progress func(string, float64)) (api.ProofResult, error) {
	e.Proves.Add(1)
	start := time.Now()
	vk, err := e.vk(dir, system)
	if err != nil {
		return api.ProofResult{}, err
	}
	var in struct {
		InputData [][]float64 `json:"input_data"`
	}
	if err := json.Unmarshal(input, &in); err != nil || len(in.InputData) == 0 || len(in.InputData[0]) != 4 {
		return api.ProofResult{}, fmt.Errorf("fake: want input_data of shape [1,4]: %w", api.ErrInvalidInput)
	}
	if e.FailProve > 0 && atomic.AddInt32(&e.FailProve, -1) >= 0 {
		return api.ProofResult{}, errors.New("fake: transient prover failure")
	}
	progress("witness", 0.1)
	if err := e.sleep(ctx); err != nil {
		return api.ProofResult{}, err
	}
	progress("prove", 0.5)
	if e.Block {
		<-ctx.Done()
		return api.ProofResult{}, ctx.Err()
	}
	if err := e.sleep(ctx); err != nil {
		return api.ProofResult{}, err
	}
	var public []string
	sum := 0.0
	for _, v := range in.InputData[0] {
		public = append(public, strconv.FormatInt(int64(math.Abs(math.Round(v*128))), 10))
		sum += v
	}
	progress("done", 1)
	proof := sign(vk, public)
	return api.ProofResult{
		Proof:        proof,
		PublicInputs: public,
		Outputs:      [][]float64{{sum, -sum}},
		Calldata:     append([]byte{0xde, 0xad, 0xbe, 0xef}, proof...),
		ProveSeconds: time.Since(start).Seconds(),
	}, nil
}

// Verify recomputes the HMAC; any mismatch is an invalid verdict.
func (e *Engine) Verify(ctx context.Context, dir string, system string, proof []byte, publicInputs []string) (api.Verdict, error) {
	e.Verifies.Add(1)
	vk, err := e.vk(dir, system)
	if err != nil {
		return api.Verdict{}, err
	}
	if !hmac.Equal(proof, sign(vk, publicInputs)) {
		return api.Verdict{Reason: "invalid proof: signature mismatch"}, nil
	}
	return api.Verdict{Valid: true}, nil
}

// SolidityVerifier returns a stub contract naming the verifying key.
func (e *Engine) SolidityVerifier(ctx context.Context, dir string, system string) ([]byte, error) {
	vk, err := e.vk(dir, system)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n\n// %s verifier, vk %x\ncontract Verifier {}\n", system, vk), nil
}
