package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
)

// svgBar is one bar of the picture: its tooltip and width.
type svgBar struct {
	Title string
	Width int
}

// parseSVG checks that b is well-formed XML and returns its bars.
func parseSVG(t *testing.T, b []byte) []svgBar {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var bars []svgBar
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return bars
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, b)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "rect" {
			continue
		}
		var r struct {
			Width int    `xml:"width,attr"`
			Title string `xml:"title"`
		}
		if err := dec.DecodeElement(&r, &se); err != nil {
			t.Fatal(err)
		}
		if r.Title != "" {
			bars = append(bars, svgBar{r.Title, r.Width})
		}
	}
}

func TestReportSVG(t *testing.T) {
	stats := []*circuits.Stats{
		{System: "groth16", Constraint: "r1cs", Constraints: 1300, Public: 4, Deferred: 300, Layers: []circuits.LayerStats{
			{Name: "fc<1>&", Op: "Gemm", Constraints: 1000, RangeCheckBits: 48, Lookups: 0},
			{Name: "relu", Op: "Relu", Constraints: 0, RangeCheckBits: 96, Lookups: 3},
		}},
		{System: "plonk", Constraint: "scs", Constraints: 2500, Public: 4, Deferred: 500, Layers: []circuits.LayerStats{
			{Name: "fc<1>&", Op: "Gemm", Constraints: 2000, RangeCheckBits: 48},
			{Name: "relu", Op: "Relu", Constraints: 1, RangeCheckBits: 96, Lookups: 3},
		}},
	}
	var buf bytes.Buffer
	if err := writeReportSVG(&buf, "net<work>.onnx", stats); err != nil {
		t.Fatal(err)
	}
	bars := map[string][]int{}
	for _, b := range parseSVG(t, buf.Bytes()) {
		bars[b.Title] = append(bars[b.Title], b.Width)
	}
	// Bars in order: per panel, per row, per column (constraints, bits, lookups).
	tests := []struct {
		title string
		want  []int
	}{
		{"fc<1>& (Gemm): 1000", []int{svgBarWidth / 2}},                     // half the largest constraints figure
		{"fc<1>& (Gemm): 48", []int{svgBarWidth / 2, svgBarWidth / 2}},      // bits, in both panels
		{"relu (Relu): 96", []int{svgBarWidth, svgBarWidth}},                // the largest bits figure
		{"relu (Relu): 1", []int{1}},                                        // never invisible
		{"fc<1>& (Gemm): 2000", []int{svgBarWidth}},                         // the largest constraints figure
		{"(range-check and lookup arguments): 500", []int{svgBarWidth / 4}}, // deferred, same scale
		{"relu (Relu): 3", []int{svgBarWidth, svgBarWidth}},                 // lookups
	}
	for _, tc := range tests {
		if got := bars[tc.title]; !slices.Equal(got, tc.want) {
			t.Errorf("bars %q have widths %v, want %v", tc.title, got, tc.want)
		}
	}
	if !strings.Contains(buf.String(), "net&lt;work&gt;.onnx") {
		t.Error("the model name is not escaped in the title")
	}
}

// TestCompileSVG checks `compile --svg`: the file is well-formed and has a bar for
// every layer of every circuit, with the figures of the JSON report.
func TestCompileSVG(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_mlp", "network.onnx")
	svg := filepath.Join(t.TempDir(), "report.svg")
	out, err := run(t, "compile", model, "-d", filepath.Join(t.TempDir(), "m.zkml"), "--json", "--svg", svg)
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	var rep struct {
		Circuits map[string]*circuits.Stats `json:"circuits"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	titles := map[string]bool{}
	for _, bar := range parseSVG(t, b) {
		titles[bar.Title] = true
	}
	for sys, st := range rep.Circuits {
		if len(st.Layers) == 0 {
			t.Fatalf("%s report has no layers", sys)
		}
		for _, l := range st.Layers {
			for _, want := range []string{l.Name + " (" + l.Op + "): " + strconv.Itoa(l.Constraints), l.Name + " (" + l.Op + "): " + strconv.Itoa(l.RangeCheckBits)} {
				if !titles[want] {
					t.Errorf("%s: no bar %q in the SVG", sys, want)
				}
			}
		}
	}
}
