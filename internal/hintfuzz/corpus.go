package hintfuzz

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/zkml/zkml/internal/conformance"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// Models lowers every example model under dir (folders holding network.onnx and
// input.json, as in examples/ and the shared models) with cfg, on its sample input.
func Models(dir string, cfg quant.Config) ([]Case, error) {
	return models(dir, cfg, false)
}

// CalibratedModels is Models with each model's widths measured on its sample input
// (quant.CalibrateWidths, as compile --input does): the narrowest widths, so forged
// hints meet the tightest range checks.
func CalibratedModels(dir string, cfg quant.Config) ([]Case, error) {
	return models(dir, cfg, true)
}

func models(dir string, cfg quant.Config, calibrate bool) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "network.onnx"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var cases []Case
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		c, err := loadModel(f, name, cfg, calibrate)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", name, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadModel(file, name string, cfg quant.Config, calibrate bool) (Case, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Case{}, err
	}
	g, err := model.Load(data)
	if err != nil {
		return Case{}, err
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "input.json"))
	if err != nil {
		return Case{}, err
	}
	in, err := model.ParseInput(raw, g)
	if err != nil {
		return Case{}, err
	}
	if calibrate {
		if cfg, err = quant.CalibrateWidths(g, cfg, [][]*model.Tensor{in}, 0); err != nil {
			return Case{}, err
		}
	}
	return lower(name, g, in, cfg)
}

func lower(name string, g *model.Graph, in []*model.Tensor, cfg quant.Config) (Case, error) {
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return Case{}, err
	}
	qi, err := p.QuantizeInputs(in)
	if err != nil {
		return Case{}, err
	}
	return Case{Name: name, Prog: p, Inputs: qi}, nil
}

// NodeTests lowers every data set of every ONNX node test under dir that zkml
// supports, with conformance.Config (the settings the conformance suite proves them
// at). Unsupported operators are skipped; any other failure is an error.
func NodeTests(dir string) ([]Case, error) {
	tests, err := conformance.Load(dir)
	if err != nil {
		return nil, err
	}
	var cases []Case
	for _, c := range tests {
		for _, ds := range c.Sets {
			g, err := c.Graph(ds)
			if err == nil {
				var cs Case
				cs, err = lower(c.Name+"/"+ds.Name, g, ds.Inputs, conformance.Config())
				if err == nil {
					cases = append(cases, cs)
					continue
				}
			}
			if errors.Is(err, model.ErrUnsupportedOp) {
				break
			}
			return nil, fmt.Errorf("%s/%s: %w", c.Name, ds.Name, err)
		}
	}
	return cases, nil
}
