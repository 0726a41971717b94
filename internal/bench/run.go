package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/internal/qdq"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// Options select what a run measures.
type Options struct {
	// Models are names of synthetic models, example models (onnxgen.ExampleNames), model
	// directories under SharedDir (by base name), or "all"/"default" for DefaultModels.
	// Empty means DefaultModels.
	Models  []string
	Systems []circuits.System
	// N is how many times witness generation, proving and verification are repeated
	// (the median is reported).
	N int
	// MaxConstraints skips setup and proving of circuits with more R1CS (Groth16)
	// constraints; PlonkMaxConstraints does the same for PLONK's SCS constraints (and
	// PLONK is not compiled at all when the R1CS count already exceeds it).
	MaxConstraints      int
	PlonkMaxConstraints int
	// SharedDir holds more models to measure (dir/<name>/network.onnx + input.json);
	// empty: none.
	SharedDir string
	// Floor measures the Groth16 MSM+FFT floor for every Groth16 circuit proved.
	Floor bool
	// Log receives progress lines (nil: none).
	Log io.Writer
	// Device proves on the CPU (default) or, in binaries built with -tags icicle,
	// the GPU (Groth16); proofs are verified on the CPU either way.
	Device prover.Device
	// Gas verifies every proof a second time in an in-process EVM with the exported
	// Solidity verifier (ZKMLVerifier wrapper included) and records the transaction gas;
	// the pinned solc must be installed (evm.UseCompiler / evm.DefaultCompiler).
	Gas bool
}

// Default caps. PLONK is capped lower: on 2 cores a 2^19-row PLONK setup+prove takes
// minutes, and its gadgets cost 2-5x the R1CS constraints, so the R1CS 2^20 models
// would need 2^22+ PLONK rows.
const (
	DefaultMaxConstraints      = 1 << 20
	DefaultPlonkMaxConstraints = 1 << 18
)

// DefaultSynthetic is the synthetic part of the default model set.
var DefaultSynthetic = []string{"mnist_mlp", "mnist_cnn", "cnn_2e16", "mlp_2e16", "cnn_2e18", "mlp_2e18", "cnn_2e20", "mlp_2e20"}

// SharedNames lists the models under dir (sorted; nil when dir is empty or missing).
func SharedNames(dir string) []string {
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "network.onnx")); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out
}

// DefaultInt8 are the int8 QDQ models of the default set: the MNIST-class models
// quantized by zkml quantize (see LoadModel).
var DefaultInt8 = []string{"mnist_mlp.int8", "mnist_cnn.int8"}

// DefaultModels is the example models (testdata/models, built in-process by onnxgen) and
// the models under sharedDir, followed by DefaultSynthetic and DefaultInt8.
func DefaultModels(sharedDir string) []string {
	return append(append(append(onnxgen.ExampleNames(), SharedNames(sharedDir)...), DefaultSynthetic...), DefaultInt8...)
}

// Int8Suffix names the int8 QDQ version of a model: "<model>.int8" is the model
// statically quantized (per-channel weights) by internal/qdq, calibrated on its input.
const Int8Suffix = ".int8"

// LoadModel resolves a model name: a synthetic model, an example model, a model
// directory under sharedDir, or any of them with Int8Suffix.
func LoadModel(name, sharedDir string) (*Model, error) {
	if base, ok := strings.CutSuffix(name, Int8Suffix); ok {
		m, err := LoadModel(base, sharedDir)
		if err != nil {
			return nil, err
		}
		return int8Model(m)
	}
	if _, ok := synthetic[name]; ok {
		return SyntheticModel(name)
	}
	if slices.Contains(onnxgen.ExampleNames(), name) {
		e, err := onnxgen.BuildExample(name)
		if err != nil {
			return nil, err
		}
		return &Model{Name: name, Desc: "example model: " + e.Ops, ONNX: e.ONNX, Input: e.Input, Config: quant.DefaultConfig(), Source: "example"}, nil
	}
	dir := filepath.Join(sharedDir, name)
	ob, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		return nil, fmt.Errorf("bench: model %q is neither synthetic, an example nor in %q: %w", name, sharedDir, err)
	}
	ib, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		return nil, err
	}
	m := &Model{Name: name, Desc: "model from " + sharedDir, ONNX: ob, Input: ib, Source: dir}
	m.Config = quant.DefaultConfig()
	return m, nil
}

// Result is the measurement of one model on one proving system.
type Result struct {
	Model  string `json:"model"`
	Desc   string `json:"description"`
	System string `json:"system"`
	// Constraints are R1CS (Groth16) or SCS (PLONK) constraints; Domain is the FFT domain.
	Constraints int `json:"constraints"`
	Wires       int `json:"wires"`
	Public      int `json:"public_inputs"`
	Domain      int `json:"domain"`

	WitnessS float64   `json:"witness_s"` // prover.NewWitness, median
	CompileS float64   `json:"compile_s"`
	SetupS   float64   `json:"setup_s"` // PLONK: includes the (unsafe test) KZG SRS
	ProveS   float64   `json:"prove_s"` // median of ProveAll
	ProveAll []float64 `json:"prove_all_s"`
	VerifyS  float64   `json:"verify_s"` // median

	PKBytes    int64 `json:"pk_bytes"`
	VKBytes    int64 `json:"vk_bytes"`
	ProofBytes int64 `json:"proof_bytes"`
	// ProveHeapPeak is the peak live Go heap (runtime/metrics
	// /memory/classes/heap/objects:bytes, sampled every 2 ms) while proving: circuit, key
	// and prover scratch together. MaxRSS is the process's getrusage ru_maxrss after this
	// result (a process-lifetime high-water mark: it only grows).
	ProveHeapPeak int64 `json:"prove_heap_peak_bytes"`
	MaxRSS        int64 `json:"maxrss_bytes"`

	// VerifyGas and DeployGas are the transaction gas of ZKMLVerifier.verify and of the
	// verifier's and wrapper's deployment (Options.Gas), on evm.DefaultFork.
	VerifyGas uint64 `json:"verify_gas,omitempty"`
	DeployGas uint64 `json:"deploy_gas,omitempty"`

	Floor *Floor `json:"floor,omitempty"` // Groth16 only
	// LoadAvg is /proc/loadavg's 1-minute figure when the row finished: how busy the
	// shared machine was.
	LoadAvg string `json:"loadavg,omitempty"`

	Skipped string `json:"skipped,omitempty"`
	Err     string `json:"error,omitempty"`
}

// FloorRatio is prove time / floor (0 when unknown).
func (r *Result) FloorRatio() float64 {
	if r.Floor == nil || r.Floor.TotalS == 0 || r.ProveS == 0 {
		return 0
	}
	return r.ProveS / r.Floor.TotalS
}

// WitnessFloorRatio is prove time / floor with the witness's own scalars.
func (r *Result) WitnessFloorRatio() float64 {
	if r.Floor == nil || r.Floor.WitTotalS == 0 || r.ProveS == 0 {
		return 0
	}
	return r.ProveS / r.Floor.WitTotalS
}

// Run measures every model on every system in order, calling each result's callback as
// it completes. Errors of one model are recorded in its Result, not returned.
func Run(ctx context.Context, o Options, each func(Result)) ([]Result, error) {
	if o.N < 1 {
		o.N = 1
	}
	if len(o.Systems) == 0 {
		o.Systems = []circuits.System{circuits.Groth16, circuits.Plonk}
	}
	if o.MaxConstraints == 0 {
		o.MaxConstraints = DefaultMaxConstraints
	}
	if o.PlonkMaxConstraints == 0 {
		o.PlonkMaxConstraints = DefaultPlonkMaxConstraints
	}
	names := expandModels(o.Models, o.SharedDir)
	var out []Result
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		m, err := LoadModel(name, o.SharedDir)
		if err != nil {
			return out, err
		}
		for _, r := range runModel(ctx, m, o) {
			out = append(out, r)
			if each != nil {
				each(r)
			}
		}
		freeMemory()
	}
	return out, nil
}

func expandModels(models []string, sharedDir string) []string {
	if len(models) == 0 {
		return DefaultModels(sharedDir)
	}
	var out []string
	for _, m := range models {
		switch m {
		case "all", "default":
			out = append(out, DefaultModels(sharedDir)...)
		case "examples", "shared":
			out = append(append(out, onnxgen.ExampleNames()...), SharedNames(sharedDir)...)
		case "synthetic":
			out = append(out, SyntheticNames()...)
		default:
			out = append(out, m)
		}
	}
	return out
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func runModel(ctx context.Context, m *Model, o Options) []Result {
	base := Result{Model: m.Name, Desc: m.Desc}
	fail := func(err error) []Result {
		var rs []Result
		for _, sys := range o.Systems {
			r := base
			r.System, r.Err = string(sys), err.Error()
			rs = append(rs, r)
		}
		return rs
	}
	g, p, err := prover.Build(m.ONNX, m.Config)
	if err != nil {
		return fail(err)
	}
	in, err := model.ParseInput(m.Input, g)
	if err != nil {
		return fail(err)
	}
	var w *prover.Witness
	var wt []float64
	for range o.N {
		start := time.Now()
		if w, err = prover.NewWitness(p, in); err != nil {
			return fail(err)
		}
		wt = append(wt, time.Since(start).Seconds())
	}
	base.WitnessS = median(wt)
	r1csCount := 0
	var rs []Result
	for _, sys := range o.Systems {
		if ctx.Err() != nil {
			break
		}
		r := base
		r.System = string(sys)
		if sys == circuits.Plonk && r1csCount > o.PlonkMaxConstraints {
			r.Skipped = fmt.Sprintf("R1CS has %d constraints, PLONK cap %d", r1csCount, o.PlonkMaxConstraints)
			rs = append(rs, r)
			continue
		}
		o.logf("%-22s %-8s compile", m.Name, sys)
		measure(&r, sys, p, w, o)
		if sys == circuits.Groth16 {
			r1csCount = r.Constraints
		}
		r.MaxRSS = maxRSS()
		r.LoadAvg = loadAvg()
		rs = append(rs, r)
		freeMemory()
	}
	return rs
}

// measure compiles, sets up, proves and verifies one circuit, filling r.
func measure(r *Result, sys circuits.System, p *quant.Program, w *prover.Witness, o Options) {
	start := time.Now()
	ccs, st, err := circuits.Compile(p, sys)
	if err != nil {
		r.Err = err.Error()
		return
	}
	r.CompileS = time.Since(start).Seconds()
	r.Constraints = st.Constraints
	r.Public = st.PublicInputs()
	r.Wires = st.Public + st.Secret + st.Internal
	limit := o.MaxConstraints
	if sys == circuits.Plonk {
		limit = o.PlonkMaxConstraints
	}
	if r.Constraints > limit {
		r.Skipped = fmt.Sprintf("%d constraints > cap %d", r.Constraints, limit)
		return
	}
	o.logf("%-22s %-8s %d constraints, setup", r.Model, sys, r.Constraints)
	start = time.Now()
	pk, vk, err := setup(ccs, sys)
	if err != nil {
		r.Err = err.Error()
		return
	}
	r.SetupS = time.Since(start).Seconds()
	r.PKBytes = sizeOf(pk)
	r.VKBytes = sizeOf(vk)
	switch k := pk.(type) {
	case *groth16bn254.ProvingKey:
		r.Domain = int(k.Domain.Cardinality)
	case *plonkbn254.ProvingKey:
		r.Domain = int(vk.(*plonkbn254.VerifyingKey).Size)
	}
	pub, err := w.Full.Public()
	if err != nil {
		r.Err = err.Error()
		return
	}
	var proof io.WriterTo
	for i := range o.N {
		o.logf("%-22s %-8s prove %d/%d", r.Model, sys, i+1, o.N)
		runtime.GC()
		var peak int64
		stop := SampleHeap(&peak)
		start = time.Now()
		proof, err = prove(ccs, pk, w.Full, sys, o.Device)
		el := time.Since(start).Seconds()
		stop()
		if err != nil {
			r.Err = err.Error()
			return
		}
		r.ProveAll = append(r.ProveAll, el)
		r.ProveHeapPeak = max(r.ProveHeapPeak, peak)
	}
	r.ProveS = median(r.ProveAll)
	r.ProofBytes = sizeOf(proof)
	var vt []float64
	for range o.N {
		start = time.Now()
		if err := verify(proof, vk, pub, sys); err != nil {
			r.Err = "verify: " + err.Error()
			return
		}
		vt = append(vt, time.Since(start).Seconds())
	}
	r.VerifyS = median(vt)
	if o.Gas {
		o.logf("%-22s %-8s verify on the EVM", r.Model, sys)
		if err := measureGas(r, p, proof, vk, pub); err != nil {
			r.Err = "evm: " + err.Error()
			return
		}
	}
	if o.Floor && sys == circuits.Groth16 {
		if gpk, ok := pk.(*groth16bn254.ProvingKey); ok {
			o.logf("%-22s %-8s MSM+FFT floor", r.Model, sys)
			r.Floor = MeasureFloor(gpk, o.N)
			if err := r.Floor.MeasureWitnessFloor(gpk, ccs, w.Full, o.N); err != nil {
				o.logf("%-22s witness floor: %v", r.Model, err)
			}
		}
	}
}

func setup(ccs constraint.ConstraintSystem, sys circuits.System) (pk, vk io.WriterTo, err error) {
	return prover.SetupKeys(ccs, sys)
}

func prove(ccs constraint.ConstraintSystem, pk io.WriterTo, full witness.Witness, sys circuits.System, device prover.Device) (io.WriterTo, error) {
	p, _, err := prover.ProveCS(sys, device, ccs, pk, full)
	return p, err
}

func verify(proof, vk io.WriterTo, pub witness.Witness, sys circuits.System) error {
	if sys == circuits.Plonk {
		return plonk.Verify(proof.(plonk.Proof), vk.(plonk.VerifyingKey), pub, prover.VerifierOptions(sys)...)
	}
	return groth16.Verify(proof.(groth16.Proof), vk.(groth16.VerifyingKey), pub, prover.VerifierOptions(sys)...)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// sizeOf is the serialized size (WriteTo: the encoding zkml stores on disk).
func sizeOf(v io.WriterTo) int64 {
	var c countWriter
	if _, err := v.WriteTo(&c); err != nil {
		return -1
	}
	return c.n
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// HeapObjects is the live Go heap as runtime/metrics counts it
// (/memory/classes/heap/objects:bytes: objects, including garbage not yet collected).
func HeapObjects() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// SampleHeap records the peak of HeapObjects, sampled every 2 ms, into *peak until the
// returned stop is called.
func SampleHeap(peak *int64) (stop func()) {
	read := func() { *peak = max(*peak, HeapObjects()) }
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait(); read() }
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b))[0]
}

// Env describes the machine and versions a run was made on.
type Env struct {
	Date        string `json:"date"`
	Host        string `json:"host"`
	CPU         string `json:"cpu"`
	NumCPU      int    `json:"nproc"`
	GOMAXPROC   int    `json:"gomaxprocs"`
	MemTotal    string `json:"mem_total"`
	Go          string `json:"go"`
	OS          string `json:"os"`
	Gnark       string `json:"gnark"`
	GnarkCrypto string `json:"gnark_crypto"`
	Command     string `json:"command"`
	Load        string `json:"loadavg"`
}

// Environment collects Env for the running process; command is the command line.
func Environment(command string) Env {
	e := Env{Date: time.Now().UTC().Format(time.RFC3339), NumCPU: runtime.NumCPU(), GOMAXPROC: runtime.GOMAXPROCS(0),
		Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Command: command}
	e.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					e.CPU = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := bytes.Cut(b, []byte("\n")); ok {
			e.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(string(l), "MemTotal:")), " ")
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		e.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if e.Gnark == "" { // test binaries carry no dependency versions
		e.Gnark, e.GnarkCrypto = "(see go.mod)", "(see go.mod)"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/consensys/gnark":
				e.Gnark = d.Version
			case "github.com/consensys/gnark-crypto":
				e.GnarkCrypto = d.Version
			}
		}
	}
	return e
}

// int8Model quantizes m to int8 QDQ, calibrated on its own input.
func int8Model(m *Model) (*Model, error) {
	g, err := model.Load(m.ONNX)
	if err != nil {
		return nil, err
	}
	in, err := model.ParseInput(m.Input, g)
	if err != nil {
		return nil, err
	}
	q, err := qdq.Quantize(m.ONNX, [][]*model.Tensor{in}, qdq.Options{PerChannel: true})
	if err != nil {
		return nil, fmt.Errorf("bench: quantize %s: %w", m.Name, err)
	}
	return &Model{Name: m.Name + Int8Suffix, Desc: "int8 QDQ of " + m.Name + " (per-channel weights): " + m.Desc,
		ONNX: q, Input: m.Input, Config: m.Config, Source: m.Source}, nil
}
