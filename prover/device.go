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

// Devices. The two ICICLE devices run the same code (gnark's accelerated Groth16
// prover) on different ICICLE backends: ICICLECPU makes that code path run, and be
// tested, on machines without a GPU; it is a correctness path, not a fast one.
const (
	CPU       Device = "cpu"        // gnark's own prover (Groth16 and PLONK)
	ICICLECPU Device = "icicle-cpu" // ICICLE's CPU backend, Groth16 only; needs -tags icicle
	GPU       Device = "gpu"        // ICICLE's CUDA backend, Groth16 only; needs -tags icicle
)

// Devices lists the device names ParseDevice accepts, for flag help and errors.
const Devices = "cpu, icicle-cpu or gpu"

// ParseDevice validates a device name.
func ParseDevice(s string) (Device, error) {
	switch Device(s) {
	case CPU, ICICLECPU, GPU:
		return Device(s), nil
	}
	return "", fmt.Errorf("unknown device %q (want %s)", s, Devices)
}

// icicle reports whether d proves through ICICLE.
func (d Device) icicle() bool { return d == ICICLECPU || d == GPU }

// ProveOption configures Prove.
type ProveOption func(*proveConfig)

type proveConfig struct {
	device Device
}

// WithDevice asks for the proof to be computed on d. An ICICLE request (gpu or
// icicle-cpu) falls back to gnark's CPU prover, with a logged warning, when this binary
// has no ICICLE support, the ICICLE backend or device is missing, or the system is
// PLONK (gnark's ICICLE backend is Groth16 only).
func WithDevice(d Device) ProveOption { return func(c *proveConfig) { c.device = d } }

// Support reports whether this binary and machine can prove on d, and why not. The
// plain CPU device is always supported.
func Support(d Device) (bool, string) {
	if !d.icicle() {
		return true, ""
	}
	return icicleSupport(d)
}

// GPUSupport reports whether this binary can prove on a GPU, and why not.
func GPUSupport() (bool, string) { return Support(GPU) }

// resolveDevice returns the device a proof of sys will really use.
func resolveDevice(want Device, sys circuits.System) Device {
	if !want.icicle() {
		return CPU
	}
	if sys != circuits.Groth16 {
		slog.Warn("ICICLE proving requested but ICICLE supports Groth16 only; proving on CPU", "device", want, "system", sys)
		return CPU
	}
	if ok, why := icicleSupport(want); !ok {
		slog.Warn("ICICLE proving requested but unavailable; proving on CPU", "device", want, "reason", why)
		return CPU
	}
	return want
}

// keySums remembers the checksum of in-memory proving keys handed to ProveCS.
var keySums sync.Map

// ProveCS proves full with a compiled circuit and proving key on the requested device
// (falling back to the CPU as WithDevice does) and reports the device used. The caller
// must verify the proof, as Model.Prove does.
func ProveCS(sys circuits.System, want Device, ccs constraint.ConstraintSystem, pk io.WriterTo, full witness.Witness) (io.WriterTo, Device, error) {
	dev := resolveDevice(want, sys)
	if dev == CPU {
		p, err := proveRaw(sys, ccs, pk, full)
		return p, CPU, err
	}
	var buf bytes.Buffer
	sum, ok := keySums.Load(pk)
	if !ok {
		if _, err := pk.WriteTo(&buf); err != nil {
			return nil, dev, err
		}
		h := sha256.Sum256(buf.Bytes())
		sum = hex.EncodeToString(h[:])
		keySums.Store(pk, sum)
	}
	p, err := proveICICLE(dev, ccs, sum.(string), func() ([]byte, error) {
		if buf.Len() == 0 {
			if _, err := pk.WriteTo(&buf); err != nil {
				return nil, err
			}
		}
		return buf.Bytes(), nil
	}, full)
	return p, dev, err
}
