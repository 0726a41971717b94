// Package examples_test tests the example consumer contracts in the simulated EVM, end
// to end from proofs made by the zkml service.
package examples_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/client"
	"github.com/zkml/zkml/client/clienttest"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/internal/onnxtest"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// settings compile the model with a secret input bound by a public commitment, as
// VerifiedClassifier requires.
const settings = `{"input_visibility":"hashed"}`

// TestVerifiedClassifier proves two inferences of a tiny classifier with the service,
// deploys the service's verifier and VerifiedClassifier on the simulated EVM, and
// submits the proofs: each records the argmax of the proven outputs under the input's
// commitment (checked against the commitment computed off-chain from the input); a
// replay, and a proof with a forged output, are refused.
func TestVerifiedClassifier(t *testing.T) {
	solc := evm.RequireCompiler(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	onnx := onnxtest.TinyGemm(1)

	// The service: compile with a hashed input, set up, prove two inputs.
	admin := clienttest.Start(t)
	key, err := admin.CreateKey(ctx, "classifier")
	if err != nil {
		t.Fatal(err)
	}
	c := admin.WithKey(key.Key)
	created, err := c.UploadModel(ctx, client.ModelUpload{Name: "tiny", ONNX: onnx, Settings: json.RawMessage(settings)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitJob(ctx, created.Job.ID, nil); err != nil {
		t.Fatal(err)
	}
	m, err := c.GetModel(ctx, created.Model.ID)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := c.Setup(ctx, m.ID, client.SetupRequest{System: "groth16"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitJob(ctx, setup.ID, nil); err != nil {
		t.Fatal(err)
	}
	sol, err := c.VerifierSolidity(ctx, m.ID, "groth16")
	if err != nil {
		t.Fatal(err)
	}

	// Off-chain: where the input commitment is, and its value for each input.
	cfg, err := engine.ParseSettings([]byte(settings))
	if err != nil {
		t.Fatal(err)
	}
	g, prog, err := prover.Build(onnx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	layout := circuits.NewLayout(prog)
	if len(layout.Hashes) != 1 || layout.Hashes[0].Tag != circuits.TagInputs {
		t.Fatalf("layout commits %+v, want the inputs only", layout.Hashes)
	}
	commitIndex := layout.Hashes[0].Offset

	// The chain: the service's verifier, then the classifier.
	sources := map[string]string{"ZKMLVerifier.sol": string(sol), "examples/VerifiedClassifier.sol": readFile(t, "VerifiedClassifier.sol")}
	arts, err := solc.Compile(ctx, sources)
	if err != nil {
		t.Fatal(err)
	}
	wrapperABI, err := verifier.ParsedWrapperABI()
	if err != nil {
		t.Fatal(err)
	}
	chain, err := evm.NewChain(solc.Fork())
	if err != nil {
		t.Fatal(err)
	}
	modelID := hexBytes32(t, m.EngineModelID)
	verifierAddr := deploy(t, chain, arts, "ZKMLVerifier", wrapperABI, modelID)
	classifierArt, err := arts.Get("VerifiedClassifier")
	if err != nil {
		t.Fatal(err)
	}
	classifierABI, err := abi.JSON(strings.NewReader(string(classifierArt.ABI)))
	if err != nil {
		t.Fatal(err)
	}
	classifier := deploy(t, chain, arts, "VerifiedClassifier", classifierABI, verifierAddr, big.NewInt(int64(commitIndex)))

	tests := []struct {
		input []float64
		class int
	}{
		{[]float64{1, -0.5, 0.25, 2}, 0}, // y = (2, 0.625, 0)
		{[]float64{0, 0, 0, -1}, 2},      // y = (0.375, 0, 1.125)
	}
	for _, tc := range tests {
		proof, err := c.ProveAndWait(ctx, m.ID, client.ProofRequest{Input: client.InputData(tc.input)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := argmax(proof.Outputs[0]); got != tc.class {
			t.Fatalf("input %v: service outputs %v have argmax %d, want %d", tc.input, proof.Outputs, got, tc.class)
		}
		calldata, err := client.Calldata(proof)
		if err != nil {
			t.Fatal(err)
		}
		args, err := wrapperABI.Methods["verify"].Inputs.Unpack(calldata[4:])
		if err != nil {
			t.Fatal(err)
		}
		proofBytes, publics := args[0].([]byte), args[1].([]*big.Int)

		want := inputCommitment(t, g, prog, tc.input)
		if publics[commitIndex].Cmp(want) != 0 {
			t.Fatalf("public input %d is %s; the input's commitment computed off-chain is %s", commitIndex, publics[commitIndex], want)
		}
		commitment := common.BigToHash(want)

		res := transact(t, chain, classifier, classifierABI, "submit", proofBytes, publics)
		if res.Reverted {
			t.Fatalf("submit of input %v reverted: %s", tc.input, res.RevertReason())
		}
		out, err := classifierABI.Unpack("submit", res.Return)
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].(*big.Int); got.Int64() != int64(tc.class) {
			t.Fatalf("submit returned class %s, want %d", got, tc.class)
		}
		t.Logf("input %v: class %d recorded for commitment %s, %d gas", tc.input, tc.class, commitment, res.GasUsed)

		res = call(t, chain, classifier, classifierABI, "classOf", commitment)
		out, err = classifierABI.Unpack("classOf", res.Return)
		if err != nil {
			t.Fatal(err)
		}
		score := new(big.Float).SetInt(out[2].(*big.Int))
		score.Quo(score, big.NewFloat(float64(int64(1)<<cfg.Scale)))
		if f, _ := score.Float64(); !out[0].(bool) || out[1].(*big.Int).Int64() != int64(tc.class) || f != proof.Outputs[0][tc.class] {
			t.Fatalf("classOf = %v (score %v), want known, class %d, score %v", out, f, tc.class, proof.Outputs[0][tc.class])
		}

		// A replay is refused, naming the recorded class.
		res = transact(t, chain, classifier, classifierABI, "submit", proofBytes, publics)
		wantRevert(t, res, classifierABI, "AlreadyClassified")

		// A forged output (another class would win) is refused.
		forged := append([]*big.Int(nil), publics...)
		forged[layout.Outputs[0].Offset+(tc.class+1)%3] = big.NewInt(1 << 20)
		res = transact(t, chain, classifier, classifierABI, "submit", proofBytes, forged)
		wantRevert(t, res, classifierABI, "InvalidProof")
	}

	// An unknown commitment is not classified.
	res := call(t, chain, classifier, classifierABI, "classOf", common.Hash{1})
	if out, err := classifierABI.Unpack("classOf", res.Return); err != nil || out[0].(bool) {
		t.Fatalf("classOf(unknown) = %v, %v; want unknown", out, err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hexBytes32(t *testing.T, s string) [32]byte {
	t.Helper()
	var out [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 32 {
		t.Fatalf("model ID %q is not 32 bytes of hex: %v", s, err)
	}
	copy(out[:], b)
	return out
}

// inputCommitment computes off-chain the public commitment of one input of the model.
func inputCommitment(t *testing.T, g *model.Graph, p *quant.Program, input []float64) *big.Int {
	t.Helper()
	in, err := model.ParseInput(client.InputData(input), g)
	if err != nil {
		t.Fatal(err)
	}
	w, err := prover.NewWitness(p, in)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := circuits.Commitments(p, w.Inputs, w.IntOutputs)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

func deploy(t *testing.T, chain *evm.Chain, arts evm.Artifacts, name string, a abi.ABI, args ...any) common.Address {
	t.Helper()
	art, err := arts.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	packed, err := a.Pack("", args...)
	if err != nil {
		t.Fatal(err)
	}
	addr, _, err := chain.DeployArtifact(art, packed)
	if err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	return addr
}

func transact(t *testing.T, chain *evm.Chain, to common.Address, a abi.ABI, method string, args ...any) *evm.Result {
	t.Helper()
	return send(t, chain.Transact, to, a, method, args...)
}

func call(t *testing.T, chain *evm.Chain, to common.Address, a abi.ABI, method string, args ...any) *evm.Result {
	t.Helper()
	res := send(t, chain.Call, to, a, method, args...)
	if res.Reverted {
		t.Fatalf("%s reverted: %s", method, res.RevertReason())
	}
	return res
}

func send(t *testing.T, do func(common.Address, []byte) (*evm.Result, error), to common.Address, a abi.ABI, method string, args ...any) *evm.Result {
	t.Helper()
	data, err := a.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := do(to, data)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantRevert checks that res reverted with the custom error name of a.
func wantRevert(t *testing.T, res *evm.Result, a abi.ABI, name string) {
	t.Helper()
	id := a.Errors[name].ID
	if !res.Reverted || len(res.Return) < 4 || string(res.Return[:4]) != string(id[:4]) {
		t.Fatalf("want a revert with %s, got reverted=%v data %x", name, res.Reverted, res.Return)
	}
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
