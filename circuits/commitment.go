package circuits

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativeposeidon2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"

	"github.com/zkml/zkml/model/quant"
)

// Commitments of hashed tensors.
//
// A group of tensors (the model inputs, outputs or parameters) is committed to as
//
//	Poseidon2-MD( tag, n, w, pack(v_0..), pack(..), ... )
//
// over BN254's scalar field, with gnark's Merkle-Damgard Poseidon2 (width 2, 6 full
// and 50 partial rounds), identical in and out of the circuit. Each value v is a signed
// integer with |v| < 2^(w-1), mapped to u = v + 2^(w-1) in [0, 2^w), and
// floor(MaxPackBits / w) values are packed little-endian into one field element. w is
// the width the group's values are proven to: the widest static bound in the group
// (an int32 input is committed at 33 bits, not at --bits), and the commitment gadget
// range-checks every packed value to w bits itself, so packing is injective (distinct
// tensors give distinct preimages) whatever the bound analysis says: a value that does
// not fit makes Commit fail before proving, and cannot satisfy the circuit. tag
// separates inputs, outputs, params and the boundaries of sharded models; n is the
// value count.

// MaxPackBits is the number of bits packed into one field element (below BN254's 254).
const MaxPackBits = 248

// Commitment tags.
const (
	TagInputs  = 1
	TagOutputs = 2
	TagParams  = 3
	// TagBoundary commits the activations that cross a cut between two segments of a
	// sharded model (quant.Boundary visibility): the same tag on both sides, so that
	// segment i's output commitment equals segment i+1's input commitment exactly
	// when they commit to the same values (same count, width and order).
	TagBoundary = 4
)

// packLayout returns how many values go into each field element.
func perElement(w int) int {
	if w < 1 || w > MaxPackBits {
		panic(fmt.Sprintf("commitment width %d out of range", w))
	}
	return MaxPackBits / w
}

// Commit computes the commitment of values (signed, |v| < 2^(w-1)) natively, as a
// verifier outside the circuit would.
func Commit(tag int, w int, values []int64) (*big.Int, error) {
	h := nativeposeidon2.NewMerkleDamgardHasher()
	write := func(x *big.Int) {
		var e fr.Element
		e.SetBigInt(x)
		b := e.Bytes()
		h.Write(b[:])
	}
	write(big.NewInt(int64(tag)))
	write(big.NewInt(int64(len(values))))
	write(big.NewInt(int64(w)))
	per := perElement(w)
	half := new(big.Int).Lsh(big.NewInt(1), uint(w-1))
	lim := new(big.Int).Lsh(half, 1)
	for start := 0; start < len(values); start += per {
		acc := new(big.Int)
		for i := min(start+per, len(values)) - 1; i >= start; i-- {
			u := new(big.Int).Add(big.NewInt(values[i]), half)
			if u.Sign() < 0 || u.Cmp(lim) >= 0 {
				return nil, fmt.Errorf("value %d does not fit in %d signed bits", values[i], w)
			}
			acc.Lsh(acc, uint(w)).Add(acc, u)
		}
		write(acc)
	}
	return new(big.Int).SetBytes(h.Sum(nil)), nil
}

// commitVars computes the same commitment in the circuit, range-checking every value
// to w signed bits so that no value can carry into its neighbour's slot.
func commitVars(a *arith, tag int, w int, values []frontend.Variable) (frontend.Variable, error) {
	api := a.api
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, err
	}
	h.Write(tag, len(values), w)
	per := perElement(w)
	half := pow2(w - 1)
	for start := 0; start < len(values); start += per {
		var acc frontend.Variable = 0
		for i := min(start+per, len(values)) - 1; i >= start; i-- {
			a.RangeCheck(values[i], w)
			acc = api.Add(api.Mul(acc, pow2(w)), api.Add(values[i], half))
		}
		h.Write(acc)
	}
	return h.Sum(), nil
}

// ParamsCommitment is the public commitment to the model parameters when they are
// hashed (ok is false otherwise). It depends on the model alone, so it identifies the
// weights a proof was made with, and is published with the model.
func ParamsCommitment(p *quant.Program) (c *big.Int, ok bool, err error) {
	b, err := ModelBinding(p)
	if err != nil || b == nil || b.What != BindsParamsCommitment {
		return nil, false, err
	}
	return b.Values[0], true, nil
}
