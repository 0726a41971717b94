package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/prover"
)

func TestSyntheticModelsLoad(t *testing.T) {
	for _, name := range SyntheticNames() {
		t.Run(name, func(t *testing.T) {
			m, err := SyntheticModel(name)
			if err != nil {
				t.Fatal(err)
			}
			g, _, err := prover.Build(m.ONNX, m.Config)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := model.ParseInput(m.Input, g); err != nil {
				t.Fatal(err)
			}
			again, _, err := Synthetic(name)
			if err != nil || !bytes.Equal(again, m.ONNX) {
				t.Fatalf("synthetic model %s is not deterministic (err %v)", name, err)
			}
		})
	}
	if _, err := SyntheticModel("nope"); err == nil {
		t.Fatal("unknown model accepted")
	}
}

// Groth16 budgets: a Gemm with fixed weights costs no multiplication constraint, and the
// gadgets stay within the project's budgets.
func TestBudgetR1CS(t *testing.T) {
	b, err := MeasureBudget(circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	if b.FixedMACMul != 0 {
		t.Errorf("Gemm with fixed weights: %g multiplication constraints per MAC, want 0", b.FixedMACMul)
	}
	if b.PrivateMACMul != 1 {
		t.Errorf("Gemm with private weights: %g product constraints per MAC, want 1", b.PrivateMACMul)
	}
	for name, got := range map[string]float64{"relu": b.Relu, "rescale": b.Rescale, "rescale_relu": b.RescaleRelu} {
		if prev := previousBudget[name][0]; got > prev {
			t.Errorf("%s costs %.2f R1CS constraints per element, budget %g", name, got, prev)
		}
	}
}

func TestRunAndReports(t *testing.T) {
	if testing.Short() {
		t.Skip("proves a model")
	}
	rs, err := Run(context.Background(), Options{Models: []string{"mnist_mlp"}, Systems: []circuits.System{circuits.Groth16}, N: 1, Floor: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Err != "" || rs[0].ProveS <= 0 || rs[0].Floor == nil || rs[0].Floor.TotalS <= 0 || rs[0].ProofBytes <= 0 {
		t.Fatalf("unexpected result %+v", rs)
	}
	rep := &Report{Env: Environment("test"), Results: rs, N: 1}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, rs); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	buf.Reset()
	if err := WriteMarkdown(&buf, rep, "bench.svg", ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "mnist_mlp") {
		t.Fatal("markdown lacks the model")
	}
	buf.Reset()
	if err := WriteCSV(&buf, rs); err != nil || strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("CSV: %v\n%s", err, buf.String())
	}
}
