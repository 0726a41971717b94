package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/consensys/gnark/backend/witness"

	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// measureGas deploys the exported verifier of p (gnark's verifier and the ZKMLVerifier
// wrapper, with the model's output and params bindings) in an in-process EVM and
// verifies proof on it, recording verify and deployment gas in r. A proof the EVM
// rejects is an error: the same proof has just verified in Go.
func measureGas(r *Result, p *quant.Program, proof, vk io.WriterTo, pub witness.Witness) error {
	opts, err := verifier.ProgramOptions(p)
	if err != nil {
		return err
	}
	idHex, err := prover.ModelID(p)
	if err != nil {
		return err
	}
	var id [32]byte
	b, err := hex.DecodeString(idHex)
	if err != nil || len(b) != len(id) {
		return fmt.Errorf("model ID %q is not 32 hex bytes", idHex)
	}
	copy(id[:], b)
	rep, err := verifier.VerifyOnEVM(context.Background(), vk, proof, pub, id, opts...)
	if err != nil {
		return err
	}
	if !rep.Valid {
		return fmt.Errorf("the EVM verifier rejected a proof that verifies in Go")
	}
	r.VerifyGas, r.DeployGas = rep.VerifyGas, rep.DeployGas
	return nil
}
