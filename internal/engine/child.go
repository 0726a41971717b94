package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/prover"
)

// Child operations: what `zkml internal-job --op` runs.
const (
	OpCompile  = "compile"
	OpEstimate = "estimate"
	OpSetup    = "setup"
	OpProve    = "prove"
	// The steps of a sharded proof (api.ShardEngine): they hold a segment's circuit
	// and keys, or the whole program, so they run under the same memory limit.
	OpPrepareSegments = "prepare-segments"
	OpProveSegment    = "prove-segment"
	OpAssembleBundle  = "assemble-bundle"
)

// ChildArgs are the arguments of one child job (the flags of `zkml internal-job`).
type ChildArgs struct {
	Op       string // OpCompile, OpEstimate, OpSetup, OpProve or a sharded step
	Dir      string // model working directory
	System   string // setup, prove, sharded steps
	Input    string // prove, prepare-segments: input.json path
	ONNX     string // compile, estimate: model path
	Settings string // compile, estimate: settings.json path (may be empty)
	Device   string // prove: cpu or gpu
	Out      string // where the childResult JSON goes
	// Activations (prove-segment, assemble-bundle: the boundary activations' path),
	// Segment (prove-segment: which one) and SegmentProofs (assemble-bundle: a JSON
	// array of the segment proofs, base64) are the sharded steps' arguments.
	Activations, SegmentProofs string
	Segment                    int
	// TmpDir is the parent's temporary directory for this job; the child removes it
	// when the parent dies, since the parent then cannot.
	TmpDir string
	// MemoryLimit (bytes, 0: none) is enforced on the child itself: a soft Go memory
	// limit, and on Linux (except for GPU proofs) an address-space rlimit above what
	// the runtime has mapped at start.
	MemoryLimit int64
	// MaxConstraints and MaxMemory are the budget a compile or an estimate checks (0:
	// none): the engine's Limits, passed on.
	MaxConstraints, MaxMemory int64
	// Ptau, SRSCache and RequireTrusted are the engine's SetupPolicy, passed on: a
	// setup child makes PLONK keys on the public SRS, and refuses development keys
	// where the service requires trusted setups.
	Ptau, SRSCache string
	RequireTrusted bool
}

// RegisterFlags defines the child's command-line flags on fs, bound to a; Flags
// renders them.
func (a *ChildArgs) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.Op, "op", OpProve, "compile, estimate, setup, prove, prepare-segments, prove-segment or assemble-bundle")
	fs.StringVar(&a.Dir, "dir", "", "model directory")
	fs.StringVar(&a.System, "system", "groth16", "proving system")
	fs.StringVar(&a.Input, "input", "", "input.json (prove)")
	fs.StringVar(&a.ONNX, "onnx", "", "ONNX model (compile)")
	fs.StringVar(&a.Settings, "settings", "", "settings.json (compile)")
	fs.StringVar(&a.Out, "out", "", "where to write the result JSON")
	fs.StringVar(&a.Activations, "activations", "", "boundary activations (prove-segment, assemble-bundle)")
	fs.StringVar(&a.SegmentProofs, "segment-proofs", "", "segment proofs, a JSON array (assemble-bundle)")
	fs.IntVar(&a.Segment, "segment", 0, "segment index (prove-segment)")
	fs.StringVar(&a.Device, "device", "cpu", "cpu or gpu")
	fs.StringVar(&a.TmpDir, "tmp", "", "the parent's temporary directory, removed if the parent dies")
	fs.Int64Var(&a.MemoryLimit, "memory-limit", 0, "memory limit in bytes (0: none)")
	fs.Int64Var(&a.MaxConstraints, "max-constraints", 0, "constraint budget of a compile (0: none)")
	fs.Int64Var(&a.MaxMemory, "max-memory", 0, "estimated-memory budget of a compile in bytes (0: none)")
	fs.StringVar(&a.Ptau, "ptau", "", "setup: a public .ptau file for PLONK keys")
	fs.StringVar(&a.SRSCache, "srs-cache", "", "setup: where checked SRS imports are cached")
	fs.BoolVar(&a.RequireTrusted, "require-trusted", false, "setup: refuse development keys")
}

// Flags renders a as the child's command-line flags.
func (a ChildArgs) Flags() []string {
	f := []string{"--op", a.Op, "--dir", a.Dir, "--out", a.Out}
	add := func(name, v string) {
		if v != "" {
			f = append(f, "--"+name, v)
		}
	}
	add("system", a.System)
	add("input", a.Input)
	add("onnx", a.ONNX)
	add("settings", a.Settings)
	add("device", a.Device)
	add("tmp", a.TmpDir)
	add("ptau", a.Ptau)
	add("activations", a.Activations)
	add("segment-proofs", a.SegmentProofs)
	if a.Op == OpProveSegment {
		f = append(f, "--segment", strconv.Itoa(a.Segment))
	}
	add("srs-cache", a.SRSCache)
	if a.RequireTrusted {
		f = append(f, "--require-trusted")
	}
	if a.MemoryLimit > 0 {
		f = append(f, "--memory-limit", strconv.FormatInt(a.MemoryLimit, 10))
	}
	if a.MaxConstraints > 0 {
		f = append(f, "--max-constraints", strconv.FormatInt(a.MaxConstraints, 10))
	}
	if a.MaxMemory > 0 {
		f = append(f, "--max-memory", strconv.FormatInt(a.MaxMemory, 10))
	}
	return f
}

// childResult is what a child writes to ChildArgs.Out: one result, or the error with
// its api code so the parent can tell a user fault from an internal one.
type childResult struct {
	Info      *api.ModelInfo    `json:"info,omitempty"`
	Estimates []*bench.Estimate `json:"estimates,omitempty"`
	Proof     *prover.Proof     `json:"proof,omitempty"`
	// The sharded steps' results: PrepareSegments's activations and segment count,
	// ProveSegment's segment proof, AssembleBundle's verified bundle.
	Activations  json.RawMessage  `json:"activations,omitempty"`
	Segments     int              `json:"segments,omitempty"`
	SegmentProof json.RawMessage  `json:"segment_proof,omitempty"`
	Bundle       *api.ProofResult `json:"bundle,omitempty"`
	Code         string           `json:"code,omitempty"`
	Error        string           `json:"error,omitempty"`
}

// sentinels maps an error code back to the api sentinel it came from.
var sentinels = map[string]error{
	api.CodeInvalidInput:    api.ErrInvalidInput,
	api.CodeInvalidModel:    api.ErrInvalidModel,
	api.CodeInvalidSettings: api.ErrInvalidSettings,
	api.CodeOverBudget:      api.ErrOverBudget,
	api.CodeResourceLimit:   api.ErrResourceLimit,
}

// RunChild is the body of the `zkml internal-job` child process: it runs one
// operation in-process and writes its childResult to a.Out. It exits the process
// (removing a.TmpDir) as soon as its parent dies: on Linux the parent asks the kernel
// for SIGTERM on its death, and everywhere the child watches its stdin, a pipe whose
// other end only the parent holds, for EOF.
func RunChild(ctx context.Context, a ChildArgs, stdin io.Reader) error {
	watchParent(a.TmpDir, stdin)
	if a.MemoryLimit > 0 {
		debug.SetMemoryLimit(a.MemoryLimit)
		// A GPU prover maps the device's memory into its address space (CUDA reserves
		// far more virtual memory than it uses), so only the soft limit applies there.
		if a.Device != string(prover.GPU) {
			if err := limitAddressSpace(a.MemoryLimit); err != nil {
				return fmt.Errorf("memory limit: %w", err)
			}
		}
	}
	var res childResult
	err := func() error {
		e := &Engine{Limits: bench.Limits{MaxConstraints: a.MaxConstraints, MaxMemoryBytes: a.MaxMemory},
			SetupPolicy: prover.SetupPolicy{Ptau: a.Ptau, SRSCache: a.SRSCache, RequireTrusted: a.RequireTrusted}}
		switch a.Op {
		case OpCompile, OpEstimate:
			onnx, err := os.ReadFile(a.ONNX)
			if err != nil {
				return err
			}
			var settings []byte
			if a.Settings != "" {
				if settings, err = os.ReadFile(a.Settings); err != nil {
					return err
				}
			}
			if a.Op == OpEstimate {
				if err := e.checkGraph(onnx, settings); err != nil {
					return err
				}
				res.Estimates, err = Estimate(onnx, settings)
				return err
			}
			info, err := e.Compile(ctx, a.Dir, onnx, settings)
			res.Info = &info
			return err
		case OpSetup:
			_, err := e.Setup(ctx, a.Dir, a.System) // the parent reads the provenance from the manifest
			return err
		case OpProve:
			dev, err := prover.ParseDevice(a.Device)
			if err != nil {
				return err
			}
			e.Device = dev
			input, err := os.ReadFile(a.Input)
			if err != nil {
				return err
			}
			res.Proof, err = e.proveInProcess(a.Dir, a.System, input)
			return err
		case OpPrepareSegments:
			input, err := os.ReadFile(a.Input)
			if err != nil {
				return err
			}
			res.Activations, res.Segments, err = e.PrepareSegments(ctx, a.Dir, a.System, input)
			return err
		case OpProveSegment:
			acts, err := os.ReadFile(a.Activations)
			if err != nil {
				return err
			}
			res.SegmentProof, err = e.ProveSegment(ctx, a.Dir, a.System, acts, a.Segment)
			return err
		case OpAssembleBundle:
			acts, err := os.ReadFile(a.Activations)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(a.SegmentProofs)
			if err != nil {
				return err
			}
			var segs [][]byte
			if err := json.Unmarshal(b, &segs); err != nil {
				return fmt.Errorf("segment proofs: %w", err)
			}
			r, err := e.AssembleBundle(ctx, a.Dir, a.System, acts, segs)
			res.Bundle = &r
			return err
		}
		return fmt.Errorf("unknown child operation %q", a.Op)
	}()
	if err != nil {
		res = childResult{Code: api.EngineErrorCode(err), Error: err.Error()}
	}
	b, merr := json.Marshal(res)
	if merr != nil {
		return merr
	}
	if werr := os.WriteFile(a.Out, b, 0o600); werr != nil {
		return fmt.Errorf("write %s: %w", a.Out, werr)
	}
	return nil
}

// watchParent exits the process when the parent dies (SIGTERM from the kernel, or EOF
// on the pipe), after removing tmp.
func watchParent(tmp string, stdin io.Reader) {
	exit := func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		os.Exit(3)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		exit()
	}()
	if stdin != nil {
		go func() {
			io.Copy(io.Discard, stdin)
			exit()
		}()
	}
}

// runChild runs a child job of the engine's ChildCommand, killed when ctx ends, in a
// fresh temporary directory that it removes. A child that dies without writing its
// result fails with ErrResourceLimit and the tail of its stderr.
func (e *Engine) runChild(ctx context.Context, a ChildArgs, files map[string][]byte) (*childResult, error) {
	tmp, err := os.MkdirTemp("", "zkml-job-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	paths := map[string]string{}
	for name, b := range files {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	a.Input, a.ONNX, a.Settings = paths["input.json"], paths["model.onnx"], paths["settings.json"]
	a.Activations, a.SegmentProofs = paths["activations.json"], paths["segments.json"]
	a.Out, a.TmpDir = filepath.Join(tmp, "result.json"), tmp
	if a.MemoryLimit == 0 {
		a.MemoryLimit = e.Limits.MaxMemoryBytes
	}
	if a.MaxConstraints == 0 && a.MaxMemory == 0 {
		a.MaxConstraints, a.MaxMemory = e.Limits.MaxConstraints, e.Limits.MaxMemoryBytes
	}
	a.Ptau, a.SRSCache, a.RequireTrusted = e.SetupPolicy.Ptau, e.SetupPolicy.SRSCache, e.SetupPolicy.RequireTrusted
	args := append(append([]string{}, e.ChildCommand[1:]...), a.Flags()...)
	cmd := exec.CommandContext(ctx, e.ChildCommand[0], args...)
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	// The child's stdin is a pipe only this process writes: EOF tells it we died.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, err
	}
	setParentDeathSignal(cmd)
	// Pdeathsig fires when the thread that started the child exits, so keep this
	// goroutine on its thread until the child is gone.
	runtime.LockOSThread()
	err = cmd.Run()
	runtime.UnlockOSThread()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	b, rerr := os.ReadFile(a.Out)
	if err != nil || rerr != nil {
		if err == nil {
			err = rerr
		}
		limit := "no memory limit"
		if a.MemoryLimit > 0 {
			limit = fmt.Sprintf("memory limit %d MiB", a.MemoryLimit>>20)
		}
		return nil, fmt.Errorf("%w: %s process died (%v, %s): %s", api.ErrResourceLimit, a.Op, err, limit, stderr.summary())
	}
	var res childResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s process output: %w", a.Op, err)
	}
	if res.Error != "" {
		if s, ok := sentinels[res.Code]; ok {
			return nil, fmt.Errorf("%w: %s", s, strings.TrimPrefix(res.Error, s.Error()+": "))
		}
		return nil, errors.New(res.Error)
	}
	return &res, nil
}

// tailBuffer keeps the first and the last max bytes a child writes to stderr.
type tailBuffer struct {
	max        int
	head, tail bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	if n := t.max - t.head.Len(); n > 0 {
		t.head.Write(p[:min(n, len(p))])
	}
	t.tail.Write(p)
	if over := t.tail.Len() - t.max; over > 0 {
		t.tail.Next(over)
	}
	return len(p), nil
}

// summary is the first line of a Go runtime failure ("runtime: out of memory: ...",
// "fatal error: stack overflow", "panic: ...", or a signal such as "SIGSEGV: ..." from
// a runtime that could not map memory) if there is one, else the last line.
func (t *tailBuffer) summary() string {
	sc := bufio.NewScanner(bytes.NewReader(t.head.Bytes()))
	for sc.Scan() {
		l := sc.Text()
		for _, p := range []string{"runtime: out of memory", "fatal error:", "panic:", "SIGSEGV:", "SIGBUS:", "SIGABRT:"} {
			if strings.HasPrefix(l, p) {
				return l
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(t.tail.String()), "\n")
	return lines[len(lines)-1]
}
