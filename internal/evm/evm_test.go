package evm_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/zkml/zkml/internal/evm"
)

// initReturning returns creation code that deploys n zero bytes of runtime code:
// PUSH2 n PUSH1 0 RETURN.
func initReturning(n int) []byte {
	return []byte{0x61, byte(n >> 8), byte(n), 0x60, 0x00, 0xf3}
}

func TestDeployCodeSizeLimit(t *testing.T) {
	for _, fork := range []evm.Fork{evm.Prague, evm.Osaka} {
		t.Run(string(fork), func(t *testing.T) {
			chain, err := evm.NewChain(fork)
			if err != nil {
				t.Fatal(err)
			}
			addr, res, err := chain.Deploy(initReturning(evm.MaxCodeSize), nil)
			if err != nil {
				t.Fatalf("deploy at the limit: %v", err)
			}
			if got := chain.CodeSize(addr); got != evm.MaxCodeSize {
				t.Fatalf("code size %d, want %d", got, evm.MaxCodeSize)
			}
			if res.GasUsed <= res.IntrinsicGas {
				t.Fatalf("gas used %d not above intrinsic %d", res.GasUsed, res.IntrinsicGas)
			}
			if _, _, err := chain.Deploy(initReturning(evm.MaxCodeSize+1), nil); err == nil || !strings.Contains(err.Error(), "EIP-170") {
				t.Fatalf("deploy over the limit: err = %v, want EIP-170 error", err)
			}
		})
	}
}

func TestCheckCodeSize(t *testing.T) {
	if err := evm.CheckCodeSize("Small", make([]byte, evm.MaxCodeSize)); err != nil {
		t.Fatal(err)
	}
	err := evm.CheckCodeSize("Big", make([]byte, evm.MaxCodeSize+10))
	var cse *evm.CodeSizeError
	if !errors.As(err, &cse) || cse.Size != evm.MaxCodeSize+10 || !strings.Contains(err.Error(), "Big") {
		t.Fatalf("err = %v", err)
	}
	if _, err := evm.NewChain("london"); err == nil {
		t.Fatal("unsupported fork accepted")
	}
}

const counterSol = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

contract Counter {
    uint256 public count;
    error TooBig(uint256 v);

    constructor(uint256 start) { count = start; }

    function add(uint256 v) external returns (uint256) {
        if (v > 100) revert TooBig(v);
        count += v;
        return count;
    }

    function fail() external pure { revert("nope"); }
}
`

func TestCompileDeployCall(t *testing.T) {
	solc := evm.RequireCompiler(t)
	t.Logf("solc %s, evmVersion %s", solc.Version(), solc.Fork())
	arts, err := solc.Compile(context.Background(), map[string]string{"Counter.sol": counterSol})
	if err != nil {
		t.Fatal(err)
	}
	if err := arts.CheckCodeSizes(); err != nil {
		t.Fatal(err)
	}
	counter, err := arts.Get("Counter")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := abi.JSON(strings.NewReader(string(counter.ABI)))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := evm.NewChain(solc.Fork())
	if err != nil {
		t.Fatal(err)
	}
	args, err := parsed.Pack("", big.NewInt(5))
	if err != nil {
		t.Fatal(err)
	}
	addr, dep, err := chain.DeployArtifact(counter, args)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy gas %d, runtime %d bytes", dep.GasUsed, len(counter.DeployedBytecode))

	call := func(method string, commit bool, a ...any) *evm.Result {
		t.Helper()
		data, err := parsed.Pack(method, a...)
		if err != nil {
			t.Fatal(err)
		}
		run := chain.Call
		if commit {
			run = chain.Transact
		}
		res, err := run(addr, data)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	uint256At := func(res *evm.Result) int64 {
		t.Helper()
		if res.Reverted {
			t.Fatalf("reverted: %s", res.RevertReason())
		}
		return new(big.Int).SetBytes(res.Return).Int64()
	}

	if got := uint256At(call("add", false, big.NewInt(3))); got != 8 {
		t.Fatalf("call add = %d, want 8", got)
	}
	if got := uint256At(call("count", false)); got != 5 {
		t.Fatalf("Call changed state: count = %d", got)
	}
	if got := uint256At(call("add", true, big.NewInt(3))); got != 8 {
		t.Fatalf("transact add = %d, want 8", got)
	}
	if got := uint256At(call("count", false)); got != 8 {
		t.Fatalf("Transact lost state: count = %d", got)
	}
	if res := call("add", false, big.NewInt(101)); !res.Reverted {
		t.Fatal("custom error did not revert")
	}
	if res := call("fail", false); !res.Reverted || res.RevertReason() != "nope" {
		t.Fatalf("revert reason = %q", res.RevertReason())
	}
}

func TestCompileError(t *testing.T) {
	solc := evm.RequireCompiler(t)
	_, err := solc.Compile(context.Background(), map[string]string{"Bad.sol": "pragma solidity ^0.8.0; contract Bad { function f( }"})
	if err == nil || !strings.Contains(err.Error(), "Bad.sol") {
		t.Fatalf("err = %v, want a compiler error naming Bad.sol", err)
	}
}
