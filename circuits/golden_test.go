package circuits

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model/quant"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata golden files")

// TestGoldenConstraintCounts pins the circuit size of every shared example model, so
// any change in circuit size shows up in review. Regenerate with
// `go test ./circuits -run TestGoldenConstraintCounts -update` and explain the change.
func TestGoldenConstraintCounts(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("model,system,constraints,public_inputs,secret_inputs,internal_variables\n")
	for _, name := range sharedModels(t) {
		g, _ := loadShared(t, name)
		p, err := quant.Lower(g, quant.DefaultConfig())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, sys := range []System{Groth16, Plonk} {
			_, st, err := Compile(p, sys)
			if err != nil {
				t.Fatalf("%s %s: %v", name, sys, err)
			}
			fmt.Fprintf(&buf, "%s,%s,%d,%d,%d,%d\n", name, sys, st.Constraints, st.Public, st.Secret, st.Internal)
		}
	}
	path := filepath.Join("testdata", "constraints.csv")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("circuit sizes changed; if intended, run with -update and explain in the commit.\ngot:\n%s\nwant:\n%s", buf.String(), want)
	}
}
