package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover/shard"
)

// checkGraph refuses, before the model is lowered, a model whose structural estimate
// (bench.EstimateGraph, from the loaded graph without lowering it) is over the
// engine's limits in one of syss (both systems when none is given): lowering a
// full-size network would itself take more than the memory limit. A sharded model
// (settings with a "shard" object) may exceed the limits as a whole: only its
// lowering is checked (bench.Limits.CheckGraphSharded, as `zkml compile --shard`
// does), its segments when it is split. A model the
// structural estimate cannot cost, or that does not load, is left to the estimate
// after lowering (and its compile job to report why).
func (e *Engine) checkGraph(onnx, settings []byte, syss ...circuits.System) error {
	cfg, sh, err := ParseModelSettings(settings)
	if err != nil {
		return nil
	}
	return e.checkGraphSharded(onnx, cfg, sh != nil, syss...)
}

// checkGraphSharded is checkGraph for a model of settings cfg, sharded or not.
func (e *Engine) checkGraphSharded(onnx []byte, cfg quant.Config, sharded bool, syss ...circuits.System) error {
	if e.Limits == (bench.Limits{}) {
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
	check := func() error { return e.Limits.CheckGraph(est, syss...) }
	if sharded {
		check = func() error { return e.Limits.CheckGraphSharded(est) }
	}
	if err := check(); err != nil {
		return fmt.Errorf("%w: %v", api.ErrOverBudget, strings.TrimPrefix(err.Error(), bench.ErrOverBudget.Error()+": "))
	}
	return nil
}

// checkDir is checkGraph for a compiled model's directory (setup, before prover.Open
// lowers the model again): the directory's settings are the quantizer's only, and a
// plan file marks a sharded model. Files it cannot read are left to prover.Open.
func (e *Engine) checkDir(dir string, sys circuits.System) error {
	if e.Limits == (bench.Limits{}) {
		return nil
	}
	onnx, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil
	}
	settings, err := os.ReadFile(filepath.Join(dir, "settings.json"))
	if err != nil {
		return nil
	}
	cfg, err := ParseSettings(settings)
	if err != nil {
		return nil
	}
	_, err = os.Stat(filepath.Join(dir, shard.PlanFile))
	return e.checkGraphSharded(onnx, cfg, err == nil, sys)
}
