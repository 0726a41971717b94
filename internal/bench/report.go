package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is a whole run: environment, results, budgets.
type Report struct {
	Env     Env       `json:"env"`
	Results []Result  `json:"results"`
	Budgets []*Budget `json:"budgets,omitempty"`
	// Caps used by the run.
	MaxConstraints      int `json:"max_constraints"`
	PlonkMaxConstraints int `json:"plonk_max_constraints"`
	N                   int `json:"n"`
}

func mb(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

func secs(s float64) string {
	switch {
	case s == 0:
		return "-"
	case s < 0.01:
		return fmt.Sprintf("%.4f", s)
	case s < 10:
		return fmt.Sprintf("%.3f", s)
	}
	return fmt.Sprintf("%.1f", s)
}

func ratio(r *Result) string {
	if x := r.FloorRatio(); x > 0 {
		return fmt.Sprintf("%.2f", x)
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(r *Result) string {
	switch {
	case r.Err != "":
		return "error: " + r.Err
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	}
	return "ok"
}

var tableHeader = []string{"model", "system", "constraints", "domain", "witness s", "compile s", "setup s", "prove s (median)", "verify s", "pk MiB", "proof B", "prove heap peak MiB", "maxrss MiB", "prove/floor", "load", "status"}

func tableRow(r *Result) []string {
	dom := "-"
	if r.Domain > 0 {
		dom = fmt.Sprintf("2^%d", int(math.Round(math.Log2(float64(r.Domain)))))
	}
	cons := "-"
	if r.Constraints > 0 {
		cons = strconv.Itoa(r.Constraints)
	}
	proof := "-"
	if r.ProofBytes > 0 {
		proof = strconv.FormatInt(r.ProofBytes, 10)
	}
	return []string{r.Model, r.System, cons, dom, secs(r.WitnessS), secs(r.CompileS), secs(r.SetupS), secs(r.ProveS), secs(r.VerifyS),
		mb(r.PKBytes), proof, mb(r.ProveHeapPeak), mb(r.MaxRSS), ratio(r), orDash(r.LoadAvg), status(r)}
}

// WriteTable prints the results as an aligned text table.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for i := range rs {
		fmt.Fprintln(tw, strings.Join(tableRow(&rs[i]), "\t"))
	}
	return tw.Flush()
}

// WriteCSV writes one row per result with raw numbers (seconds, bytes).
func WriteCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"model", "system", "constraints", "wires", "public_inputs", "domain", "witness_s", "compile_s", "setup_s", "prove_s", "prove_all_s", "verify_s",
		"pk_bytes", "vk_bytes", "proof_bytes", "prove_heap_peak_bytes", "maxrss_bytes", "floor_g1_msm_s", "floor_g2_msm_s", "floor_fft_s", "floor_s", "prove_over_floor", "skipped", "error"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, r := range rs {
		var all []string
		for _, x := range r.ProveAll {
			all = append(all, f(x))
		}
		fl := []string{"", "", "", "", ""}
		if r.Floor != nil {
			fl = []string{f(r.Floor.G1S), f(r.Floor.G2S), f(r.Floor.FFTS), f(r.Floor.TotalS), f(r.FloorRatio())}
		}
		row := []string{r.Model, r.System, strconv.Itoa(r.Constraints), strconv.Itoa(r.Wires), strconv.Itoa(r.Public), strconv.Itoa(r.Domain),
			f(r.WitnessS), f(r.CompileS), f(r.SetupS), f(r.ProveS), strings.Join(all, ";"), f(r.VerifyS),
			strconv.FormatInt(r.PKBytes, 10), strconv.FormatInt(r.VKBytes, 10), strconv.FormatInt(r.ProofBytes, 10),
			strconv.FormatInt(r.ProveHeapPeak, 10), strconv.FormatInt(r.MaxRSS, 10)}
		row = append(row, fl...)
		row = append(row, r.Skipped, r.Err)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole report.
func WriteJSON(w io.Writer, rep *Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rep)
}

// WriteSVG draws prove time against constraints, log-log, one series per system plus
// the Groth16 MSM+FFT floor.
func WriteSVG(w io.Writer, rs []Result) error {
	type pt struct {
		x, y  float64
		label string
	}
	series := []struct {
		name, color string
		dash        bool
		pts         []pt
	}{{name: "Groth16 prove", color: "#1f77b4"}, {name: "PLONK prove", color: "#ff7f0e"}, {name: "Groth16 MSM+FFT floor", color: "#555555", dash: true}}
	for _, r := range rs {
		if r.ProveS <= 0 || r.Constraints <= 0 {
			continue
		}
		i := 0
		if r.System == "plonk" {
			i = 1
		}
		series[i].pts = append(series[i].pts, pt{float64(r.Constraints), r.ProveS, r.Model})
		if r.Floor != nil {
			series[2].pts = append(series[2].pts, pt{float64(r.Constraints), r.Floor.TotalS, ""})
		}
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.pts {
			minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
			minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
		}
	}
	if math.IsInf(minX, 1) {
		minX, maxX, minY, maxY = 1, 10, 0.1, 1
	}
	lx0, lx1 := math.Floor(math.Log10(minX)), math.Ceil(math.Log10(maxX))
	ly0, ly1 := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if lx1 == lx0 {
		lx1++
	}
	if ly1 == ly0 {
		ly1++
	}
	const W, H, L, R, T, B = 760, 500, 70, 200, 30, 50
	px := func(x float64) float64 { return L + (math.Log10(x)-lx0)/(lx1-lx0)*(W-L-R) }
	py := func(y float64) float64 { return H - B - (math.Log10(y)-ly0)/(ly1-ly0)*(H-T-B) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&sb, `<text x="%d" y="18" font-size="14">zkml prove time vs constraints (log-log)</text>`+"\n", L)
	for e := lx0; e <= lx1; e++ {
		x := px(math.Pow(10, e))
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">1e%d</text>`+"\n", x, T, x, H-B, x, H-B+16, int(e))
	}
	for e := ly0; e <= ly1; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g s</text>`+"\n", L, y, W-R, y, L-6, y+4, math.Pow(10, e))
	}
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", L, T, W-L-R, H-T-B)
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">constraints (R1CS for Groth16, SCS for PLONK)</text>`+"\n", L+(W-L-R)/2, H-12)
	fmt.Fprintf(&sb, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">prove time (s)</text>`+"\n", T+(H-T-B)/2)
	for i, s := range series {
		pts := s.pts
		sortPts := func() {
			for a := 1; a < len(pts); a++ {
				for b := a; b > 0 && pts[b].x < pts[b-1].x; b-- {
					pts[b], pts[b-1] = pts[b-1], pts[b]
				}
			}
		}
		sortPts()
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="5 4"`
		}
		if len(pts) > 1 {
			var path []string
			for _, p := range pts {
				path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
			}
			fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>`+"\n", strings.Join(path, " "), s.color, dash)
		}
		for _, p := range pts {
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %d constraints, %.3f s</title></circle>`+"\n", px(p.x), py(p.y), s.color, p.label, s.name, int(p.x), p.y)
		}
		ly := T + 20 + 20*i
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`+"\n", W-R+12, ly, W-R+36, ly, s.color, dash, W-R+42, ly+4, s.name)
	}
	sb.WriteString("</svg>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}
