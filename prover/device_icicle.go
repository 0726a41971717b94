//go:build icicle

package prover

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/accelerated/icicle"
	icicle_groth16 "github.com/consensys/gnark/backend/accelerated/icicle/groth16"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	icicle_runtime "github.com/ingonyama-zk/icicle-gnark/v3/wrappers/golang/runtime"
)

var (
	gpuOnce sync.Once
	gpuOK   bool
	gpuWhy  string
)

func gpuSupport() (bool, string) {
	gpuOnce.Do(func() {
		if e := icicle_runtime.LoadBackendFromEnvOrDefault(); e != icicle_runtime.Success {
			gpuWhy = "cannot load the ICICLE backend (set ICICLE_BACKEND_INSTALL_DIR): " + e.AsString()
			return
		}
		dev := icicle_runtime.CreateDevice("CUDA", 0)
		if !icicle_runtime.IsDeviceAvailable(&dev) {
			gpuWhy = "no CUDA device available"
			return
		}
		gpuOK = true
	})
	return gpuOK, gpuWhy
}

// gpuKeys caches ICICLE proving keys (with device-side data) by checksum.
var gpuKeys sync.Map

func proveGPU(ccs constraint.ConstraintSystem, pkSum string, pkBytes func() ([]byte, error), full witness.Witness) (writerTo, error) {
	v, ok := gpuKeys.Load(pkSum)
	if !ok {
		b, err := pkBytes()
		if err != nil {
			return nil, err
		}
		pk := icicle_groth16.NewProvingKey(ecc.BN254)
		if _, err := pk.ReadFrom(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("load ICICLE proving key: %w", err)
		}
		v, _ = gpuKeys.LoadOrStore(pkSum, pk)
	}
	proof, err := icicle_groth16.Prove(ccs, v.(groth16.ProvingKey), full,
		icicle.WithProverOptions(solidity.WithProverTargetSolidityVerifier(backend.GROTH16)))
	if err != nil {
		return nil, fmt.Errorf("ICICLE prove: %w", err)
	}
	return proof, nil
}
