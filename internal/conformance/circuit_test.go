package conformance

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// nodeTests holds the vendored ONNX backend node tests (testdata/onnx-node/README.md).
const nodeTests = "../../testdata/onnx-node"

var update = flag.Bool("update", false, "rewrite docs/operators.md")

// tolerance is the allowed |circuit - expected| per element: a few units in the last
// place of the fixed-point scale, plus a relative term for products of larger values.
func tolerance(want float64, cfg quant.Config) float64 {
	ulp := math.Ldexp(1, -cfg.Scale)
	return 16*ulp + 8*ulp*math.Abs(want)
}

// refusedCases are node tests of supported operators whose feature is refused, each
// with the reason: the suite checks that they are refused (naming op and node) and
// lists them in docs/operators.md.
var refusedCases = map[string]string{
	"test_pow": "real exponents per element (and 0 to a negative power, inf)",
}

type outcome struct {
	op        string
	supported bool
	passed    int
	total     int
	refused   []string
}

// TestCircuitConformance proves every ONNX node test of every operator zkml supports
// (Groth16, with a real setup, proof and verification) and compares the dequantized
// outputs with output_*.pb. Every other operator must be rejected with an
// ErrUnsupportedOp error naming the operator and the node.
func TestCircuitConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("proves every node test; skipped in -short")
	}
	cases := allCases(t)
	cfg := Config()
	results := map[string]*outcome{}
	rejected := map[string][]string{} // op -> cases rejected as unsupported
	for _, c := range cases {
		o := results[c.Op]
		if o == nil {
			o = &outcome{op: c.Op}
			results[c.Op] = o
		}
		o.total++
		unsupported, ran := false, false
		ok := t.Run(c.Name, func(t *testing.T) {
			ran = true
			for _, ds := range c.Sets {
				err := proveCase(c, ds, cfg)
				if errors.Is(err, model.ErrUnsupportedOp) {
					unsupported = true
					// A graph that folds to a constant has no node left to name.
					if !strings.Contains(err.Error(), c.Op+" node ") && !strings.Contains(err.Error(), "is a constant") {
						t.Fatalf("unsupported-op error does not name op and node: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", ds.Name, err)
				}
			}
		})
		_, expected := refusedCases[c.Name]
		if expected && ran && !unsupported {
			t.Errorf("%s: expected to be refused (%s), but it was not", c.Name, refusedCases[c.Name])
		}
		switch {
		case unsupported && expected:
			o.refused = append(o.refused, c.Name)
		case unsupported:
			rejected[c.Op] = append(rejected[c.Op], c.Name)
		case ok:
			o.supported = true
			o.passed++
		default:
			o.supported = true
		}
	}
	table := operatorTable(results)
	t.Log("\n" + table)
	if *update {
		doc := table + "\n" + newOperatorsSection + "\n" + refusedSection()
		if err := os.WriteFile("../../docs/operators.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range results {
		if o.supported && o.passed+len(o.refused) != o.total {
			t.Errorf("%s: only %d of %d node tests pass (rejected as unsupported: %v)", o.op, o.passed, o.total, rejected[o.op])
		}
	}
}

// allCases loads the vendored node tests and the generated ones, sorted by name.
func allCases(t *testing.T) []*Case {
	t.Helper()
	var cases []*Case
	for _, dir := range []string{nodeTests, generatedTests} {
		cs, err := Load(dir)
		if err != nil || len(cs) == 0 {
			t.Fatalf("node tests under %s: %d cases, %v", dir, len(cs), err)
		}
		cases = append(cases, cs...)
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	return cases
}

// proveCase compiles, sets up, proves and verifies one data set.
func proveCase(c *Case, ds *DataSet, cfg quant.Config) error {
	g, err := c.Graph(ds)
	if err != nil {
		return err
	}
	// The prover reads ONNX bytes: bind the parameter constants by building the model
	// directory from the bytes and the same constants.
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return err
	}
	return proveProgram(c, p, ds, cfg)
}

// proveProgram proves one data set on the lowered program p: the dequantized outputs
// within the tolerance of ds.Outputs, then a Groth16 setup, proof and verification.
func proveProgram(c *Case, p *quant.Program, ds *DataSet, cfg quant.Config) error {
	w, err := prover.NewWitness(p, ds.Inputs)
	if err != nil {
		return err
	}
	for i, out := range w.Outputs {
		want := ds.Outputs[i]
		if model.Numel(out.Shape) != model.Numel(want.Shape) {
			return fmt.Errorf("output %d has shape %v, want %v", i, out.Shape, want.Shape)
		}
		// Integer outputs (of the quantized operators) must match exactly.
		_, _, exact := model.IntRange(want.DType)
		for j, v := range want.Data {
			if d := math.Abs(out.Data[j] - v); d > tolerance(v, cfg) || (exact && d != 0) {
				return fmt.Errorf("output %d element %d = %v, want %v (|diff| %.3g)", i, j, out.Data[j], v, d)
			}
		}
	}
	if _, err := prover.ProveProgram(p, circuits.Groth16, w); err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	return nil
}

func operatorTable(results map[string]*outcome) string {
	ops := make([]string, 0, len(results))
	for op := range results {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	b.WriteString("# Operators\n\n")
	b.WriteString("Generated by `go test ./internal/conformance -run TestCircuitConformance -update`\n")
	b.WriteString("from ONNX's node tests (`testdata/onnx-node`) and the node tests zkml generates for newer\n")
	b.WriteString("opsets and forms (`testdata/onnx-node-generated`, see `TestGeneratedNodeTests`). A test passes when the\n")
	b.WriteString("circuit's dequantized output matches `output_*.pb` within the conformance tolerance\n")
	b.WriteString("(16 + 8·|expected| units of 2^-10 at scale 10; integer outputs of the quantized\n")
	b.WriteString("operators exactly) and its Groth16 proof verifies.\n")
	b.WriteString("Unsupported operators are rejected with an error naming the operator and the node.\n\n")
	b.WriteString("| operator | supported | node tests passed |\n|---|---|---|\n")
	for _, op := range ops {
		o := results[op]
		sup, passed := "no", "-"
		if o.supported {
			sup, passed = "yes", fmt.Sprintf("%d/%d", o.passed, o.total)
			for _, r := range o.refused {
				passed += fmt.Sprintf("; %s refused: %s", r, refusedCases[r])
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", op, sup, passed)
	}
	return b.String()
}
