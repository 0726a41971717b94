package circuits

import (
	"fmt"
	"math/big"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativeposeidon2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"
	permutation "github.com/consensys/gnark/std/permutation/poseidon2"

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
// range-checks every packed value to w bits itself (but a boundary input that a layer
// of the circuit checks whole to at most w bits: Prechecked), so packing is injective
// (distinct tensors give distinct preimages) whatever the bound analysis says: a value
// that does not fit makes Commit fail before proving, and cannot satisfy the circuit. tag
// separates inputs, outputs, params and the boundaries of sharded models; n is the
// value count.
//
// Boundary commitments (TagBoundary) hash the same elements (tag, n, w and the packed
// values) with a Poseidon2 sponge instead: the BN254 Poseidon2 permutation of width
// SpongeWidth = 16 (8 full and 57 partial rounds: the reference parameters for
// 128-bit security, as gnark-crypto ships them), rate 15 and capacity 1 (the last
// state element), the elements added block by block into the rate part of a zero
// state, a permutation after each block (the last one zero-padded: n and w fix the
// element count, so padding is unambiguous), and the first state element out. Its
// collision resistance is the capacity's (254 bits, 127-bit security), as for the
// Merkle-Damgard hash. A permutation costs 555 R1CS constraints for 15 elements
// against 186 for one in the Merkle-Damgard hash (4.9 times less per element; in
// PLONK about 1.5 times): a sharded model's boundaries hash millions of values. The
// model's own inputs, outputs and params keep the Merkle-Damgard hash that users
// reproduce.

// MaxPackBits is the number of bits packed into one field element (below BN254's 254).
const MaxPackBits = 248

// The boundary commitments' sponge: permutation width and rounds.
const (
	SpongeWidth   = 16
	spongeFull    = 8
	spongePartial = 57
)

// spongePermutation is the native permutation of the boundary sponge.
var spongePermutation = sync.OnceValue(func() *nativeposeidon2.Permutation {
	return nativeposeidon2.NewPermutation(SpongeWidth, spongeFull, spongePartial)
})

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
	per := perElement(w)
	elems := make([]fr.Element, 3, 3+(len(values)+per-1)/per)
	elems[0].SetInt64(int64(tag))
	elems[1].SetInt64(int64(len(values)))
	elems[2].SetInt64(int64(w))
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
		var e fr.Element
		e.SetBigInt(acc)
		elems = append(elems, e)
	}
	if tag == TagBoundary {
		var st [SpongeWidth]fr.Element
		perm := spongePermutation()
		for start := 0; start < len(elems); start += SpongeWidth - 1 {
			for i := start; i < min(start+SpongeWidth-1, len(elems)); i++ {
				st[i-start].Add(&st[i-start], &elems[i])
			}
			if err := perm.Permutation(st[:]); err != nil {
				return nil, err
			}
		}
		return st[0].BigInt(new(big.Int)), nil
	}
	h := nativeposeidon2.NewMerkleDamgardHasher()
	for _, e := range elems {
		b := e.Bytes()
		h.Write(b[:])
	}
	return new(big.Int).SetBytes(h.Sum(nil)), nil
}

// commitVars computes the same commitment in the circuit, range-checking every value
// to w signed bits so that no value can carry into its neighbour's slot, but those
// prechecked (non-nil) marks as proven within w bits already (Prechecked).
func commitVars(a *arith, tag int, w int, values []frontend.Variable, prechecked []bool) (frontend.Variable, error) {
	api := a.api
	elems := []frontend.Variable{tag, len(values), w}
	per := perElement(w)
	half := pow2(w - 1)
	for start := 0; start < len(values); start += per {
		var acc frontend.Variable = 0
		for i := min(start+per, len(values)) - 1; i >= start; i-- {
			if prechecked == nil || !prechecked[i] {
				a.RangeCheck(values[i], w)
			}
			acc = api.Add(api.Mul(acc, pow2(w)), api.Add(values[i], half))
		}
		elems = append(elems, acc)
	}
	if tag == TagBoundary {
		return Sponge(api, elems)
	}
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, err
	}
	h.Write(elems...)
	return h.Sum(), nil
}

// Prechecked marks the values of commitment h of p (in the order the commitment
// packs them) that p's own layers already prove within h.Width signed bits, so that
// the commitment need not check them again (nil if none): a boundary input group's
// tensors each range-checked whole, with no fill, to at most h.Width bits by a layer
// reading the input itself (the range check every segment of a sharded model puts on
// its boundary inputs). Only boundary input groups are considered; a model's hashed
// inputs and every output group keep the commitment's own checks.
func Prechecked(p *quant.Program, l *Layout, h HashSlot) []bool {
	if h.Tag != TagInputs || h.Domain != TagBoundary {
		return nil
	}
	bits := map[int]int{} // input value id -> narrowest whole check
	for _, ly := range p.Layers {
		if ly.Kind == quant.KRangeChk && !ly.Restricted() && ly.Fill == 0 && len(ly.In) == 1 && ly.Bits >= 1 {
			if b, ok := bits[ly.In[0]]; !ok || ly.Bits < b {
				bits[ly.In[0]] = ly.Bits
			}
		}
	}
	var out []bool
	some := false
	for k, s := range l.Inputs[h.First : h.First+h.Count] {
		b, ok := bits[p.Inputs[h.First+k]]
		ok = ok && b <= h.Width
		some = some || ok
		for range s.Len {
			out = append(out, ok)
		}
	}
	if !some {
		return nil
	}
	return out
}

// Sponge hashes elems in the circuit with the boundary commitments' Poseidon2 sponge
// (width SpongeWidth, rate SpongeWidth-1, capacity 1, zero state, the last block
// zero-padded; see Commit).
func Sponge(api frontend.API, elems []frontend.Variable) (frontend.Variable, error) {
	perm, err := permutation.NewPoseidon2FromParameters(api, SpongeWidth, spongeFull, spongePartial)
	if err != nil {
		return nil, err
	}
	st := make([]frontend.Variable, SpongeWidth)
	for i := range st {
		st[i] = 0
	}
	for start := 0; start < len(elems); start += SpongeWidth - 1 {
		for i := start; i < min(start+SpongeWidth-1, len(elems)); i++ {
			st[i-start] = api.Add(st[i-start], elems[i])
		}
		if err := perm.Permutation(st); err != nil {
			return nil, err
		}
	}
	return st[0], nil
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
