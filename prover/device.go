package prover

import (
	"fmt"
	"log/slog"

	"github.com/zkml/zkml/circuits"
)

// Device selects where proofs are computed.
type Device string

// Devices.
const (
	CPU Device = "cpu"
	GPU Device = "gpu" // ICICLE (CUDA), Groth16 only; needs a binary built with -tags icicle
)

// ParseDevice validates a device name.
func ParseDevice(s string) (Device, error) {
	switch Device(s) {
	case CPU, GPU:
		return Device(s), nil
	}
	return "", fmt.Errorf("unknown device %q (want cpu or gpu)", s)
}

// ProveOption configures Prove.
type ProveOption func(*proveConfig)

type proveConfig struct {
	device Device
}

// WithDevice asks for the proof to be computed on d. A GPU request falls back to the
// CPU, with a logged warning, when this binary has no ICICLE support, no CUDA device is
// present, or the system is PLONK (gnark's ICICLE backend is Groth16 only).
func WithDevice(d Device) ProveOption { return func(c *proveConfig) { c.device = d } }

// GPUSupport reports whether this binary can prove on a GPU, and why not.
func GPUSupport() (bool, string) { return gpuSupport() }

// resolveDevice returns the device a proof of sys will really use.
func resolveDevice(want Device, sys circuits.System) Device {
	if want != GPU {
		return CPU
	}
	if sys != circuits.Groth16 {
		slog.Warn("GPU proving requested but ICICLE supports Groth16 only; proving on CPU", "system", sys)
		return CPU
	}
	if ok, why := gpuSupport(); !ok {
		slog.Warn("GPU proving requested but unavailable; proving on CPU", "reason", why)
		return CPU
	}
	return GPU
}
