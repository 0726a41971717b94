package prover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// Witness is a checked, quantized inference ready to prove: inputs, integer reference
// outputs and the full gnark witness.
type Witness struct {
	Inputs     [][]int64
	IntOutputs [][]int64
	Outputs    []*model.Tensor // dequantized
	Full       witness.Witness
}

// NewWitness quantizes float inputs, runs the integer reference and builds the gnark
// witness. Out-of-range values are reported here, naming the layer, before any proving.
func NewWitness(p *quant.Program, inputs []*model.Tensor) (*Witness, error) {
	qi, err := p.QuantizeInputs(inputs)
	if err != nil {
		return nil, err
	}
	r, err := p.Eval(qi)
	if err != nil {
		return nil, err
	}
	a, err := circuits.Assign(p, qi, r.Outputs)
	if err != nil {
		return nil, err
	}
	full, err := fillWitness(a)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	return &Witness{Inputs: qi, IntOutputs: r.Outputs, Outputs: p.Dequantize(r.Outputs), Full: full}, nil
}

// AssignWitness builds the full gnark witness of p for integer inputs and the
// integer outputs the reference evaluator produced (circuits.Assign, then the witness
// without gnark's reflection walk; see fillWitness).
func AssignWitness(p *quant.Program, inputs, outputs [][]int64) (witness.Witness, error) {
	a, err := circuits.Assign(p, inputs, outputs)
	if err != nil {
		return nil, err
	}
	full, err := fillWitness(a)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	return full, nil
}

// fillWitness builds the gnark witness straight from the circuit's Public and Secret
// vectors (the schema order: public first). gnark's frontend.NewWitness walks the
// circuit by reflection and formats a name per element, which dominated witness
// generation (about 57x slower on the MNIST MLP).
func fillWitness(a *circuits.Circuit) (witness.Witness, error) {
	w, err := witness.New(circuits.Field)
	if err != nil {
		return nil, err
	}
	ch := make(chan any, 256)
	go func() {
		defer close(ch)
		for _, v := range a.Public {
			ch <- v
		}
		for _, v := range a.Secret {
			ch <- v
		}
	}()
	if err := w.Fill(len(a.Public), len(a.Secret), ch); err != nil {
		for range ch { // let the producer finish
		}
		return nil, err
	}
	return w, nil
}

// Proof is one proved inference.
type Proof struct {
	System       circuits.System `json:"system"`
	ModelID      string          `json:"model_id"`
	Proof        []byte          `json:"proof"`
	Public       []byte          `json:"public_witness"`
	PublicInputs []string        `json:"public_inputs"`
	Outputs      [][]float64     `json:"outputs"`
	IntOutputs   [][]int64       `json:"int_outputs"`
	ProveSeconds float64         `json:"prove_seconds"`
	Device       Device          `json:"device"`
	// Commitments of hashed groups ("inputs", "outputs", "params"), decimal.
	Commitments map[string]string `json:"commitments,omitempty"`
}

// commitments names the public commitments of a witness's hashed groups.
func commitments(p *quant.Program, w *Witness) (map[string]string, error) {
	cs, err := circuits.Commitments(p, w.Inputs, w.IntOutputs)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	names := map[int]string{circuits.TagInputs: "inputs", circuits.TagOutputs: "outputs", circuits.TagParams: "params"}
	out := map[string]string{}
	for i, h := range circuits.NewLayout(p).Hashes {
		out[names[h.Tag]] = cs[i].String()
	}
	return out, nil
}

// Prove proves an inference of the model on float inputs with sys. The proof is
// verified before it is returned: a proof that does not verify is an error, never a
// result.
func (m *Model) Prove(sys circuits.System, inputs []*model.Tensor, opts ...ProveOption) (*Proof, error) {
	cfg := proveConfig{device: CPU}
	for _, o := range opts {
		o(&cfg)
	}
	if err := m.Graph.CheckInputs(inputs); err != nil {
		return nil, err
	}
	w, err := NewWitness(m.Program, inputs)
	if err != nil {
		return nil, err
	}
	ccs, err := m.Circuit(sys)
	if err != nil {
		return nil, err
	}
	pk, err := m.ProvingKey(sys)
	if err != nil {
		return nil, err
	}
	vk, err := m.VerifyingKey(sys)
	if err != nil {
		return nil, err
	}
	device := resolveDevice(cfg.device, sys)
	start := time.Now()
	var proof writerTo
	if device != CPU {
		name := fileName("pk", sys)
		proof, err = proveICICLE(device, ccs, m.man().Files[name].SHA256, func() ([]byte, error) { return m.ReadArtifact(name) }, w.Full)
	} else {
		proof, err = proveRaw(sys, ccs, pk, w.Full)
	}
	if err != nil {
		return nil, err
	}
	res, err := seal(m.Program, sys, device, vk, proof, w, time.Since(start))
	if err != nil {
		return nil, err
	}
	res.ModelID = m.ID
	return res, nil
}

// seal verifies a fresh proof on the CPU and packages it with its public inputs,
// commitments and outputs. Every proof, and above all a GPU-made one, is verified
// before it leaves the prover: an invalid proof is an error, never a result.
func seal(p *quant.Program, sys circuits.System, device Device, vk any, proof writerTo, w *Witness, elapsed time.Duration) (*Proof, error) {
	pub, err := w.Full.Public()
	if err != nil {
		return nil, err
	}
	if err := verifyRaw(sys, vk, proof, pub); err != nil {
		return nil, fmt.Errorf("%s prover produced a proof that does not verify (not returned): %w", device, err)
	}
	var pb bytes.Buffer
	if _, err := proof.WriteTo(&pb); err != nil {
		return nil, err
	}
	pubBytes, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	cm, err := commitments(p, w)
	if err != nil {
		return nil, err
	}
	res := &Proof{System: sys, Proof: pb.Bytes(), Public: pubBytes, PublicInputs: fieldStrings(pub), IntOutputs: w.IntOutputs,
		ProveSeconds: elapsed.Seconds(), Commitments: cm, Device: device}
	for _, o := range w.Outputs {
		res.Outputs = append(res.Outputs, o.Data)
	}
	return res, nil
}

// ProveProgram compiles p, runs a development setup, proves w and verifies the proof,
// all in memory: the whole pipeline without a model directory, for conformance tests
// and benchmarks.
func ProveProgram(p *quant.Program, sys circuits.System, w *Witness) (*Proof, error) {
	ccs, _, err := circuits.Compile(p, sys)
	if err != nil {
		return nil, err
	}
	pk, vk, err := SetupKeys(ccs, sys)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	proof, err := proveRaw(sys, ccs, pk, w.Full)
	if err != nil {
		return nil, err
	}
	return seal(p, sys, CPU, vk, proof, w, time.Since(start))
}

// proveRaw runs gnark's prover, turning a solver panic (possible only for a witness
// that does not satisfy the circuit) into an error.
func proveRaw(sys circuits.System, ccs constraint.ConstraintSystem, pk any, full witness.Witness) (proof writerTo, err error) {
	defer func() {
		if r := recover(); r != nil {
			proof, err = nil, fmt.Errorf("prove: witness does not satisfy the circuit: %v", r)
		}
	}()
	if sys == circuits.Plonk {
		p, err := plonk.Prove(ccs, pk.(plonk.ProvingKey), full, ProverOptions(sys)...)
		if err != nil {
			return nil, fmt.Errorf("plonk prove: %w", err)
		}
		return p, nil
	}
	p, err := groth16.Prove(ccs, pk.(groth16.ProvingKey), full, ProverOptions(sys)...)
	if err != nil {
		return nil, fmt.Errorf("groth16 prove: %w", err)
	}
	return p, nil
}

// ProveWitness runs gnark's prover for sys with zkml's prover options on a full
// witness (a witness that does not satisfy the circuit is an error, not a panic): the
// prover of one circuit, for callers that hold their own circuit and keys (sharded
// models' segments).
func ProveWitness(sys circuits.System, ccs constraint.ConstraintSystem, pk any, full witness.Witness) (io.WriterTo, error) {
	return proveRaw(sys, ccs, pk, full)
}

// VerifyWitness verifies proof (a gnark proof of sys) for the public witness pub
// with zkml's verifier options.
func VerifyWitness(sys circuits.System, vk, proof any, pub witness.Witness) error {
	return verifyRaw(sys, vk, proof, pub)
}

// verifyRaw checks a fresh proof with the verifying key before it leaves the prover.
func verifyRaw(sys circuits.System, vk any, proof any, pub witness.Witness) error {
	if sys == circuits.Plonk {
		return plonk.Verify(proof.(plonk.Proof), vk.(plonk.VerifyingKey), pub, VerifierOptions(sys)...)
	}
	return groth16.Verify(proof.(groth16.Proof), vk.(groth16.VerifyingKey), pub, VerifierOptions(sys)...)
}

// fieldStrings lists a witness's elements as decimal strings. gnark's binary witness
// is three uint32 counts followed by 32-byte big-endian field elements.
func fieldStrings(w witness.Witness) []string {
	b, err := w.MarshalBinary()
	if err != nil || len(b) < 12 {
		return nil
	}
	var out []string
	for b = b[12:]; len(b) >= 32; b = b[32:] {
		out = append(out, new(big.Int).SetBytes(b[:32]).String())
	}
	return out
}

// SaveProof writes a proof and its outputs into the model directory.
func (m *Model) SaveProof(p *Proof) error {
	if err := m.WriteArtifact(fileName("proof", p.System), p.Proof); err != nil {
		return err
	}
	if err := m.WriteArtifact(fileName("public", p.System), p.Public); err != nil {
		return err
	}
	out, err := json.MarshalIndent(struct {
		ModelID      string            `json:"model_id"`
		System       string            `json:"system"`
		Outputs      [][]float64       `json:"outputs"`
		IntOutputs   [][]int64         `json:"int_outputs"`
		PublicInputs []string          `json:"public_inputs"`
		Commitments  map[string]string `json:"commitments,omitempty"`
	}{m.ID, string(p.System), p.Outputs, p.IntOutputs, p.PublicInputs, p.Commitments}, "", "  ")
	if err != nil {
		return err
	}
	return m.WriteArtifact(fmt.Sprintf("output.%s.json", p.System), out)
}
