package shard

import (
	"fmt"

	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/prover"
)

// MemKeys holds every segment's circuit and development keys in memory (tests and
// benchmarks; a model directory keeps them on disk, see Dir).
type MemKeys struct {
	CCS   []constraint.ConstraintSystem
	PK    []any
	VK    []any
	Stats []*circuits.Stats
}

// SetupDev compiles every segment of pl for sys and runs the development setup
// (prover.SetupKeys: NOT for production).
func SetupDev(pl *Plan, sys circuits.System) (*MemKeys, error) {
	k := &MemKeys{}
	for _, s := range pl.Segments {
		ccs, stats, err := circuits.Compile(s.Program, sys)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", s.Index, err)
		}
		pk, vk, err := prover.SetupKeys(ccs, sys)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", s.Index, err)
		}
		k.CCS, k.PK, k.VK, k.Stats = append(k.CCS, ccs), append(k.PK, pk), append(k.VK, vk), append(k.Stats, stats)
	}
	return k, nil
}

// Circuit implements Keys.
func (k *MemKeys) Circuit(i int) (constraint.ConstraintSystem, error) { return k.CCS[i], nil }

// ProvingKey implements Keys.
func (k *MemKeys) ProvingKey(i int) (any, error) { return k.PK[i], nil }

// VerifyingKey implements Keys.
func (k *MemKeys) VerifyingKey(i int) (any, error) { return k.VK[i], nil }
