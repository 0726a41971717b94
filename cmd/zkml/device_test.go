package main

import (
	"testing"

	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/prover"
)

// TestWorkerDeviceSetting checks how `zkml serve` and `zkml worker` pick their
// workers' proving device: --device, else ZKML_DEVICE, else cpu; unknown names fail.
func TestWorkerDeviceSetting(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      prover.Device
		wantErr   bool
	}{
		{name: "default", want: prover.CPU},
		{name: "env", env: "icicle-cpu", want: prover.ICICLECPU},
		{name: "flag", args: []string{"--device", "gpu"}, want: prover.GPU},
		{name: "flag wins over env", env: "gpu", args: []string{"--device", "icicle-cpu"}, want: prover.ICICLECPU},
		{name: "unknown env", env: "tpu", wantErr: true},
		{name: "unknown flag", args: []string{"--device", "tpu"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ZKML_DEVICE", tc.env)
			cmd := workerCmd()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			var f serviceFlags
			f.device, _ = cmd.Flags().GetString("device")
			cfg, err := f.config(cmd)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got device %v, want an error", cfg.Engine.(*engine.Engine).Device)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Engine.(*engine.Engine).Device; got != tc.want {
				t.Fatalf("device %q, want %q", got, tc.want)
			}
		})
	}
}
