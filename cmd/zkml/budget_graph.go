package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover/shard"
)

// checkGraph refuses (for the proving systems syss), before the model is lowered, a model whose structural estimate
// (bench.EstimateGraph: from the loaded graph's shapes, with no per-MAC index lists)
// is over the budget (printing that estimate to w, when given): lowering a full-size network would itself need more memory than
// the budget. A model the structural estimate cannot cost (an op it does not model),
// or that does not load, is left to the checks after lowering, which report why.
// A sharded model (sharded) may exceed the budget as a whole: only its lowering is
// checked (bench.Limits.CheckGraphSharded); a layer over the budget is split into
// bands by the planner, and each segment's estimate is checked when the model is split.
func (b *memoryBudget) checkGraph(onnx []byte, cfg quant.Config, syss []circuits.System, sharded bool, w io.Writer) error {
	l, err := b.limits()
	if err != nil {
		return err
	}
	if l.MaxMemoryBytes <= 0 {
		return nil
	}
	g, err := model.Load(onnx)
	if err != nil {
		return nil
	}
	est, err := bench.EstimateGraph(g, cfg)
	if errors.Is(err, bench.ErrUnmodeled) || err != nil {
		return nil
	}
	if sharded {
		err = l.CheckGraphSharded(est)
	} else {
		err = l.CheckGraph(est, syss...)
	}
	if err != nil && w != nil && !sharded {
		// Printed only for a refusal: a model within the budget prints the estimate
		// of its lowered program next.
		for _, sys := range syss {
			e := est.Estimate(sys)
			fmt.Fprintf(w, "estimate %s: at most %d constraints, %d wires, domain 2^%d, %d MiB (structural, before lowering)\n",
				sys, e.Constraints, e.Wires, bits.Len64(uint64(e.Domain))-1, e.MemoryBytes>>20)
		}
	}
	if err != nil {
		return fmt.Errorf("model refused before lowering it and before building its circuit: %w", err)
	}
	return nil
}

// checkDir is checkGraph for the model and settings of a model directory (setup and
// prove, before prover.Open lowers the model again). Files it cannot read are left to
// prover.Open.
func (b *memoryBudget) checkDir(dir string, syss []circuits.System) error {
	onnx, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil
	}
	cfg := quant.DefaultConfig()
	if sb, err := os.ReadFile(filepath.Join(dir, "settings.json")); err != nil || json.Unmarshal(sb, &cfg) != nil {
		return nil
	}
	_, err = os.Stat(filepath.Join(dir, shard.PlanFile))
	return b.checkGraph(onnx, cfg, syss, err == nil, nil)
}
