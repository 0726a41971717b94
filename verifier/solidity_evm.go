package verifier

import (
	"bytes"
	"context"
	"fmt"
	"math/big"

	"github.com/consensys/gnark/backend/witness"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/internal/evm"
)

// Deployment is an exported ZKMLVerifier compiled with the pinned solc and deployed on an
// in-process EVM (internal/evm). It is for tests, gas figures and `zkml verify --evm`.
type Deployment struct {
	Chain        *evm.Chain
	Address      common.Address // the ZKMLVerifier wrapper
	System       string         // Groth16 or PLONK
	Solc         string         // compiler version
	DeployGas    uint64         // gas of the creation transaction (wrapper and gnark verifier)
	WrapperSize  int            // runtime bytes of ZKMLVerifier
	VerifierSize int            // runtime bytes of gnark's verifier
	abi          abi.ABI
}

// DeployOnEVM exports vk (ExportSolidity with opts), compiles the file with c, checks every
// contract against the EIP-170 size limit and deploys ZKMLVerifier(modelID) on a fresh chain
// running c's fork.
func DeployOnEVM(ctx context.Context, c *evm.Compiler, vk any, modelID [32]byte, opts ...ExportOption) (*Deployment, error) {
	system, _, err := describeKey(vk)
	if err != nil {
		return nil, err
	}
	var src bytes.Buffer
	if err := ExportSolidity(&src, vk, opts...); err != nil {
		return nil, err
	}
	arts, err := c.Compile(ctx, map[string]string{WrapperContract + ".sol": src.String()})
	if err != nil {
		return nil, err
	}
	if err := arts.CheckCodeSizes(); err != nil {
		return nil, err
	}
	wrapper, err := arts.Get(WrapperContract)
	if err != nil {
		return nil, err
	}
	inner := "Verifier"
	if system == PLONK {
		inner = "PlonkVerifier"
	}
	gnarkArt, err := arts.Get(inner)
	if err != nil {
		return nil, err
	}
	parsed, err := wrapperABI()
	if err != nil {
		return nil, err
	}
	args, err := parsed.Pack("", modelID)
	if err != nil {
		return nil, err
	}
	chain, err := evm.NewChain(c.Fork())
	if err != nil {
		return nil, err
	}
	addr, res, err := chain.DeployArtifact(wrapper, args)
	if err != nil {
		return nil, fmt.Errorf("verifier: deploy %s: %w", WrapperContract, err)
	}
	return &Deployment{
		Chain:        chain,
		Address:      addr,
		System:       system,
		Solc:         c.Version(),
		DeployGas:    res.GasUsed,
		WrapperSize:  len(wrapper.DeployedBytecode),
		VerifierSize: len(gnarkArt.DeployedBytecode),
		abi:          parsed,
	}, nil
}

// call runs method as a transaction whose state changes are discarded and returns its
// unpacked outputs and gas. A revert is an error: the wrapper's verify functions must not
// revert.
func (d *Deployment) call(method string, args ...any) ([]any, uint64, error) {
	data, err := d.abi.Pack(method, args...)
	if err != nil {
		return nil, 0, err
	}
	res, err := d.Chain.Call(d.Address, data)
	if err != nil {
		return nil, 0, err
	}
	if res.Reverted {
		return nil, res.GasUsed, fmt.Errorf("verifier: ZKMLVerifier.%s reverted: %s", method, res.RevertReason())
	}
	out, err := d.abi.Unpack(method, res.Return)
	if err != nil {
		return nil, res.GasUsed, fmt.Errorf("verifier: unpack %s: %w", method, err)
	}
	return out, res.GasUsed, nil
}

// Verify calls verify(proof, publicInputs) and returns its result and the gas a transaction
// making that call is charged (21000 + calldata + execution).
func (d *Deployment) Verify(proof []byte, publicInputs []*big.Int) (bool, uint64, error) {
	out, gas, err := d.call("verify", proof, publicInputs)
	if err != nil {
		return false, gas, err
	}
	return out[0].(bool), gas, nil
}

// VerifyAndDecode calls verifyAndDecode(proof, publicInputs).
func (d *Deployment) VerifyAndDecode(proof []byte, publicInputs []*big.Int) (bool, []*big.Int, uint64, error) {
	out, gas, err := d.call("verifyAndDecode", proof, publicInputs)
	if err != nil {
		return false, nil, gas, err
	}
	return out[0].(bool), out[1].([]*big.Int), gas, nil
}

// ModelID calls modelId().
func (d *Deployment) ModelID() ([32]byte, error) {
	out, _, err := d.call("modelId")
	if err != nil {
		return [32]byte{}, err
	}
	return out[0].([32]byte), nil
}

// EVMReport is what VerifyOnEVM measured.
type EVMReport struct {
	System             string
	Fork               string
	Solc               string
	Valid              bool
	Outputs            []*big.Int // decoded outputs, when Valid
	VerifyGas          uint64     // verify(proof, publicInputs) transaction gas
	VerifyAndDecodeGas uint64     // verifyAndDecode transaction gas
	DeployGas          uint64     // creation transaction gas
	WrapperSize        int        // runtime bytes of ZKMLVerifier
	VerifierSize       int        // runtime bytes of gnark's verifier
}

// VerifyOnEVM exports vk, deploys it with the pinned solc (evm.DefaultCompiler) on the
// default fork and verifies proof against publicWitness on-chain, reporting gas. A missing
// solc yields an error wrapping evm.ErrSolcUnavailable.
func VerifyOnEVM(ctx context.Context, vk, proof any, publicWitness witness.Witness, modelID [32]byte, opts ...ExportOption) (*EVMReport, error) {
	c, err := evm.DefaultCompiler()
	if err != nil {
		return nil, err
	}
	d, err := DeployOnEVM(ctx, c, vk, modelID, opts...)
	if err != nil {
		return nil, err
	}
	p, err := ProofBytes(proof)
	if err != nil {
		return nil, err
	}
	if ps, _ := ProvingSystem(proof); ps != d.System {
		return nil, fmt.Errorf("verifier: %s proof for a %s verifying key", ps, d.System)
	}
	pub, err := PublicInputs(publicWitness)
	if err != nil {
		return nil, err
	}
	rep := &EVMReport{
		System:       d.System,
		Fork:         string(c.Fork()),
		Solc:         d.Solc,
		DeployGas:    d.DeployGas,
		WrapperSize:  d.WrapperSize,
		VerifierSize: d.VerifierSize,
	}
	if rep.Valid, rep.VerifyGas, err = d.Verify(p, pub); err != nil {
		return nil, err
	}
	var valid bool
	if valid, rep.Outputs, rep.VerifyAndDecodeGas, err = d.VerifyAndDecode(p, pub); err != nil {
		return nil, err
	}
	if valid != rep.Valid {
		return nil, fmt.Errorf("verifier: verify returned %v but verifyAndDecode %v", rep.Valid, valid)
	}
	return rep, nil
}

// ParamsMatch calls paramsMatch(publicInputs): whether they carry the model's own params
// (commitment), the check verify makes before the proof.
func (d *Deployment) ParamsMatch(publicInputs []*big.Int) (bool, error) {
	out, _, err := d.call("paramsMatch", publicInputs)
	if err != nil {
		return false, err
	}
	return out[0].(bool), nil
}
