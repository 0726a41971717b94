package prover

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"

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

// gpuKeySums remembers the checksum of in-memory proving keys handed to ProveCS.
var gpuKeySums sync.Map

// ProveCS proves full with a compiled circuit and proving key on the requested device
// (falling back to the CPU as WithDevice does) and reports the device used. The caller
// must verify the proof, as Model.Prove does.
func ProveCS(sys circuits.System, want Device, ccs constraint.ConstraintSystem, pk io.WriterTo, full witness.Witness) (io.WriterTo, Device, error) {
	if resolveDevice(want, sys) != GPU {
		p, err := proveRaw(sys, ccs, pk, full)
		return p, CPU, err
	}
	var buf bytes.Buffer
	sum, ok := gpuKeySums.Load(pk)
	if !ok {
		if _, err := pk.WriteTo(&buf); err != nil {
			return nil, GPU, err
		}
		h := sha256.Sum256(buf.Bytes())
		sum = hex.EncodeToString(h[:])
		gpuKeySums.Store(pk, sum)
	}
	p, err := proveGPU(ccs, sum.(string), func() ([]byte, error) {
		if buf.Len() == 0 {
			if _, err := pk.WriteTo(&buf); err != nil {
				return nil, err
			}
		}
		return buf.Bytes(), nil
	}, full)
	return p, GPU, err
}
