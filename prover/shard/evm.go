package shard

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/consensys/gnark/backend/witness"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/contracts"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/model/quant"
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

// outputRange is where a segment's public outputs are among its public inputs (none
// unless its outputs are public).
func outputRange(p *quant.Program) (offset, count int) {
	l := circuits.NewLayout(p)
	if p.OutputVis != quant.Public || len(l.Outputs) == 0 {
		return 0, 0
	}
	for _, s := range l.Outputs {
		count += s.Len
	}
	return l.Outputs[0].Offset, count
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
	var outSlots, inSlots []*big.Int
	for i, s := range pl.Segments {
		key, err := vk(i)
		if err != nil {
			return nil, err
		}
		b, err := circuits.ModelBinding(s.Program)
		if err != nil {
			return nil, err
		}
		off, n := outputRange(s.Program)
		var src bytes.Buffer
		if err := verifier.ExportSolidity(&src, key, verifier.WithOutputs(off, n), verifier.WithBinding(b)); err != nil {
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
		for _, h := range circuits.NewLayout(s.Program).Hashes {
			if h.Domain != circuits.TagBoundary {
				continue
			}
			if h.Tag == circuits.TagOutputs {
				outSlots = append(outSlots, big.NewInt(int64(h.Offset)))
			} else {
				inSlots = append(inSlots, big.NewInt(int64(h.Offset)))
			}
		}
	}
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
	modelID, err := hex32(pl.ModelID)
	if err != nil {
		return nil, err
	}
	planID, err := hex32(pl.ID)
	if err != nil {
		return nil, err
	}
	if outSlots == nil {
		outSlots, inSlots = []*big.Int{}, []*big.Int{}
	}
	args, err := d.abi.Pack("", modelID, planID, d.Segments, outSlots, inSlots)
	if err != nil {
		return nil, err
	}
	addr, res, err := chain.DeployArtifact(art, args)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", BundleContract, err)
	}
	d.Address, d.DeployGas = addr, d.DeployGas+res.GasUsed
	return d, nil
}

// Calldata encodes verify(proofs, publicInputs) for a bundle.
func (d *EVMBundle) Calldata(b *Bundle) ([]byte, error) {
	var proofs [][]byte
	var inputs [][]*big.Int
	for i, sp := range b.Segments {
		proof, err := readProof(b.System, sp.Proof)
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
	return d.abi.Pack("verify", proofs, inputs)
}

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
