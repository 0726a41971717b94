package shard

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/consensys/gnark/backend/witness"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/contracts"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// BundleContract is the Solidity bundle verifier (contracts/ZKMLBundleVerifier.sol).
const BundleContract = "ZKMLBundleVerifier"

// EVMBundle is a bundle verifier deployed on an in-process EVM chain: one ZKMLVerifier
// per segment (modelId: the segment ID) and the ZKMLBundleVerifier that calls them.
type EVMBundle struct {
	Chain    *evm.Chain
	Address  common.Address
	Segments []common.Address
	// DeployGas is the gas of every creation transaction (segment verifiers and
	// bundle verifier).
	DeployGas uint64
	abi       abi.ABI
}

func hex32(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("shard: %q is not a 32-byte hex ID", s)
	}
	copy(out[:], b)
	return out, nil
}

// OutputRange is where a segment's public outputs are among its public inputs (none
// unless its outputs are public): the verifier export's WithOutputs.
func OutputRange(p *quant.Program) (offset, count int) {
	l := circuits.NewLayout(p)
	if p.OutputVis != quant.Public || len(l.Outputs) == 0 {
		return 0, 0
	}
	for _, s := range l.Outputs {
		count += s.Len
	}
	return l.Outputs[0].Offset, count
}

// PairArgs is the bundle verifier's constructor argument pairs_: the plan's pair table
// (PairTable) as Solidity uint256s.
func PairArgs(pl *Plan) []*big.Int {
	out := []*big.Int{}
	for _, v := range PairTable(pl.Pairs) {
		out = append(out, big.NewInt(int64(v)))
	}
	return out
}

// ExportSegmentVerifier writes segment s's ZKMLVerifier (verifier.ExportSolidity with
// its public outputs and params binding) for its verifying key vk; it is deployed
// with modelId_ = the segment ID.
func ExportSegmentVerifier(w io.Writer, s *Segment, vk any) error {
	b, err := circuits.ModelBinding(s.Program)
	if err != nil {
		return err
	}
	off, n := OutputRange(s.Program)
	return verifier.ExportSolidity(w, vk, verifier.WithOutputs(off, n), verifier.WithBinding(b))
}

// BundleVerifierSource writes ZKMLBundleVerifier's source for pl, headed by the
// development banner when dev, and by its constructor arguments in a comment: where
// each segment's ZKMLVerifier comes from (segmentsFrom) and where a bundle's calldata
// comes from (calldataFrom).
func BundleVerifierSource(w io.Writer, pl *Plan, sys circuits.System, dev bool, segmentsFrom, calldataFrom string) {
	if dev {
		io.WriteString(w, prover.DevVerifierBanner)
	}
	fmt.Fprintf(w, "// Bundle verifier of sharded model %s (%s, %d segments). Deploy each segment's\n", pl.ModelID, sys, len(pl.Segments))
	fmt.Fprintf(w, "// ZKMLVerifier first (%s, modelId_ = its segment ID), then\n", segmentsFrom)
	io.WriteString(w, "// this contract with:\n")
	fmt.Fprintf(w, "//   modelId_   = 0x%s\n//   planId_    = 0x%s\n", pl.ModelID, pl.ID)
	io.WriteString(w, "//   segments_  = [the segment verifiers' addresses, in order]\n")
	for i, s := range pl.Segments {
		fmt.Fprintf(w, "//     segment %d: segment ID 0x%s\n", i, s.ID)
	}
	io.WriteString(w, "//   pairs_     = [producer, consumer, output slot, input slot per pair]:\n")
	fmt.Fprintf(w, "//                %s\n", ints(PairTable(pl.Pairs)))
	fmt.Fprintf(w, "// A proof's calldata (%s) calls verify(bytes[], uint256[][]).\n", calldataFrom)
	io.WriteString(w, contracts.ZKMLBundleVerifierSol)
}

// ints formats xs as a Solidity array literal.
func ints(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// bundleABI is the part of ZKMLBundleVerifier's ABI a bundle's calldata needs.
const bundleABI = `[{"type":"function","name":"verify","stateMutability":"view",
	"inputs":[{"name":"proofs","type":"bytes[]"},{"name":"publicInputs","type":"uint256[][]"}],
	"outputs":[{"name":"","type":"bool"}]}]`

// Calldata encodes ZKMLBundleVerifier.verify(proofs, publicInputs) for b.
func Calldata(b *Bundle) ([]byte, error) {
	a, err := abi.JSON(strings.NewReader(bundleABI))
	if err != nil {
		return nil, err
	}
	var proofs [][]byte
	var inputs [][]*big.Int
	for i, sp := range b.Segments {
		proof, err := verifier.DecodeProof(string(b.System), sp.Proof)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		pb, err := verifier.ProofBytes(proof)
		if err != nil {
			return nil, err
		}
		w, err := witness.New(circuits.Field)
		if err != nil {
			return nil, err
		}
		if err := w.UnmarshalBinary(sp.Public); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		in, err := verifier.PublicInputs(w)
		if err != nil {
			return nil, err
		}
		proofs, inputs = append(proofs, pb), append(inputs, in)
	}
	return a.Pack("verify", proofs, inputs)
}

// DeployBundleOnEVM exports and deploys every segment's verifier (verifier.ExportSolidity
// with its outputs and params binding) and the bundle verifier for pl on a fresh chain
// running c's fork.
func DeployBundleOnEVM(ctx context.Context, c *evm.Compiler, pl *Plan, vk func(i int) (any, error)) (*EVMBundle, error) {
	chain, err := evm.NewChain(c.Fork())
	if err != nil {
		return nil, err
	}
	wrapperABI, err := abi.JSON(bytes.NewReader(verifier.WrapperABI()))
	if err != nil {
		return nil, err
	}
	d := &EVMBundle{Chain: chain}
	for i, s := range pl.Segments {
		key, err := vk(i)
		if err != nil {
			return nil, err
		}
		var src bytes.Buffer
		if err := ExportSegmentVerifier(&src, s, key); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		arts, err := c.Compile(ctx, map[string]string{verifier.WrapperContract + ".sol": src.String()})
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		if err := arts.CheckCodeSizes(); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		art, err := arts.Get(verifier.WrapperContract)
		if err != nil {
			return nil, err
		}
		id, err := hex32(s.ID)
		if err != nil {
			return nil, err
		}
		args, err := wrapperABI.Pack("", id)
		if err != nil {
			return nil, err
		}
		addr, res, err := chain.DeployArtifact(art, args)
		if err != nil {
			return nil, fmt.Errorf("segment %d: deploy: %w", i, err)
		}
		d.Segments = append(d.Segments, addr)
		d.DeployGas += res.GasUsed
	}
	art, err := d.artifact(ctx, c)
	if err != nil {
		return nil, err
	}
	addr, gas, err := d.deploy(art, pl, d.Segments, PairArgs(pl))
	if err != nil {
		return nil, err
	}
	d.Address, d.DeployGas = addr, d.DeployGas+gas
	return d, nil
}

// artifact compiles ZKMLBundleVerifier and keeps its ABI.
func (d *EVMBundle) artifact(ctx context.Context, c *evm.Compiler) (*evm.Artifact, error) {
	arts, err := c.Compile(ctx, map[string]string{BundleContract + ".sol": contracts.ZKMLBundleVerifierSol})
	if err != nil {
		return nil, err
	}
	art, err := arts.Get(BundleContract)
	if err != nil {
		return nil, err
	}
	if d.abi, err = abi.JSON(bytes.NewReader(art.ABI)); err != nil {
		return nil, err
	}
	return art, nil
}

// deploy deploys the bundle verifier for pl's model and plan IDs with the segment
// verifiers and pair table given (constructor arguments segments_ and pairs_).
func (d *EVMBundle) deploy(art *evm.Artifact, pl *Plan, segments, pairs any) (common.Address, uint64, error) {
	modelID, err := hex32(pl.ModelID)
	if err != nil {
		return common.Address{}, 0, err
	}
	planID, err := hex32(pl.ID)
	if err != nil {
		return common.Address{}, 0, err
	}
	args, err := d.abi.Pack("", modelID, planID, segments, pairs)
	if err != nil {
		return common.Address{}, 0, err
	}
	addr, res, err := d.Chain.DeployArtifact(art, args)
	if err != nil {
		return common.Address{}, 0, fmt.Errorf("deploy %s: %w", BundleContract, err)
	}
	return addr, res.GasUsed, nil
}

// Calldata encodes verify(proofs, publicInputs) for a bundle.
func (d *EVMBundle) Calldata(b *Bundle) ([]byte, error) { return Calldata(b) }

// Verify calls the bundle verifier's verify and returns its result and the gas of a
// transaction making that call.
func (d *EVMBundle) Verify(b *Bundle) (bool, uint64, error) {
	data, err := d.Calldata(b)
	if err != nil {
		return false, 0, err
	}
	res, err := d.Chain.Call(d.Address, data)
	if err != nil {
		return false, 0, err
	}
	if res.Reverted {
		return false, res.GasUsed, fmt.Errorf("%s.verify reverted: %s", BundleContract, res.RevertReason())
	}
	out, err := d.abi.Unpack("verify", res.Return)
	if err != nil {
		return false, res.GasUsed, err
	}
	return out[0].(bool), res.GasUsed, nil
}
