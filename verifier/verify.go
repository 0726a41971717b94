package verifier

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/witness"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
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

// PublicWitness builds a BN254 public witness from canonical field elements: decimal
// strings v with 0 <= v < r, as the EVM verifier requires. Anything else (a negative
// value, v + r, a non-decimal string) wraps ErrInvalidProof: accepting v + r for v
// would make a Go verifier accept public inputs that the on-chain one rejects.
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
		if err := checkCanonical(i, v); err != nil {
			return nil, err
		}
		ch <- v
	}
	close(ch)
	if err := w.Fill(len(values), 0, ch); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return w, nil
}

// checkCanonical rejects a public input outside [0, r).
func checkCanonical(i int, v *big.Int) error {
	if v.Sign() < 0 || v.Cmp(fr.Modulus()) >= 0 {
		return fmt.Errorf("%w: public input %d is not a canonical field element (want 0 <= v < r)", ErrInvalidProof, i)
	}
	return nil
}

// DecodePublicWitness decodes gnark's binary public witness. Like PublicWitness it
// accepts only canonical elements (gnark-crypto's decoder rejects v >= r), and it
// rejects trailing bytes and secret values, so one witness has one encoding.
func DecodePublicWitness(b []byte) (witness.Witness, error) {
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(b)
	if _, err := w.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("%w: public witness: %v", ErrInvalidProof, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: public witness: %d trailing bytes", ErrInvalidProof, r.Len())
	}
	// The header is nbPublic, nbSecret, then the vector's length (big-endian uint32s).
	pub, sec := binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	if n := binary.BigEndian.Uint32(b[8:12]); sec != 0 || pub != n {
		return nil, fmt.Errorf("%w: public witness: header says %d public and %d secret values for %d elements", ErrInvalidProof, pub, sec, n)
	}
	return w, nil
}

// ErrModelMismatch is wrapped by the error of a proof whose public inputs that identify
// the model (circuits.Binding) are not the model's own: it was made with other weights.
var ErrModelMismatch = fmt.Errorf("%w: made for other model parameters", ErrInvalidProof)

// CheckBinding compares the public inputs that identify the model (the params
// commitment, or the public params) with the model's own; b is nil for a model that
// has none. A proof must pass both Verify and CheckBinding to be a proof for the model.
func CheckBinding(public witness.Witness, b *circuits.Binding) error {
	if b == nil {
		return nil
	}
	got, err := PublicInputs(public)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if b.Offset < 0 || b.Offset+len(b.Values) > len(got) {
		return fmt.Errorf("%w: %d public inputs, but the model's %s are at [%d, %d)", ErrInvalidProof, len(got), b.What, b.Offset, b.Offset+len(b.Values))
	}
	for i, want := range b.Values {
		if got[b.Offset+i].Cmp(want) != 0 {
			if len(b.Values) == 1 {
				return fmt.Errorf("%w: the proof's %s %s is not the model's %s", ErrModelMismatch, b.What, got[b.Offset], want)
			}
			return fmt.Errorf("%w: the proof's %s differ from the model's at param %d (public input %d)", ErrModelMismatch, b.What, i, b.Offset+i)
		}
	}
	return nil
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

// VerifyModel checks that proof is a valid proof for the model whose quantized program
// is p: the public inputs that identify the model's parameters are the model's own
// (CheckBinding, with circuits.ModelBinding(p)), and the proof verifies against vkBytes.
// Every verifier zkml ships (CLI, API) goes through it. Errors wrap ErrInvalidProof as
// in VerifyDecoded.
func VerifyModel(p *quant.Program, system string, vkBytes []byte, proof any, public witness.Witness) error {
	b, err := circuits.ModelBinding(p)
	if err != nil {
		return fmt.Errorf("model binding: %w", err)
	}
	if err := CheckBinding(public, b); err != nil {
		return err
	}
	return VerifyDecoded(system, vkBytes, proof, public)
}
