package model

import (
	"math"
	"testing"
)

func TestRoundShiftEven(t *testing.T) {
	for _, c := range []struct {
		t    int64
		k    int
		want int64
	}{
		{128, 8, 0}, {384, 8, 2}, {640, 8, 2}, {-128, 8, 0}, {-384, 8, -2}, {-640, 8, -2},
		{383, 8, 1}, {385, 8, 2}, {-383, 8, -1}, {-385, 8, -2}, {5, 0, 5}, {-7, 1, -4}, {7, 1, 4},
		{1 << 40, 70, 0},
	} {
		if got := RoundShiftEven(c.t, c.k); got != c.want {
			t.Errorf("RoundShiftEven(%d, %d) = %d, want %d", c.t, c.k, got, c.want)
		}
		if c.k < 60 {
			if want := math.RoundToEven(math.Ldexp(float64(c.t), -c.k)); float64(c.want) != want {
				t.Errorf("table entry (%d, %d) disagrees with math.RoundToEven: %v", c.t, c.k, want)
			}
		}
	}
}

func TestDyadic(t *testing.T) {
	for _, f := range []float64{1, 0.5, 3, 0.1, float64(float32(0.0078125)), float64(float32(1.0 / 255)), 1 << 40, 1e-30} {
		m, k, err := Dyadic(f)
		if err != nil {
			t.Fatal(err)
		}
		if math.Ldexp(float64(m), -k) != f || k < 0 || (k > 0 && m%2 == 0) {
			t.Errorf("Dyadic(%v) = %d / 2^%d", f, m, k)
		}
	}
	for _, f := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, _, err := Dyadic(f); err == nil {
			t.Errorf("Dyadic(%v) accepted", f)
		}
	}
}

// TestRequantizeExact checks the integer requantization against exact rational
// rounding: round_half_even(acc * m / 2^k) for float32 multipliers.
func TestRequantizeExact(t *testing.T) {
	for _, scale := range []float64{RequantScale(0.02, 0.004, 0.07), RequantScale(1.0/255, 1.0/127, 0.05), 0.5, 0.25} {
		for acc := int64(-5000); acc <= 5000; acc += 7 {
			got, err := Requantize(acc, scale)
			if err != nil {
				t.Fatal(err)
			}
			// acc * scale is exact in float64 here (|acc| < 2^13, 24-bit mantissa).
			if want := int64(math.RoundToEven(float64(acc) * scale)); got != want {
				t.Fatalf("Requantize(%d, %v) = %d, want %d", acc, scale, got, want)
			}
		}
	}
	if _, err := Requantize(1<<40, 1<<30); err == nil {
		t.Error("overflowing requantization accepted")
	}
}

func TestQuantizeValue(t *testing.T) {
	for _, c := range []struct {
		x, s     float64
		z, lo, h int64
		want     int64
	}{
		{3, 2, 128, 0, 255, 130}, {1, 2, 128, 0, 255, 128}, {1000, 2, 128, 0, 255, 255}, {-1000, 2, 128, 0, 255, 0},
		{-254, 2, 128, 0, 255, 1}, {math.Inf(1), 1, 0, -128, 127, 127}, {-2.5, 1, 0, -128, 127, -2},
	} {
		if got := QuantizeValue(c.x, c.s, c.z, c.lo, c.h); got != c.want {
			t.Errorf("QuantizeValue(%v, %v, %d) = %d, want %d", c.x, c.s, c.z, got, c.want)
		}
	}
	if got := DequantizeValue(130, 2, 128); got != 4 {
		t.Errorf("DequantizeValue = %v", got)
	}
}
