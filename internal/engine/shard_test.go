package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/internal/ptautest"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/verifier"
)

// TestShardedBundleOnChain proves the ReLU model sharded in two through the engine's
// sharded steps and verifies the assembled bundle on an in-process EVM with the
// contracts the service serves (each segment's verifier, the bundle verifier) and the
// proof's calldata; calldata with a changed public input does not verify.
func TestShardedBundleOnChain(t *testing.T) {
	solc := evm.RequireCompiler(t)
	ctx := context.Background()
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile("../../model/testdata/relu/input.json")
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{}
	dir := t.TempDir()
	if _, err := e.Compile(ctx, dir, onnx, []byte(`{"shard":{"cuts":[1]}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Setup(ctx, dir, "groth16"); err != nil {
		t.Fatal(err)
	}
	acts, n, err := e.PrepareSegments(ctx, dir, "groth16", input)
	if err != nil || n != 2 {
		t.Fatalf("prepare: %d segments, %v", n, err)
	}
	var segs [][]byte
	for i := range n {
		sp, err := e.ProveSegment(ctx, dir, "groth16", acts, i)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, sp)
	}
	res, err := e.AssembleBundle(ctx, dir, "groth16", acts, segs)
	if err != nil {
		t.Fatal(err)
	}
	bundleOnChain(t, solc, e, dir, res)
}

// bundleOnChain verifies the bundle res of the sharded model in dir on an in-process
// EVM with the contracts the engine serves (each segment's verifier, the bundle
// verifier) and the proof's calldata; calldata with a changed public input does not
// verify.
func bundleOnChain(t *testing.T, solc *evm.Compiler, e *Engine, dir string, res api.ProofResult) {
	t.Helper()
	ctx := context.Background()
	var b shard.Bundle
	if err := json.Unmarshal(res.Proof, &b); err != nil {
		t.Fatal(err)
	}
	n := len(b.Segments)
	chain, err := evm.NewChain(solc.Fork())
	if err != nil {
		t.Fatal(err)
	}
	wrapperABI, err := abi.JSON(bytes.NewReader(verifier.WrapperABI()))
	if err != nil {
		t.Fatal(err)
	}
	// One compilation of every served source (solc is most of this test's time).
	sources := map[string]string{}
	for i := range n {
		src, err := e.SegmentVerifier(ctx, dir, "groth16", i)
		if err != nil {
			t.Fatal(err)
		}
		sources[fmt.Sprintf("segment%d.sol", i)] = string(src)
	}
	src, err := e.SolidityVerifier(ctx, dir, "groth16")
	if err != nil {
		t.Fatal(err)
	}
	sources[shard.BundleContract+".sol"] = string(src)
	arts, err := solc.Compile(ctx, sources)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []common.Address
	for i := range n {
		art := arts[fmt.Sprintf("segment%d.sol:%s", i, verifier.WrapperContract)]
		if art == nil {
			t.Fatalf("no segment %d verifier among %d artifacts", i, len(arts))
		}
		args, err := wrapperABI.Pack("", id32(t, b.Segments[i].ID))
		if err != nil {
			t.Fatal(err)
		}
		addr, _, err := chain.DeployArtifact(art, args)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, addr)
	}
	art, err := arts.Get(shard.BundleContract)
	if err != nil {
		t.Fatal(err)
	}
	bundleABI, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		t.Fatal(err)
	}
	// The constructor's pair table as the served source's comment states it.
	pl := loadPlan(t, dir)
	table := shard.PairTable(pl.Pairs)
	args, err := bundleABI.Pack("", id32(t, b.ModelID), id32(t, b.PlanID), addrs, bigs(table))
	if err != nil {
		t.Fatal(err)
	}
	words := make([]string, len(table))
	for i, o := range table {
		words[i] = fmt.Sprint(o)
	}
	if !bytes.Contains(src, []byte("//                ["+strings.Join(words, ", ")+"]")) {
		t.Fatalf("served bundle verifier does not state the pair table %v", table)
	}
	addr, _, err := chain.DeployArtifact(art, args)
	if err != nil {
		t.Fatal(err)
	}
	call := func(data []byte) bool {
		t.Helper()
		r, err := chain.Call(addr, data)
		if err != nil || r.Reverted {
			t.Fatalf("verify: %v (reverted %v)", err, r != nil && r.Reverted)
		}
		v, err := bundleABI.Unpack("verify", r.Return)
		if err != nil {
			t.Fatal(err)
		}
		return v[0].(bool)
	}
	if !call(res.Calldata) {
		t.Fatal("the proof's calldata does not verify on-chain")
	}
	// The last word of the calldata is the last segment's last public input.
	bad := bytes.Clone(res.Calldata)
	bad[len(bad)-1] ^= 1
	if call(bad) {
		t.Fatal("calldata with a changed public input verifies on-chain")
	}
}

func id32(t *testing.T, s string) [32]byte {
	t.Helper()
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("ID %q", s)
	}
	copy(out[:], b)
	return out
}

func bigs(xs []int) []*big.Int {
	out := []*big.Int{}
	for _, x := range xs {
		out = append(out, big.NewInt(int64(x)))
	}
	return out
}

func loadPlan(t *testing.T, dir string) *shard.Plan {
	t.Helper()
	_, pl, _, err := openSharded(dir, "groth16")
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestShardedSetupPolicy: under a policy with a public SRS and trusted setups required,
// a sharded model's PLONK segment keys are made on the SRS (they were refused: the
// engine made development keys only), the model's provenance is the bundle's
// (universal-srs), and its verifiers are served without the development banner; its
// Groth16 setup is refused; and with development segment keys, trusted setups
// required, neither the bundle verifier nor a segment verifier is served (a segment
// verifier was).
func TestShardedSetupPolicy(t *testing.T) {
	ctx := context.Background()
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	ptau := filepath.Join(t.TempDir(), "pot12.ptau")
	if err := ptautest.Write(ptau, 12, 5, 7, 11); err != nil {
		t.Fatal(err)
	}
	e := &Engine{SetupPolicy: prover.SetupPolicy{Ptau: ptau, SRSCache: t.TempDir(), RequireTrusted: true}}
	dir := t.TempDir()
	if _, err := e.Compile(ctx, dir, onnx, []byte(`{"shard":{"cuts":[1]}}`)); err != nil {
		t.Fatal(err)
	}
	prov, err := e.Setup(ctx, dir, "plonk")
	if err != nil {
		t.Fatal(err)
	}
	if prov.Trust != prover.TrustUniversalSRS {
		t.Fatalf("sharded PLONK setup on the SRS: trust %q", prov.Trust)
	}
	for i := range 2 {
		src, err := e.SegmentVerifier(ctx, dir, "plonk", i)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte("DEVELOPMENT KEYS")) {
			t.Errorf("segment %d verifier of SRS keys carries the development banner", i)
		}
	}
	if src, err := e.SolidityVerifier(ctx, dir, "plonk"); err != nil || bytes.Contains(src, []byte("DEVELOPMENT KEYS")) {
		t.Fatalf("bundle verifier of SRS keys: %v", err)
	}
	if _, err := e.Setup(ctx, dir, "groth16"); !errors.Is(err, api.ErrInvalidSettings) || !strings.Contains(err.Error(), "development setup refused") {
		t.Fatalf("sharded Groth16 setup with trusted setups required: %v", err)
	}

	dev := &Engine{}
	devDir := t.TempDir()
	if _, err := dev.Compile(ctx, devDir, onnx, []byte(`{"shard":{"cuts":[1]}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Setup(ctx, devDir, "groth16"); err != nil {
		t.Fatal(err)
	}
	dev.SetupPolicy.RequireTrusted = true
	if _, err := dev.SegmentVerifier(ctx, devDir, "groth16", 0); !errors.Is(err, api.ErrInvalidSettings) || !strings.Contains(err.Error(), "development setup refused") {
		t.Fatalf("segment verifier of development keys, trusted setups required: %v", err)
	}
	if _, err := dev.SolidityVerifier(ctx, devDir, "groth16"); !errors.Is(err, api.ErrInvalidSettings) || !strings.Contains(err.Error(), "development setup refused") {
		t.Fatalf("bundle verifier of development keys, trusted setups required: %v", err)
	}
}
