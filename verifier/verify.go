package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/witness"
)

// ErrInvalidProof is wrapped by every error that means "this proof does not verify":
// a wrong proof, wrong public inputs, or bytes that do not decode. Callers answer
// "invalid" for it, not a server error.
var ErrInvalidProof = errors.New("invalid proof")

// VerifyingKey decodes a serialized BN254 verifying key for system.
func VerifyingKey(system string, b []byte) (any, error) {
	switch system {
	case Groth16:
		vk := groth16.NewVerifyingKey(ecc.BN254)
		if _, err := vk.ReadFrom(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("decode groth16 verifying key: %w", err)
		}
		return vk, nil
	case PLONK:
		vk := plonk.NewVerifyingKey(ecc.BN254)
		if _, err := vk.ReadFrom(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("decode plonk verifying key: %w", err)
		}
		return vk, nil
	}
	return nil, fmt.Errorf("unknown proving system %q", system)
}

// PublicWitness builds a BN254 public witness from field elements (decimal strings;
// negative values are taken modulo the field).
func PublicWitness(values []string) (witness.Witness, error) {
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	ch := make(chan any, len(values))
	for i, s := range values {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("%w: public input %d %q is not a decimal integer", ErrInvalidProof, i, s)
		}
		ch <- v
	}
	close(ch)
	if err := w.Fill(len(values), 0, ch); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return w, nil
}

// DecodePublicWitness decodes gnark's binary public witness.
func DecodePublicWitness(b []byte) (witness.Witness, error) {
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	if err := w.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: public witness: %v", ErrInvalidProof, err)
	}
	return w, nil
}

// Verify checks a serialized proof against a serialized verifying key and public
// witness. It returns nil for a valid proof and an error wrapping ErrInvalidProof for
// an invalid or undecodable one; other errors mean the key or system is unusable.
func Verify(system string, vkBytes, proofBytes []byte, public witness.Witness) error {
	proof, err := DecodeProof(system, proofBytes)
	if err != nil {
		return fmt.Errorf("%w: decode proof: %v", ErrInvalidProof, err)
	}
	return VerifyDecoded(system, vkBytes, proof, public)
}

// VerifyDecoded is Verify for a decoded proof (groth16.Proof or plonk.Proof).
func VerifyDecoded(system string, vkBytes []byte, proof any, public witness.Witness) error {
	vk, err := VerifyingKey(system, vkBytes)
	if err != nil {
		return err
	}
	switch p := proof.(type) {
	case groth16.Proof:
		gvk, ok := vk.(groth16.VerifyingKey)
		if !ok {
			return fmt.Errorf("%w: groth16 proof for a %s key", ErrInvalidProof, system)
		}
		err = groth16.Verify(p, gvk, public, VerifierOptions(Groth16)...)
	case plonk.Proof:
		pvk, ok := vk.(plonk.VerifyingKey)
		if !ok {
			return fmt.Errorf("%w: plonk proof for a %s key", ErrInvalidProof, system)
		}
		err = plonk.Verify(p, pvk, public, VerifierOptions(PLONK)...)
	default:
		return fmt.Errorf("%w: unknown proof type %T", ErrInvalidProof, proof)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return nil
}
