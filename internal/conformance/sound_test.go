package conformance

import (
	"testing"

	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// soundModel is the shared sequence of the proof-soundness tests (LRN, embedding,
// zoo, transformer, wrong outputs): a model loaded and lowered, its float reference,
// a Groth16 proof of the honest outputs, and its circuit for tampered witnesses.
type soundModel struct {
	t    testing.TB
	Data []byte
	G    *model.Graph
	P    *quant.Program
	cfg  quant.Config

	ccs   constraint.ConstraintSystem
	stats *circuits.Stats
}

// loadSound loads data and lowers it with cfg.
func loadSound(t testing.TB, data []byte, cfg quant.Config) *soundModel {
	t.Helper()
	g, err := model.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	m := lowerSound(t, g, cfg)
	m.Data = data
	return m
}

// lowerSound lowers g with cfg.
func lowerSound(t testing.TB, g *model.Graph, cfg quant.Config) *soundModel {
	t.Helper()
	p, err := quant.Lower(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &soundModel{t: t, G: g, P: p, cfg: cfg}
}

// Float evaluates the float reference on x.
func (m *soundModel) Float(x ...*model.Tensor) []*model.Tensor {
	m.t.Helper()
	want, err := m.G.Eval(x)
	if err != nil {
		m.t.Fatal(err)
	}
	return want
}

// Int quantizes x and evaluates the integer program: its inputs and outputs.
func (m *soundModel) Int(x ...*model.Tensor) (in, out [][]int64) {
	m.t.Helper()
	in, out, err := m.TryInt(x...)
	if err != nil {
		m.t.Fatal(err)
	}
	return in, out
}

// TryInt is Int returning the integer evaluator's error (inputs it refuses).
func (m *soundModel) TryInt(x ...*model.Tensor) (in, out [][]int64, err error) {
	m.t.Helper()
	if in, err = m.P.QuantizeInputs(x); err != nil {
		m.t.Fatal(err)
	}
	r, err := m.P.Eval(in)
	if err != nil {
		return in, nil, err
	}
	return in, r.Outputs, nil
}

// Prove proves x with Groth16 (setup, proof, verification; outputs within the
// conformance tolerance of want) through the conformance path, unless -short.
func (m *soundModel) Prove(t *testing.T, name, op string, x []*model.Tensor, want []*model.Tensor) {
	t.Helper()
	if testing.Short() {
		return
	}
	c := &Case{Name: name, Op: op, Model: m.Data}
	if err := proveProgram(c, m.P, &DataSet{Name: "set", Inputs: x, Outputs: want}, m.cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Compile compiles the model's Groth16 circuit once (gnark's logger silenced: the
// tampered witnesses log every failed constraint) and returns its statistics.
func (m *soundModel) Compile() *circuits.Stats {
	m.t.Helper()
	if m.ccs != nil {
		return m.stats
	}
	prev := logger.Logger()
	logger.Disable()
	m.t.Cleanup(func() { logger.Set(prev) })
	var err error
	if m.ccs, m.stats, err = circuits.Compile(m.P, circuits.Groth16); err != nil {
		m.t.Fatal(err)
	}
	return m.stats
}

// Solve solves the circuit for integer inputs in and claimed outputs out.
func (m *soundModel) Solve(in, out [][]int64) error {
	m.t.Helper()
	m.Compile()
	a, err := circuits.Assign(m.P, in, out)
	if err != nil {
		m.t.Fatal(err)
	}
	w, err := frontend.NewWitness(a, circuits.Field)
	if err != nil {
		m.t.Fatal(err)
	}
	return m.ccs.IsSolved(w)
}

// Solves reports whether in and out solve the circuit.
func (m *soundModel) Solves(in, out [][]int64) bool { return m.Solve(in, out) == nil }

// offByOne copies out with element i of output k changed by delta.
func offByOne(out [][]int64, k, i int, delta int64) [][]int64 {
	bad := make([][]int64, len(out))
	for j := range out {
		bad[j] = append([]int64(nil), out[j]...)
	}
	bad[k][i] += delta
	return bad
}
