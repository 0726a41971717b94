// Package api is the HTTP transport of the proving service (chi): it authenticates API
// keys, validates requests, records jobs in the store and hands them to a queue. It
// declares the small interfaces it needs (Engine, Queue, Workspaces) and never
// imports gnark or a database driver.
package api

import (
	"context"
	"encoding/json"
	"errors"
)

// Engine runs the zkml pipeline on a model working directory. Implementations are safe for concurrent use.
type Engine interface {
	// Compile parses, quantizes and compiles an ONNX model into dir; settings is a JSON object (may be empty).
	Compile(ctx context.Context, dir string, onnx []byte, settings []byte) (ModelInfo, error)
	// Setup generates proving/verifying keys for system ("groth16" or "plonk") into dir
	// and says where they come from.
	Setup(ctx context.Context, dir string, system string) (Provenance, error)
	// Prove proves one inference; input is the input.json body ({"input_data": [[...]]}).
	Prove(ctx context.Context, dir string, system string, input []byte, progress func(stage string, frac float64)) (ProofResult, error)
	// Verify checks a proof against the model's verifying key and the public inputs that
	// identify the model; a bad proof is an invalid Verdict with its reason, never an error.
	Verify(ctx context.Context, dir string, system string, proof []byte, publicInputs []string) (Verdict, error)
	// SolidityVerifier returns the Solidity source of the verifier contract for system.
	SolidityVerifier(ctx context.Context, dir string, system string) ([]byte, error)
}

// ShardEngine is implemented by an Engine that runs sharded models (compile settings
// with "shard"): a model split into segments, each its own circuit and keys, whose
// proof is a bundle of segment proofs. The service proves the segments as separate
// jobs: PrepareSegments once, ProveSegment per segment (on any worker, in any order),
// AssembleBundle when all are done.
type ShardEngine interface {
	// Segments returns the number of segments of the model in dir (0: not sharded).
	Segments(ctx context.Context, dir string) (int, error)
	// PrepareSegments evaluates the model once on input (the input.json body) and
	// returns the boundary activations every segment proves from (opaque bytes) and
	// the number of segments.
	PrepareSegments(ctx context.Context, dir, system string, input []byte) (activations []byte, segments int, err error)
	// ProveSegment proves segment i from the activations and returns its segment
	// proof (opaque bytes).
	ProveSegment(ctx context.Context, dir, system string, activations []byte, i int) ([]byte, error)
	// AssembleBundle assembles and checks the bundle of the segment proofs, in segment
	// order; the result's Proof is the bundle (JSON).
	AssembleBundle(ctx context.Context, dir, system string, activations []byte, segments [][]byte) (ProofResult, error)
	// VerifyBundle checks a bundle (JSON) against the model's plan and segment keys; a
	// bad or malformed bundle is an invalid Verdict with its reason, never an error.
	VerifyBundle(ctx context.Context, dir, system string, bundle []byte) (Verdict, error)
	// SegmentVerifier returns the Solidity source of segment i's verifier contract
	// (SolidityVerifier of a sharded model returns the bundle verifier's, which calls
	// one of these per segment).
	SegmentVerifier(ctx context.Context, dir, system string, i int) ([]byte, error)
}

// Verdict is the answer to a verification: Reason says why an invalid proof is invalid.
type Verdict struct {
	Valid  bool
	Reason string
}

// SettingsChecker is implemented by an Engine that can check compile settings without
// compiling. The API then refuses bad settings (400 invalid_settings) before anything
// is queued, instead of accepting the upload and failing its compile job.
type SettingsChecker interface {
	// CheckSettings returns an error wrapping ErrInvalidSettings for bad settings.
	CheckSettings(settings []byte) error
}

// ModelInfo is what compiling a model reports.
type ModelInfo struct {
	ModelID     string
	Constraints map[string]int // per system
	Inputs      [][]int        // shapes
	Outputs     [][]int        // shapes
	Stats       json.RawMessage
}

// ProofResult is one proved inference.
type ProofResult struct {
	Proof        []byte
	PublicInputs []string // decimal field elements
	Outputs      [][]float64
	Calldata     []byte
	ProveSeconds float64
}

// Sentinel errors an Engine wraps (with %w) when the caller, not the service, is at
// fault. They map to HTTP 422 and to a failed job with the matching error code; any
// other engine error is treated as internal and the job is retried.
var (
	// ErrInvalidInput: the input.json does not fit the model (shape, range, syntax).
	ErrInvalidInput = errors.New("invalid input")
	// ErrInvalidModel: the ONNX file cannot be parsed or uses unsupported operators.
	ErrInvalidModel = errors.New("invalid model")
	// ErrInvalidSettings: the compile settings are malformed or out of range.
	ErrInvalidSettings = errors.New("invalid settings")
)

// Systems are the proving systems the service accepts.
var Systems = []string{"groth16", "plonk"}

func validSystem(s string) bool {
	for _, x := range Systems {
		if s == x {
			return true
		}
	}
	return false
}
