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

// icicleBackend maps an ICICLE device to gnark's backend option and ICICLE's device type.
func icicleBackend(d Device) icicle.Backend {
	if d == ICICLECPU {
		return icicle.CPU
	}
	return icicle.CUDA
}

var (
	// loadWhy is why ICICLE's backend libraries could not be loaded ("" once loaded).
	// gnark's prover loads them the same way and panics on failure, so a failed load
	// must turn every ICICLE request into the CPU fallback.
	loadWhy  = sync.OnceValue(loadBackend)
	supportM sync.Mutex
	support  = map[Device]string{} // device → why it is unavailable ("" when available)
)

func loadBackend() string {
	if e := icicle_runtime.LoadBackendFromEnvOrDefault(); e != icicle_runtime.Success {
		return "cannot load the ICICLE backend (set ICICLE_BACKEND_INSTALL_DIR to an existing directory; scripts/build-icicle.sh prints it): " + e.AsString()
	}
	return ""
}

func icicleSupport(d Device) (bool, string) {
	if why := loadWhy(); why != "" {
		return false, why
	}
	supportM.Lock()
	defer supportM.Unlock()
	why, ok := support[d]
	if !ok {
		b := icicleBackend(d)
		dev := icicle_runtime.CreateDevice(b.String(), 0)
		if !icicle_runtime.IsDeviceAvailable(&dev) {
			why = fmt.Sprintf("no ICICLE %s device available", b)
			if b == icicle.CUDA {
				why += " (no GPU, or ICICLE was built without its CUDA backend)"
			}
		}
		support[d] = why
	}
	return why == "", why
}

// icicleKeys caches ICICLE proving keys (which hold their device-side data) by device
// and checksum.
var icicleKeys sync.Map

func proveICICLE(d Device, ccs constraint.ConstraintSystem, pkSum string, pkBytes func() ([]byte, error), full witness.Witness) (writerTo, error) {
	key := string(d) + ":" + pkSum
	v, ok := icicleKeys.Load(key)
	if !ok {
		b, err := pkBytes()
		if err != nil {
			return nil, err
		}
		pk := icicle_groth16.NewProvingKey(ecc.BN254)
		if _, err := pk.ReadFrom(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("load ICICLE proving key: %w", err)
		}
		v, _ = icicleKeys.LoadOrStore(key, pk)
	}
	proof, err := icicle_groth16.Prove(ccs, v.(groth16.ProvingKey), full,
		icicle.WithBackend(icicleBackend(d)),
		icicle.WithProverOptions(solidity.WithProverTargetSolidityVerifier(backend.GROTH16)))
	if err != nil {
		return nil, fmt.Errorf("ICICLE (%s) prove: %w", d, err)
	}
	return proof, nil
}
