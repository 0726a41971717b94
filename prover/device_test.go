package prover

import (
	"testing"

	"github.com/zkml/zkml/circuits"
)

// TestParseDevice checks the device names --device accepts.
func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		want    Device
		wantErr bool
	}{
		{"cpu", CPU, false},
		{"icicle-cpu", ICICLECPU, false},
		{"gpu", GPU, false},
		{"", "", true},
		{"cuda", "", true},
		{"ICICLE-CPU", "", true},
	}
	for _, tc := range tests {
		got, err := ParseDevice(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseDevice(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestResolveDevice checks which device a proof really uses: PLONK never goes to
// ICICLE, the CPU is always there, and an ICICLE device is used exactly when Support
// says it is available (in a build without -tags icicle, never).
func TestResolveDevice(t *testing.T) {
	for _, want := range []Device{CPU, ICICLECPU, GPU} {
		if got := resolveDevice(want, circuits.Plonk); got != CPU {
			t.Errorf("PLONK on %s resolved to %s, want cpu", want, got)
		}
		ok, why := Support(want)
		wantG16 := CPU
		if ok {
			wantG16 = want
		} else if why == "" {
			t.Errorf("Support(%s) is false with no reason", want)
		}
		if got := resolveDevice(want, circuits.Groth16); got != wantG16 {
			t.Errorf("Groth16 on %s resolved to %s, want %s (support %v: %s)", want, got, wantG16, ok, why)
		}
	}
	if ok, _ := Support(CPU); !ok {
		t.Error("the CPU device is not supported")
	}
}
