package quant

import (
	"fmt"
	"math/bits"

	"github.com/zkml/zkml/model"
)

// IntArith is the integer reference arithmetic. It records the first out-of-range or
// overflowing operation instead of panicking; Run reports it with the layer name.
type IntArith struct {
	err error
}

var _ Arith[int64] = (*IntArith)(nil)

func (a *IntArith) fail(format string, args ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format, args...)
	}
}

// Const implements Arith.
func (a *IntArith) Const(c int64) int64 { return c }

// Add implements Arith.
func (a *IntArith) Add(x, y int64) int64 {
	s := x + y
	if (x > 0 && y > 0 && s < 0) || (x < 0 && y < 0 && s >= 0) {
		a.fail("integer overflow")
	}
	return s
}

// MulConst implements Arith.
func (a *IntArith) MulConst(x int64, c int64) int64 { return a.mul(x, c) }

func (a *IntArith) mul(x, y int64) int64 {
	hi, lo := bits.Mul64(uint64(abs(x)), uint64(abs(y)))
	if hi != 0 || lo > 1<<62 {
		a.fail("integer overflow")
		return 0
	}
	if (x < 0) != (y < 0) {
		return -int64(lo)
	}
	return int64(lo)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// Dot implements Arith.
func (a *IntArith) Dot(x, w []int64, c int64) int64 {
	s := c
	for i := range x {
		s = a.Add(s, a.mul(x[i], w[i]))
	}
	return s
}

func (a *IntArith) inRange(v int64, nbits int) bool {
	lim := int64(1) << (nbits - 1)
	return v >= -lim && v < lim
}

// Rescale implements Arith.
func (a *IntArith) Rescale(x int64, k, nbits int, relu bool) int64 {
	q := x
	if k > 0 {
		q = (x + int64(1)<<(k-1)) >> k // arithmetic shift: floor
	}
	if !a.inRange(q, nbits) {
		a.fail("%w: %d (%.6g) does not fit in the %d signed bits proven for this tensor; raise bits, compile with calibration inputs (--input) that reach it, or lower the scale", ErrOutOfRange, q, float64(q), nbits)
	}
	if relu && q < 0 {
		return 0
	}
	return q
}

// RoundEven implements Arith.
func (a *IntArith) RoundEven(x int64, k, nbits int) int64 {
	q := model.RoundShiftEven(x, k)
	if !a.inRange(q, nbits) {
		a.fail("%w: %d does not fit in %d signed bits", ErrOutOfRange, q, nbits)
	}
	return q
}

// Relu implements Arith.
func (a *IntArith) Relu(x int64, nbits int) int64 {
	if !a.inRange(x, nbits) {
		a.fail("%w: relu input %d exceeds %d signed bits", ErrOutOfRange, x, nbits)
	}
	return max(x, 0)
}

// RangeCheck implements Arith.
func (a *IntArith) RangeCheck(x int64, nbits int) {
	if !a.inRange(x, nbits) {
		a.fail("%w: %d does not fit in %d signed bits", ErrOutOfRange, x, nbits)
	}
}

// Lookup implements Arith.
func (a *IntArith) Lookup(t *Table, x int64) int64 {
	i := x - t.Lo
	if i < 0 || i >= int64(len(t.Values)) {
		a.fail("%w: %d outside table %s", ErrOutOfRange, x, t.Name)
		return 0
	}
	return t.Values[i]
}

// DivFloor implements Arith.
func (a *IntArith) DivFloor(x, y int64, xBits, yBits, qBits int) int64 {
	if x < 0 || y <= 0 || x >= int64(1)<<xBits || y >= int64(1)<<yBits {
		a.fail("%w: division %d / %d outside its proven domain", ErrOutOfRange, x, y)
		return 0
	}
	q := x / y
	if q >= int64(1)<<qBits {
		a.fail("%w: quotient %d exceeds %d bits", ErrOutOfRange, q, qBits)
	}
	return q
}

// Layer implements Arith.
func (a *IntArith) Layer(*Layer) {}

// Err implements Arith.
func (a *IntArith) Err() error { return a.err }
