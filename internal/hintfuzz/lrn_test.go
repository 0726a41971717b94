package hintfuzz

import (
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
)

// TestLRNHints runs the hint fuzzer on LRN's generated node tests (test_lrn,
// test_lrn_default in testdata/onnx-node-generated): the square sums' products, the
// rescale's division, the strict table lookup and the final product. No perturbation
// may solve with public values other than the integer reference's.
func TestLRNHints(t *testing.T) {
	quiet(t)
	cases, err := NodeTests("../../testdata/onnx-node-generated")
	if err != nil {
		t.Fatal(err)
	}
	b := budget{solved: 300_000, min: 8, max: 150, sites: 3}
	if testing.Short() {
		b = budget{solved: 100_000, min: 4, max: 50, sites: 2}
	}
	total, n := newTally(), 0
	for _, c := range cases {
		if !strings.HasPrefix(c.Name, "test_lrn") {
			continue
		}
		n++
		tg, err := Compile(c, circuits.Groth16)
		if err != nil {
			t.Fatal(err)
		}
		total.add(fuzzTarget(t, tg, b))
	}
	if n != 2 {
		t.Fatalf("%d LRN node tests, want 2", n)
	}
	report(t, "LRN hint fuzzer", total)
	if total.tried == 0 {
		t.Fatal("no perturbation was tried")
	}
}
