package circuits

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
)

func init() {
	solver.RegisterHint(Hints()...)
}

// Hints returns the solver hints the model circuits use; provers must register them
// (this package does so in init).
func Hints() []solver.Hint {
	return []solver.Hint{rescaleHint, signHint, divHint, roundEvenHint, oneHint}
}

// signed maps a field element to the integer in (-p/2, p/2] it represents.
func signed(field, v *big.Int) *big.Int {
	half := new(big.Int).Rsh(field, 1)
	if v.Cmp(half) > 0 {
		return new(big.Int).Sub(v, field)
	}
	return new(big.Int).Set(v)
}

// rescaleHint: inputs (x, k, bits, relu). Outputs q = floor(x / 2^k) (x already
// includes the rounding offset); with relu=1, outputs (s, low) where s = [q >= 0] and
// q + 2^(bits-1) = s*2^(bits-1) + low.
func rescaleHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 4 {
		return errors.New("rescaleHint: want 4 inputs")
	}
	x := signed(field, in[0])
	k, nbits := uint(in[1].Uint64()), uint(in[2].Uint64())
	q := new(big.Int).Rsh(x, k) // floor for negatives too
	if in[3].Sign() == 0 {
		out[0].Mod(q, field)
		return nil
	}
	half := new(big.Int).Lsh(big.NewInt(1), nbits-1)
	if q.Sign() >= 0 {
		out[0].SetInt64(1)
		out[1].Mod(q, field)
	} else {
		out[0].SetInt64(0)
		out[1].Mod(new(big.Int).Add(q, half), field)
	}
	return nil
}

// roundEvenHint: inputs (x, k). With y = x / 2^k rounded half to even, outputs
// (floor(y / 2), y mod 2).
func roundEvenHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 2 {
		return errors.New("roundEvenHint: want 2 inputs")
	}
	x := signed(field, in[0])
	k := uint(in[1].Uint64())
	y := new(big.Int).Rsh(x, k) // floor
	r := new(big.Int).Sub(x, new(big.Int).Lsh(y, k))
	if k > 0 {
		switch r.Cmp(new(big.Int).Lsh(big.NewInt(1), k-1)) {
		case 1:
			y.Add(y, big.NewInt(1))
		case 0:
			if y.Bit(0) == 1 {
				y.Add(y, big.NewInt(1))
			}
		}
	}
	h := new(big.Int).Rsh(y, 1)
	out[0].Mod(h, field)
	out[1].SetUint64(uint64(y.Bit(0)))
	return nil
}

// signHint: input x; output [x >= 0].
func signHint(field *big.Int, in, out []*big.Int) error {
	if signed(field, in[0]).Sign() >= 0 {
		out[0].SetInt64(1)
	} else {
		out[0].SetInt64(0)
	}
	return nil
}

// divHint: inputs (a, b) non-negative; output floor(a / b) (0 when b = 0, which the
// circuit then rejects).
func divHint(field *big.Int, in, out []*big.Int) error {
	a, b := signed(field, in[0]), signed(field, in[1])
	if b.Sign() <= 0 {
		out[0].SetInt64(0)
		return nil
	}
	q := new(big.Int).Div(a, b) // Euclidean: floor for b > 0
	out[0].Mod(q, field)
	return nil
}

// oneHint: no inputs; output 1 (the circuit's one wire, arith.oneWire, which the
// circuit then constrains to 1).
func oneHint(_ *big.Int, _, out []*big.Int) error {
	if len(out) != 1 {
		return errors.New("oneHint: want 1 output")
	}
	out[0].SetInt64(1)
	return nil
}
