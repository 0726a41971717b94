package bench

import (
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// ArchRow is one architecture's structural estimate (zkml bench --arch), with, when
// measured, the real lowering and Groth16 compile of the same model.
type ArchRow struct {
	Arch     string         `json:"arch"`
	Size     int            `json:"size"`
	Div      int            `json:"div"`
	Estimate *GraphEstimate `json:"estimate"`
	// LoadS is the time to load the model (model.Load: decoding, folding and the
	// float evaluation that infers every shape); EstimateS the time EstimateGraph
	// took after that (no lowering).
	LoadS     float64 `json:"load_s"`
	EstimateS float64 `json:"estimate_s"`
	// Segments is how many consecutive groups of layers the Groth16 estimate splits
	// into so that each fits SegmentBudget (see Segments).
	Segments      int          `json:"segments"`
	SegmentBudget int64        `json:"segment_budget"`
	Measured      *ArchMeasure `json:"measured,omitempty"`
}

// ArchMeasure is the real thing: quant.Lower and circuits.Compile (Groth16).
type ArchMeasure struct {
	LowerS          float64 `json:"lower_s"`
	LowerHeapPeak   int64   `json:"lower_heap_peak"`
	Terms           int64   `json:"terms"`
	ProgramEst      int64   `json:"program_estimate_constraints"`
	ProgramEstMem   int64   `json:"program_estimate_memory"`
	Constraints     int     `json:"constraints"`
	CompileS        float64 `json:"compile_s"`
	CompileHeapPeak int64   `json:"compile_heap_peak"`
	MaxRSS          int64   `json:"maxrss"`
}

// Segments is the number of segments a greedy split of e's layers (in graph order)
// into consecutive groups needs so that each group's Groth16 memory estimate (the
// EstimateProgram formula on the group: base, the domain of its constraints, its
// terms' bytes) stays within budget; a layer over the budget on its own counts as
// the number of budget-sized parts its memory beyond the base needs (a split of its
// outputs).
func Segments(e *GraphEstimate, budget int64) int {
	avail := budget - EstimateBaseMemory
	if avail <= 0 {
		return 0
	}
	mem := func(cons, termBytes int64) int64 {
		d := int64(1) << bits.Len64(uint64(max(cons, 2)-1))
		return EstimateBaseMemory + EstimateGroth16BytesPerSlot*d + termBytes
	}
	n := 0
	var cons, tb int64
	for _, nd := range e.Nodes {
		ntb := nd.Bytes - EstimateGroth16BytesPerSlot*nd.R1CS
		if mem(nd.R1CS, ntb) > budget {
			if cons > 0 {
				n++
				cons, tb = 0, 0
			}
			n += int((mem(nd.R1CS, ntb) - EstimateBaseMemory + avail - 1) / avail)
			continue
		}
		if cons > 0 && mem(cons+nd.R1CS, tb+ntb) > budget {
			n++
			cons, tb = 0, 0
		}
		cons += nd.R1CS
		tb += ntb
	}
	if cons > 0 {
		n++
	}
	return n
}

// EstimateArch builds a, loads it and estimates it at cfg.
func EstimateArch(a onnxgen.Arch, cfg quant.Config, segmentBudget int64) (*ArchRow, []byte, error) {
	b, _, _, err := a.Build()
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	g, err := model.Load(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.Name(), err)
	}
	load := time.Since(start)
	start = time.Now()
	e, err := EstimateGraph(g, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.Name(), err)
	}
	row := &ArchRow{Arch: a.Name(), Estimate: e, LoadS: load.Seconds(), EstimateS: time.Since(start).Seconds(), SegmentBudget: segmentBudget,
		Segments: Segments(e, segmentBudget)}
	if len(g.Inputs) > 0 && len(g.Inputs[0].Shape) == 4 {
		row.Size = g.Inputs[0].Shape[3]
	}
	return row, b, nil
}

// MeasureArch lowers and compiles (Groth16) the model onnxBytes, recording times and
// Go heap peaks (sampled every 2 ms), and the program's own estimate.
func MeasureArch(onnxBytes []byte, cfg quant.Config) (*ArchMeasure, error) {
	m := &ArchMeasure{}
	runtime.GC()
	start := time.Now()
	stop := SampleHeap(&m.LowerHeapPeak)
	g, err := model.Load(onnxBytes)
	if err != nil {
		stop()
		return nil, err
	}
	p, err := quant.Lower(g, cfg)
	stop()
	if err != nil {
		return nil, err
	}
	m.LowerS = time.Since(start).Seconds()
	pe, err := EstimateProgram(p, circuits.Groth16)
	if err != nil {
		return nil, err
	}
	m.Terms, m.ProgramEst, m.ProgramEstMem = pe.Terms, pe.Constraints, pe.MemoryBytes
	runtime.GC()
	start = time.Now()
	stop = SampleHeap(&m.CompileHeapPeak)
	_, st, err := circuits.Compile(p, circuits.Groth16)
	stop()
	if err != nil {
		return nil, err
	}
	m.CompileS = time.Since(start).Seconds()
	m.Constraints = st.Constraints
	m.MaxRSS = maxRSS()
	return m, nil
}

func mib(b int64) string {
	if b >= 10<<30 {
		return fmt.Sprintf("%.0f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteArchTable prints the architectures' estimates as a markdown table: MACs (of
// Conv, Gemm and MatMul, padding taps excluded), params, activations, estimated
// constraints in both systems and per MAC, estimated Groth16 compile bytes per MAC,
// estimated peak memory in both systems, and the segments a per-process budget needs.
// Rows that were measured get a second table: the lowering and compile next to the
// estimate.
func WriteArchTable(w io.Writer, rows []*ArchRow) error {
	if len(rows) == 0 {
		return nil
	}
	seg := mib(rows[0].SegmentBudget)
	fmt.Fprintf(w, "| model | MACs | params | activations | R1CS (Groth16) | SCS (PLONK) | R1CS/MAC | SCS/MAC | compile B/MAC | peak Groth16 | peak PLONK | segments (%s) | load time | estimate time |\n", seg)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		e := r.Estimate
		macs := float64(max(e.MACs, 1))
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.3f | %.3f | %.0f | %s | %s | %d | %.1f s | %.1f s |\n", r.Arch,
			thousands(e.MACs), thousands(e.Params), thousands(e.Activations), thousands(e.Groth16.Constraints), thousands(e.Plonk.Constraints),
			float64(e.Groth16.Constraints)/macs, float64(e.Plonk.Constraints)/macs, float64(e.Groth16.MemoryBytes)/macs,
			mib(e.Groth16.MemoryBytes), mib(e.Plonk.MemoryBytes), r.Segments, r.LoadS, r.EstimateS)
	}
	var measured []*ArchRow
	for _, r := range rows {
		if r.Measured != nil {
			measured = append(measured, r)
		}
	}
	if len(measured) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| model | terms (lowered) | R1CS estimate (structural) | R1CS estimate (program) | R1CS compiled | memory estimate (structural) | memory estimate (program) | lower time | lower heap peak | compile time | compile heap peak | maxrss |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range measured {
		m, e := r.Measured, r.Estimate
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.1f s | %s | %.1f s | %s | %s |\n", r.Arch,
			thousands(m.Terms), thousands(e.Groth16.Constraints), thousands(m.ProgramEst), thousands(int64(m.Constraints)),
			mib(e.Groth16.MemoryBytes), mib(m.ProgramEstMem), m.LowerS, mib(m.LowerHeapPeak), m.CompileS, mib(m.CompileHeapPeak), mib(m.MaxRSS))
	}
	return nil
}

// WriteLayerTable prints e's per-node breakdown.
func WriteLayerTable(w io.Writer, name string, e *GraphEstimate) error {
	fmt.Fprintf(w, "%s:\n", name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\top\tshape\tMACs\tparams\tactivations\tR1CS\tSCS\tMiB (Groth16)\t")
	for _, n := range e.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t\n", n.Name, n.Op, n.Shape, n.MACs, n.Params, n.Activations, n.R1CS, n.SCS, n.Bytes>>20)
	}
	return tw.Flush()
}
