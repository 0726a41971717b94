package verifier

import (
	"bytes"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/witness"
	"github.com/ethereum/go-ethereum/accounts/abi"
)

// ProofBytes returns a BN254 Groth16 or PLONK proof in the layout gnark's Solidity verifier
// reads (gnark's MarshalSolidity):
//   - Groth16: A (64) | B (128) | C (64) [| commitments (64 each) | commitment PoK (64)];
//     256 bytes without commitments, 384 with the one commitment std/rangecheck adds.
//   - PLONK: LRO, H, claimed values, Z, openings and one point and value per api.Commit.
//
// Groth16 proofs with commitments must come from ProverOptions(Groth16).
func ProofBytes(proof any) ([]byte, error) {
	switch p := proof.(type) {
	case *groth16bn254.Proof:
		return p.MarshalSolidity(), nil
	case *plonkbn254.Proof:
		return p.MarshalSolidity(), nil
	}
	_, err := ProvingSystem(proof)
	return nil, err
}

// DecodeProof decodes a proof in gnark's binary format (as prover artifacts store it) for
// ProofBytes, Calldata and VerifyOnEVM.
func DecodeProof(system string, b []byte) (any, error) {
	var p interface {
		ReadFrom(r io.Reader) (int64, error)
	}
	switch system {
	case Groth16:
		p = groth16.NewProof(ecc.BN254)
	case PLONK:
		p = plonk.NewProof(ecc.BN254)
	default:
		return nil, fmt.Errorf("verifier: unknown proving system %q", system)
	}
	if _, err := p.ReadFrom(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: decode %s proof: %v", ErrInvalidProof, system, err)
	}
	return p, nil
}

// PublicInputs returns the public part of a BN254 witness (a full witness is reduced to its
// public part) as the uint256 values the verifier takes, in circuit order.
func PublicInputs(w witness.Witness) ([]*big.Int, error) {
	pub, err := w.Public()
	if err != nil {
		return nil, fmt.Errorf("verifier: public witness: %w", err)
	}
	vec, ok := pub.Vector().(fr.Vector)
	if !ok {
		return nil, fmt.Errorf("verifier: witness vector is %T, want a BN254 fr.Vector", pub.Vector())
	}
	out := make([]*big.Int, len(vec))
	for i := range vec {
		out[i] = vec[i].BigInt(new(big.Int))
	}
	return out, nil
}

// Calldata returns the ABI-encoded call verify(bytes proof, uint256[] publicInputs) of the
// exported ZKMLVerifier: the exact transaction data to send (or eth_call) to it.
func Calldata(proof any, publicWitness witness.Witness) ([]byte, error) {
	return EncodeCall("verify", proof, publicWitness)
}

// EncodeCall ABI-encodes a call of ZKMLVerifier method "verify" or "verifyAndDecode".
func EncodeCall(method string, proof any, publicWitness witness.Witness) ([]byte, error) {
	if method != "verify" && method != "verifyAndDecode" {
		return nil, fmt.Errorf("verifier: EncodeCall: method %q does not take (proof, publicInputs)", method)
	}
	p, err := ProofBytes(proof)
	if err != nil {
		return nil, err
	}
	pub, err := PublicInputs(publicWitness)
	if err != nil {
		return nil, err
	}
	parsed, err := wrapperABI()
	if err != nil {
		return nil, err
	}
	return parsed.Pack(method, p, pub)
}

// ParsedWrapperABI returns the ZKMLVerifier ABI parsed by go-ethereum, for packing other
// calls (modelId, decodeOutputs) and unpacking results.
func ParsedWrapperABI() (abi.ABI, error) { return wrapperABI() }

var wrapperABI = sync.OnceValues(func() (abi.ABI, error) {
	a, err := abi.JSON(bytes.NewReader(WrapperABI()))
	if err != nil {
		return abi.ABI{}, fmt.Errorf("verifier: parse ZKMLVerifier ABI: %w", err)
	}
	return a, nil
})

// ToSigned decodes a BN254 scalar-field element the way ZKMLVerifier.toSigned does: v if
// v <= (r-1)/2, else v - r. It errors if v is negative or not below r.
func ToSigned(v *big.Int) (*big.Int, error) {
	r := fr.Modulus()
	if v.Sign() < 0 || v.Cmp(r) >= 0 {
		return nil, fmt.Errorf("verifier: %v is not a reduced BN254 scalar", v)
	}
	half := new(big.Int).Rsh(r, 1) // (r-1)/2, r is odd
	if v.Cmp(half) > 0 {
		return new(big.Int).Sub(v, r), nil
	}
	return new(big.Int).Set(v), nil
}
