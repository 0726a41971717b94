// Package evm is an in-process Ethereum test harness: it compiles Solidity with the pinned
// solc-js (contracts/package.json), deploys contracts into a bare go-ethereum EVM over an
// in-memory state database pinned to a released fork, calls them as transactions and reports
// the gas a real transaction would use (intrinsic + calldata floor + execution, after refunds).
//
// It is used by tests in other packages (verifier) and by the CLI to print gas figures.
package evm

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// Fork is a released Ethereum hard fork; its name is also solc's evmVersion.
type Fork string

const (
	Prague Fork = "prague" // Pectra, mainnet May 2025
	Osaka  Fork = "osaka"  // Fusaka, mainnet December 2025
)

// DefaultFork is the fork gas figures are measured on.
const DefaultFork = Osaka

// MaxCodeSize is the EIP-170 limit on deployed runtime code, in bytes (unchanged through Osaka).
const MaxCodeSize = params.MaxCodeSize

// TxGasLimit is the gas limit of every harness transaction: the EIP-7825 per-transaction cap
// that Osaka introduced (applied to Prague too, so both forks accept the same transactions).
const TxGasLimit = params.MaxTxGas

// CodeSizeError reports a contract whose runtime code exceeds MaxCodeSize.
type CodeSizeError struct {
	Name  string
	Size  int
	Limit int
}

func (e *CodeSizeError) Error() string {
	return fmt.Sprintf("evm: contract %s runtime code is %d bytes, over the EIP-170 limit of %d bytes by %d; it cannot be deployed on mainnet",
		e.Name, e.Size, e.Limit, e.Size-e.Limit)
}

// CheckCodeSize returns a *CodeSizeError if runtime is larger than MaxCodeSize.
func CheckCodeSize(name string, runtime []byte) error {
	if len(runtime) > MaxCodeSize {
		return &CodeSizeError{Name: name, Size: len(runtime), Limit: MaxCodeSize}
	}
	return nil
}

// ChainConfig returns a chain configuration with every fork up to and including f active
// from genesis and no later fork.
func ChainConfig(f Fork) (*params.ChainConfig, error) {
	zero := uint64(0)
	cfg := &params.ChainConfig{
		ChainID:                 big.NewInt(1337),
		HomesteadBlock:          big.NewInt(0),
		EIP150Block:             big.NewInt(0),
		EIP155Block:             big.NewInt(0),
		EIP158Block:             big.NewInt(0),
		ByzantiumBlock:          big.NewInt(0),
		ConstantinopleBlock:     big.NewInt(0),
		PetersburgBlock:         big.NewInt(0),
		IstanbulBlock:           big.NewInt(0),
		MuirGlacierBlock:        big.NewInt(0),
		BerlinBlock:             big.NewInt(0),
		LondonBlock:             big.NewInt(0),
		ArrowGlacierBlock:       big.NewInt(0),
		GrayGlacierBlock:        big.NewInt(0),
		MergeNetsplitBlock:      big.NewInt(0),
		TerminalTotalDifficulty: big.NewInt(0),
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		PragueTime:              &zero,
		BlobScheduleConfig: &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
		},
	}
	switch f {
	case Prague:
	case Osaka:
		cfg.OsakaTime = &zero
	default:
		return nil, fmt.Errorf("evm: unsupported fork %q (want %q or %q)", f, Prague, Osaka)
	}
	return cfg, nil
}

func (f Fork) rules() (params.Rules, error) {
	cfg, err := ChainConfig(f)
	if err != nil {
		return params.Rules{}, err
	}
	return cfg.Rules(big.NewInt(1), true, 1), nil
}

// Chain is a single-account, in-memory chain: one funded sender, one block context, a state
// database that keeps what deployments and transactions write. It is not safe for concurrent
// use.
type Chain struct {
	fork   Fork
	config *params.ChainConfig
	rules  params.Rules
	state  *state.StateDB
	from   common.Address
	block  vm.BlockContext
}

// Result is the outcome of one transaction.
type Result struct {
	Return       []byte // return data, or revert data when Reverted
	GasUsed      uint64 // gas the transaction is charged (what a receipt reports)
	IntrinsicGas uint64 // part of GasUsed charged before execution (21000 + calldata)
	Reverted     bool   // the top-level call reverted (or failed otherwise, see Err)
	Err          error  // the EVM error when Reverted, e.g. vm.ErrExecutionReverted
}

// RevertReason decodes Error(string) revert data; otherwise it returns the raw data in hex.
func (r *Result) RevertReason() string {
	if !r.Reverted {
		return ""
	}
	if reason, err := abi.UnpackRevert(r.Return); err == nil {
		return reason
	}
	return fmt.Sprintf("%v (data 0x%x)", r.Err, r.Return)
}

// NewChain returns an empty chain on fork f with a funded sender.
func NewChain(f Fork) (*Chain, error) {
	cfg, err := ChainConfig(f)
	if err != nil {
		return nil, err
	}
	sdb, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		return nil, err
	}
	from := crypto.PubkeyToAddress(mustKey().PublicKey)
	sdb.SetBalance(from, new(uint256.Int).Lsh(uint256.NewInt(1), 128), tracing.BalanceChangeUnspecified)
	var random common.Hash
	block := vm.BlockContext{
		CanTransfer: core.CanTransfer,
		Transfer:    core.Transfer,
		GetHash:     func(uint64) common.Hash { return common.Hash{} },
		Coinbase:    common.Address{},
		GasLimit:    60_000_000,
		BlockNumber: big.NewInt(1),
		Time:        1,
		Difficulty:  big.NewInt(0),
		BaseFee:     big.NewInt(0),
		BlobBaseFee: big.NewInt(1),
		Random:      &random,
	}
	c := &Chain{fork: f, config: cfg, state: sdb, from: from, block: block}
	c.rules = cfg.Rules(block.BlockNumber, true, block.Time)
	return c, nil
}

func mustKey() *ecdsa.PrivateKey {
	// A fixed, well-known test key: addresses and therefore gas (cold/warm accounting) are
	// reproducible across runs.
	k, err := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	if err != nil {
		panic(err)
	}
	return k
}

// Fork is the fork the chain runs.
func (c *Chain) Fork() Fork { return c.fork }

// Sender is the address every transaction comes from.
func (c *Chain) Sender() common.Address { return c.from }

// CodeSize returns the size of the code deployed at addr.
func (c *Chain) CodeSize(addr common.Address) int { return c.state.GetCodeSize(addr) }

// Deploy sends a contract-creation transaction with creation code followed by the
// ABI-encoded constructor arguments. It fails if the constructor reverts or the runtime code
// breaks EIP-170.
func (c *Chain) Deploy(creation, args []byte) (common.Address, *Result, error) {
	addr := crypto.CreateAddress(c.from, c.state.GetNonce(c.from))
	data := append(append([]byte{}, creation...), args...)
	res, err := c.apply(nil, data, true)
	if err != nil {
		return common.Address{}, nil, err
	}
	if res.Reverted {
		if errors.Is(res.Err, vm.ErrMaxCodeSizeExceeded) {
			return common.Address{}, res, fmt.Errorf("evm: deploy: %w (EIP-170 limit %d bytes)", res.Err, MaxCodeSize)
		}
		return common.Address{}, res, fmt.Errorf("evm: deploy reverted: %s", res.RevertReason())
	}
	return addr, res, nil
}

// DeployArtifact checks the artifact's runtime size, then deploys it.
func (c *Chain) DeployArtifact(a *Artifact, args []byte) (common.Address, *Result, error) {
	if err := CheckCodeSize(a.Name, a.DeployedBytecode); err != nil {
		return common.Address{}, nil, err
	}
	return c.Deploy(a.Bytecode, args)
}

// Transact sends a transaction calling to with data and keeps its state changes.
func (c *Chain) Transact(to common.Address, data []byte) (*Result, error) {
	return c.apply(&to, data, true)
}

// Call runs the same transaction as Transact but discards its state changes, like eth_call;
// GasUsed is what the transaction would be charged.
func (c *Chain) Call(to common.Address, data []byte) (*Result, error) {
	return c.apply(&to, data, false)
}

func (c *Chain) apply(to *common.Address, data []byte, commit bool) (*Result, error) {
	zero := new(uint256.Int)
	msg := &core.Message{
		To:        to,
		From:      c.from,
		Nonce:     c.state.GetNonce(c.from),
		Value:     zero,
		GasLimit:  TxGasLimit,
		GasPrice:  zero,
		GasFeeCap: zero,
		GasTipCap: zero,
		Data:      data,
	}
	intrinsic, err := core.IntrinsicGas(data, nil, nil, c.from, to, zero, c.rules)
	if err != nil {
		return nil, err
	}
	snap := c.state.Snapshot()
	evm := vm.NewEVM(c.block, c.state, c.config, vm.Config{})
	res, err := core.ApplyMessage(evm, msg, core.NewGasPool(c.block.GasLimit))
	if err != nil {
		c.state.RevertToSnapshot(snap)
		return nil, fmt.Errorf("evm: transaction rejected: %w", err)
	}
	if commit {
		c.state.Finalise(c.rules)
	} else {
		c.state.RevertToSnapshot(snap)
	}
	return &Result{
		Return:       res.ReturnData,
		GasUsed:      res.UsedGas,
		IntrinsicGas: intrinsic,
		Reverted:     res.Err != nil,
		Err:          res.Err,
	}, nil
}
