//go:build !icicle

package prover

import (
	"errors"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
)

func icicleSupport(Device) (bool, string) {
	return false, "this zkml was built without the icicle build tag"
}

func proveICICLE(Device, constraint.ConstraintSystem, string, func() ([]byte, error), witness.Witness) (writerTo, error) {
	return nil, errors.New("ICICLE proving needs a binary built with -tags icicle")
}
