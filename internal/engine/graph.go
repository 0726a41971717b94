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
)

// checkGraph refuses, before the model is lowered, a model whose structural estimate
// (bench.EstimateGraph, from the loaded graph without lowering it) is over the
// engine's limits in one of syss (both systems when none is given): lowering a
// full-size network would itself take more than the memory limit. A model the
// structural estimate cannot cost, or that does not load, is left to the estimate
// after lowering (and its compile job to report why).
func (e *Engine) checkGraph(onnx, settings []byte, syss ...circuits.System) error {
	if e.Limits == (bench.Limits{}) {
		return nil
	}
	cfg, err := ParseSettings(settings)
	if err != nil {
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
	if err := e.Limits.CheckGraph(est, syss...); err != nil {
		return fmt.Errorf("%w: %v", api.ErrOverBudget, strings.TrimPrefix(err.Error(), bench.ErrOverBudget.Error()+": "))
	}
	return nil
}

// checkDir is checkGraph for a compiled model's directory (setup, before prover.Open
// lowers the model again); files it cannot read are left to prover.Open.
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
	return e.checkGraph(onnx, settings, sys)
}
