package prover

import (
	"github.com/consensys/gnark-crypto/kzg"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/test/unsafekzg"
)

// newTestSRS returns a KZG SRS from gnark's unsafekzg: its toxic value is known to this
// process, so it is for development only (see DevSetupWarning).
func newTestSRS(ccs constraint.ConstraintSystem) (kzg.SRS, kzg.SRS, error) {
	return unsafekzg.NewSRS(ccs)
}
