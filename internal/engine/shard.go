package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// Sharded models in the service (issue 16). The compile settings' "shard" object
// splits the model into segments (prover/shard); each segment is compiled and set up
// in turn, and a proof is a bundle of segment proofs, each proved by its own job
// (api.ShardEngine). With ChildCommand, the steps of a proof that load the whole
// program or a segment's circuit and keys (PrepareSegments, ProveSegment,
// AssembleBundle) run in a child process under the memory limit, like compile, setup
// and unsharded proofs: a segment that dies there fails its job, not the worker.

// ShardSettings is the "shard" object of a model's compile settings. Its presence
// shards the model. Each segment must fit MaxMemoryBytes and MaxConstraints, and the
// worker's own limits (ZKML_MAX_JOB_MEMORY, ZKML_MAX_CONSTRAINTS); Cuts, when given,
// cut the program before those layer indices instead of the budget's split.
type ShardSettings struct {
	MaxMemoryBytes int64 `json:"max_memory_bytes,omitempty"`
	MaxConstraints int64 `json:"segment_constraints,omitempty"`
	Cuts           []int `json:"cuts,omitempty"`
}

var _ api.ShardEngine = (*Engine)(nil)

// splitSettings takes the "shard" object out of compile settings; the rest are the
// quantizer's.
func splitSettings(b []byte) (rest []byte, sh *ShardSettings, err error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return b, nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", api.ErrInvalidSettings, api.JSONErrorMessage(err))
	}
	raw, ok := obj["shard"]
	if !ok {
		return b, nil, nil
	}
	delete(obj, "shard")
	sh = &ShardSettings{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sh); err != nil {
		return nil, nil, fmt.Errorf("%w: shard: %s", api.ErrInvalidSettings, api.JSONErrorMessage(err))
	}
	if sh.MaxMemoryBytes < 0 || sh.MaxConstraints < 0 {
		return nil, nil, fmt.Errorf("%w: shard: limits must not be negative", api.ErrInvalidSettings)
	}
	for i, c := range sh.Cuts {
		if c <= 0 || i > 0 && c <= sh.Cuts[i-1] {
			return nil, nil, fmt.Errorf("%w: shard: cuts %v must be positive and strictly increasing", api.ErrInvalidSettings, sh.Cuts)
		}
	}
	rest, err = json.Marshal(obj)
	return rest, sh, err
}

// segmentLimits is the budget every segment must fit: the settings' and the engine's,
// whichever is tighter.
func (e *Engine) segmentLimits(sh *ShardSettings) bench.Limits {
	l := e.Limits
	tighter := func(a, b int64) int64 {
		if a == 0 || b > 0 && b < a {
			return b
		}
		return a
	}
	l.MaxMemoryBytes = tighter(l.MaxMemoryBytes, sh.MaxMemoryBytes)
	l.MaxConstraints = tighter(l.MaxConstraints, sh.MaxConstraints)
	return l
}

var systems = []circuits.System{circuits.Groth16, circuits.Plonk}

// compileSharded splits the model m was created as and compiles every segment for
// both systems, one at a time.
func (e *Engine) compileSharded(ctx context.Context, m *prover.Model, sh *ShardSettings) (api.ModelInfo, error) {
	limits := e.segmentLimits(sh)
	var pl *shard.Plan
	var err error
	if len(sh.Cuts) > 0 {
		pl, err = shard.Split(m.Program, sh.Cuts)
		if errors.Is(err, shard.ErrBadCut) {
			return api.ModelInfo{}, fmt.Errorf("%w: %v", api.ErrInvalidSettings, err)
		}
	} else {
		pl, err = shard.SplitBudget(m.Program, systems, limits)
		if errors.Is(err, bench.ErrOverBudget) {
			return api.ModelInfo{}, fmt.Errorf("%w: %v", api.ErrOverBudget, strings.TrimPrefix(err.Error(), bench.ErrOverBudget.Error()+": "))
		}
	}
	if err != nil {
		return api.ModelInfo{}, classify(err)
	}
	if err := shard.Save(m, pl); err != nil {
		return api.ModelInfo{}, err
	}
	info := api.ModelInfo{ModelID: m.ID, Constraints: map[string]int{}}
	for _, in := range m.Graph.Inputs {
		info.Inputs = append(info.Inputs, in.Shape)
	}
	for _, out := range m.Graph.Outputs {
		info.Outputs = append(info.Outputs, out.Shape)
	}
	type segStats struct {
		Index       int                        `json:"index"`
		ID          string                     `json:"segment_id"`
		Layers      [2]int                     `json:"layers"`
		BoundaryIn  int                        `json:"boundary_in"`
		BoundaryOut int                        `json:"boundary_out"`
		Stats       map[string]*circuits.Stats `json:"stats"`
	}
	var segs []segStats
	for i, s := range pl.Segments {
		ss := segStats{Index: i, ID: s.ID, Layers: [2]int{s.First, s.End}, BoundaryIn: len(s.In), BoundaryOut: len(s.Out), Stats: map[string]*circuits.Stats{}}
		for _, sys := range systems {
			if err := ctx.Err(); err != nil {
				return api.ModelInfo{}, err
			}
			est, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				return api.ModelInfo{}, classify(err)
			}
			if err := limits.Check(est); err != nil {
				return api.ModelInfo{}, fmt.Errorf("%w: segment %d: %v", api.ErrOverBudget, i, strings.TrimPrefix(err.Error(), bench.ErrOverBudget.Error()+": "))
			}
			st, err := shard.Dir{M: m, Sys: sys}.Compile(pl, i)
			if err != nil {
				return api.ModelInfo{}, classify(err)
			}
			// A model's constraints are its largest segment's: what one job proves.
			info.Constraints[string(sys)] = max(info.Constraints[string(sys)], st.Constraints)
			ss.Stats[string(sys)] = st
		}
		segs = append(segs, ss)
	}
	info.Stats, err = json.Marshal(map[string]any{"sharded": map[string]any{"plan_id": pl.ID, "segments": segs}})
	return info, err
}

// setupSharded makes every segment's keys (compiling those whose circuit is missing)
// under the setup policy: PLONK on the public SRS when one is configured, else the
// development setup, refused when trusted setups are required (Groth16 segment keys
// have no ceremony yet). The bundle's provenance is recorded as the model's.
func (e *Engine) setupSharded(m *prover.Model, sys circuits.System) error {
	universal := sys == circuits.Plonk && e.SetupPolicy.Ptau != ""
	if !universal && e.SetupPolicy.RequireTrusted {
		return fmt.Errorf("%w: the %s keys of sharded models come from a development setup (PLONK on a public SRS, ZKML_PTAU, is the trusted setup for segments)", prover.ErrUntrustedSetup, sys)
	}
	pl, err := shard.Load(m)
	if err != nil {
		return err
	}
	d := shard.Dir{M: m, Sys: sys}
	for i := range pl.Segments {
		if !d.HasCircuit(i) {
			if _, err := d.Compile(pl, i); err != nil {
				return err
			}
		}
		if universal {
			err = d.SetupUniversal(i, e.SetupPolicy.Ptau, e.SetupPolicy.SRSCache)
		} else {
			err = d.Setup(i)
		}
		if err != nil {
			return err
		}
	}
	return d.RecordTrust(pl)
}

// openSharded opens a sharded model directory and its plan.
func openSharded(dir, system string) (*prover.Model, *shard.Plan, circuits.System, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	m, err := prover.Open(dir)
	if err != nil {
		return nil, nil, "", err
	}
	if !shard.Sharded(m) {
		return nil, nil, "", fmt.Errorf("%w: model %s is not sharded", api.ErrInvalidInput, m.ID)
	}
	pl, err := shard.Load(m)
	if err != nil {
		return nil, nil, "", err
	}
	return m, pl, sys, nil
}

// Segments implements api.ShardEngine.
func (e *Engine) Segments(ctx context.Context, dir string) (int, error) {
	// Every prove job asks: an unsharded model is answered without opening it.
	if _, err := os.Stat(filepath.Join(dir, shard.PlanFile)); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	m, err := prover.Open(dir)
	if err != nil {
		return 0, err
	}
	if !shard.Sharded(m) {
		return 0, nil
	}
	pl, err := shard.Load(m)
	if err != nil {
		return 0, err
	}
	return len(pl.Segments), nil
}

// activations are the boundary tensors of one inference: per segment its inputs and
// outputs, and the model's integer outputs.
type activations struct {
	ModelID string      `json:"model_id"`
	PlanID  string      `json:"plan_id"`
	Ins     [][][]int64 `json:"ins"`
	Outs    [][][]int64 `json:"outs"`
	Final   [][]int64   `json:"final"`
	Outputs [][]float64 `json:"outputs"`
}

func readActivations(b []byte, pl *shard.Plan) (*activations, error) {
	var a activations
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("activations: %w", err)
	}
	if a.PlanID != pl.ID || len(a.Ins) != len(pl.Segments) || len(a.Outs) != len(pl.Segments) {
		return nil, fmt.Errorf("activations are for plan %s with %d segments, the model's is %s with %d", a.PlanID, len(a.Ins), pl.ID, len(pl.Segments))
	}
	return &a, nil
}

// PrepareSegments implements api.ShardEngine.
func (e *Engine) PrepareSegments(ctx context.Context, dir, system string, input []byte) ([]byte, int, error) {
	if len(e.ChildCommand) > 0 {
		res, err := e.runChild(ctx, ChildArgs{Op: OpPrepareSegments, Dir: dir, System: system},
			map[string][]byte{"input.json": input})
		if err != nil {
			return nil, 0, err
		}
		if len(res.Activations) == 0 || res.Segments <= 0 {
			return nil, 0, fmt.Errorf("%s process wrote no activations", OpPrepareSegments)
		}
		return res.Activations, res.Segments, nil
	}
	m, pl, _, err := openSharded(dir, system)
	if err != nil {
		return nil, 0, err
	}
	in, err := model.ParseInput(input, m.Graph)
	if err != nil {
		return nil, 0, classify(err)
	}
	qi, err := m.Program.QuantizeInputs(in)
	if err != nil {
		return nil, 0, classify(err)
	}
	ins, outs, final, err := pl.Activations(m.Program, qi)
	if err != nil {
		return nil, 0, classify(err)
	}
	a := activations{ModelID: m.ID, PlanID: pl.ID, Ins: ins, Outs: outs, Final: final}
	for _, o := range m.Program.Dequantize(final) {
		a.Outputs = append(a.Outputs, o.Data)
	}
	b, err := json.Marshal(a)
	return b, len(pl.Segments), err
}

// ProveSegment implements api.ShardEngine.
func (e *Engine) ProveSegment(ctx context.Context, dir, system string, acts []byte, i int) ([]byte, error) {
	if len(e.ChildCommand) > 0 {
		res, err := e.runChild(ctx, ChildArgs{Op: OpProveSegment, Dir: dir, System: system, Segment: i},
			map[string][]byte{"activations.json": acts})
		if err != nil {
			return nil, err
		}
		if len(res.SegmentProof) == 0 {
			return nil, fmt.Errorf("%s process wrote no segment proof", OpProveSegment)
		}
		return res.SegmentProof, nil
	}
	m, pl, sys, err := openSharded(dir, system)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(pl.Segments) {
		return nil, fmt.Errorf("%w: segment %d of %d", api.ErrInvalidInput, i, len(pl.Segments))
	}
	a, err := readActivations(acts, pl)
	if err != nil {
		return nil, err
	}
	d := shard.Dir{M: m, Sys: sys}
	ccs, err := d.Circuit(i)
	if err != nil {
		return nil, err
	}
	pk, err := d.ProvingKey(i)
	if err != nil {
		return nil, err
	}
	vk, err := d.VerifyingKey(i)
	if err != nil {
		return nil, err
	}
	sp, err := shard.ProveSegment(pl.Segments[i], sys, ccs, pk, vk, a.Ins[i], a.Outs[i])
	if err != nil {
		return nil, classify(err)
	}
	return json.Marshal(sp)
}

// AssembleBundle implements api.ShardEngine: the bundle is verified before it is
// returned.
func (e *Engine) AssembleBundle(ctx context.Context, dir, system string, acts []byte, segments [][]byte) (api.ProofResult, error) {
	if len(e.ChildCommand) > 0 {
		segs, err := json.Marshal(segments)
		if err != nil {
			return api.ProofResult{}, err
		}
		res, err := e.runChild(ctx, ChildArgs{Op: OpAssembleBundle, Dir: dir, System: system},
			map[string][]byte{"activations.json": acts, "segments.json": segs})
		if err != nil {
			return api.ProofResult{}, err
		}
		if res.Bundle == nil || len(res.Bundle.Proof) == 0 {
			return api.ProofResult{}, fmt.Errorf("%s process wrote no bundle", OpAssembleBundle)
		}
		return *res.Bundle, nil
	}
	m, pl, sys, err := openSharded(dir, system)
	if err != nil {
		return api.ProofResult{}, err
	}
	a, err := readActivations(acts, pl)
	if err != nil {
		return api.ProofResult{}, err
	}
	if len(segments) != len(pl.Segments) {
		return api.ProofResult{}, fmt.Errorf("%d segment proofs, the plan has %d segments", len(segments), len(pl.Segments))
	}
	b := &shard.Bundle{Version: shard.BundleVersion, System: sys, ModelID: m.ID, PlanID: pl.ID, IntOutputs: a.Final, Outputs: a.Outputs}
	res := api.ProofResult{Outputs: a.Outputs}
	for i, raw := range segments {
		var sp shard.SegmentProof
		if err := json.Unmarshal(raw, &sp); err != nil {
			return api.ProofResult{}, fmt.Errorf("segment %d proof: %w", i, err)
		}
		b.Segments = append(b.Segments, &sp)
		res.ProveSeconds += sp.ProveSeconds
	}
	if _, err := shard.Verify(pl, sys, shard.Dir{M: m, Sys: sys}.VerifyingKey, b); err != nil {
		return api.ProofResult{}, fmt.Errorf("assembled bundle does not verify: %w", err)
	}
	if res.Calldata, err = shard.Calldata(b); err != nil {
		return api.ProofResult{}, err
	}
	res.Proof, err = json.Marshal(b)
	return res, err
}

// VerifyBundle implements api.ShardEngine.
func (e *Engine) VerifyBundle(ctx context.Context, dir, system string, bundle []byte) (api.Verdict, error) {
	if n, err := e.Segments(ctx, dir); err != nil {
		return api.Verdict{}, err
	} else if n == 0 {
		return api.Verdict{Reason: "the model is not sharded: its proofs are single proofs, not bundles"}, nil
	}
	m, pl, sys, err := openSharded(dir, system)
	if err != nil {
		return api.Verdict{}, err
	}
	var b shard.Bundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		return api.Verdict{Reason: "bundle: " + err.Error()}, nil
	}
	err = func() (err error) {
		// A malformed proof that gnark's decoder lets through must not take the
		// request down: it does not verify.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", shard.ErrInvalid, r)
			}
		}()
		_, err = shard.Verify(pl, sys, shard.Dir{M: m, Sys: sys}.VerifyingKey, &b)
		return err
	}()
	if errors.Is(err, shard.ErrInvalid) {
		return api.Verdict{Reason: err.Error()}, nil
	}
	if err != nil {
		return api.Verdict{}, err
	}
	return api.Verdict{Valid: true}, nil
}

// On-chain verification of bundles (contracts/ZKMLBundleVerifier.sol): one
// ZKMLVerifier per segment, deployed with the segment ID as its modelId, and the
// bundle verifier that checks every pair's boundary commitments and calls them.

// SegmentVerifier implements api.ShardEngine: segment i's ZKMLVerifier.
func (e *Engine) SegmentVerifier(ctx context.Context, dir, system string, i int) ([]byte, error) {
	m, pl, sys, err := openSharded(dir, system)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(pl.Segments) {
		return nil, fmt.Errorf("%w: segment %d: the model has %d segments", api.ErrInvalidInput, i, len(pl.Segments))
	}
	if err := m.CheckTrusted(sys, e.SetupPolicy); err != nil {
		return nil, classify(err)
	}
	s := pl.Segments[i]
	d := shard.Dir{M: m, Sys: sys}
	vk, err := d.VerifyingKey(i)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if d.Provenance(i).Trust == prover.TrustDevelopment {
		buf.WriteString(prover.DevVerifierBanner)
	}
	fmt.Fprintf(&buf, "// Segment %d of %d of model %s (plan %s): deploy with modelId_ = 0x%s (the segment ID).\n",
		i, len(pl.Segments), m.ID, pl.ID, s.ID)
	if err := shard.ExportSegmentVerifier(&buf, s, vk); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bundleVerifier is the source of ZKMLBundleVerifier for a sharded model, with its
// constructor arguments in a comment (shard.BundleVerifierSource).
func bundleVerifier(m *prover.Model, pl *shard.Plan, sys circuits.System) []byte {
	var buf bytes.Buffer
	shard.BundleVerifierSource(&buf, pl, sys, m.Provenance(sys).Trust == prover.TrustDevelopment,
		"GET verifier.sol?system=...&segment=i", "GET /v1/proofs/{id}: calldata")
	return buf.Bytes()
}
