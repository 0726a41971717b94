//go:build !icicle

package prover

import (
	"errors"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
)

func gpuSupport() (bool, string) {
	return false, "this zkml was built without the icicle build tag"
}

func proveGPU(constraint.ConstraintSystem, string, func() ([]byte, error), witness.Witness) (writerTo, error) {
	return nil, errors.New("GPU proving needs a binary built with -tags icicle")
}
