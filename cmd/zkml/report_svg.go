package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zkml/zkml/circuits"
)

// SVG layout of the compile report, in pixels.
const (
	svgLabelWidth = 260 // layer names
	svgBarWidth   = 320 // the longest bar of a column
	svgValueWidth = 90  // the figure after a bar
	svgRow        = 18
	svgTitle      = 28
)

// svgColumn is one bar column of the picture: a per-layer figure and its colour.
type svgColumn struct {
	title  string
	colour string
	value  func(l circuits.LayerStats) int
	// deferred is the column's figure on the row of the arguments added after the
	// layers; -1 when the column has none.
	deferred func(s *circuits.Stats) int
}

var svgColumns = []svgColumn{
	{"constraints", "#3b6ea5", circuits.LayerStats.LayerConstraints, (*circuits.Stats).ArgumentConstraints},
	{"range-checked bits", "#d9822b", func(l circuits.LayerStats) int { return l.RangeCheckBits }, func(*circuits.Stats) int { return -1 }},
	{"lookups", "#3a9a5b", func(l circuits.LayerStats) int { return l.Lookups }, func(*circuits.Stats) int { return -1 }},
}

// writeReportSVG draws the per-layer breakdown of each circuit (constraints,
// range-checked bits, lookups) as horizontal bars, one panel per proving system, one
// row per layer plus the range-check and lookup arguments added after the layers.
// Each column has its own linear scale, shared by the panels, so systems compare.
func writeReportSVG(w io.Writer, modelName string, stats []*circuits.Stats) error {
	colMax := make([]int, len(svgColumns))
	rows := 0
	for _, s := range stats {
		rows += len(s.Layers) + 3 // panel title, header, deferred row
		for i, c := range svgColumns {
			for _, l := range s.Layers {
				colMax[i] = max(colMax[i], c.value(l))
			}
			colMax[i] = max(colMax[i], c.deferred(s))
		}
	}
	colWidth := svgBarWidth + svgValueWidth
	width := svgLabelWidth + len(svgColumns)*colWidth + 10
	height := svgTitle + rows*svgRow + 10

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(bw, `<text x="5" y="18" font-size="15" font-weight="bold">%s: circuit size by layer</text>`+"\n", escapeXML(modelName))
	y := svgTitle
	for _, s := range stats {
		y += svgRow
		fmt.Fprintf(bw, `<text x="5" y="%d" font-weight="bold">%s (%s): %d constraints, %d public inputs</text>`+"\n",
			y-4, escapeXML(s.System), escapeXML(s.Constraint), s.Constraints, s.PublicInputs())
		y += svgRow
		for i, c := range svgColumns {
			fmt.Fprintf(bw, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", svgLabelWidth+i*colWidth, y-4, c.colour, c.title)
		}
		row := func(label string, values []int) {
			y += svgRow
			fmt.Fprintf(bw, `<text x="5" y="%d">%s</text>`+"\n", y-5, escapeXML(label))
			for i, v := range values {
				if v < 0 {
					continue
				}
				x := svgLabelWidth + i*colWidth
				n := 0
				if colMax[i] > 0 {
					n = int(float64(v) / float64(colMax[i]) * svgBarWidth)
				}
				if v > 0 {
					n = max(n, 1) // a non-zero figure is never invisible
				}
				fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`+"\n",
					x, y-svgRow+3, n, svgRow-6, svgColumns[i].colour, escapeXML(label), v)
				fmt.Fprintf(bw, `<text x="%d" y="%d">%d</text>`+"\n", x+n+4, y-5, v)
			}
		}
		for _, l := range s.Layers {
			values := make([]int, len(svgColumns))
			for i, c := range svgColumns {
				values[i] = c.value(l)
			}
			row(l.Name+" ("+l.Op+")", values)
		}
		values := make([]int, len(svgColumns))
		for i, c := range svgColumns {
			values[i] = c.deferred(s)
		}
		row("(range-check and lookup arguments)", values)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func escapeXML(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// writeReportSVGFile writes the picture of writeReportSVG to path, the stats in the
// order of systems.
func writeReportSVGFile(path, modelName string, all map[string]*circuits.Stats, systems []circuits.System) error {
	stats := make([]*circuits.Stats, 0, len(systems))
	for _, sys := range systems {
		stats = append(stats, all[string(sys)])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = writeReportSVG(f, modelName, stats)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compile --svg: %w", err)
	}
	return nil
}
