package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/srs"
	"github.com/zkml/zkml/verifier"
)

// Sharded models (compile --shard): the program is split into segments that each fit
// the memory budget (and --segment-constraints), each compiled, set up and proved as
// its own circuit; a proof is a bundle of segment proofs (prover/shard).

// maxPlanBytes bounds a recorded plan read by compile --plan (SqueezeNet 1.0's at full
// width, 99 segments: 87 KB).
const maxPlanBytes = 16 << 20

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over the %d byte limit", path, limit)
	}
	return b, nil
}

// compileSharded splits m's program under limits, records the plan and compiles each
// segment in turn (one segment's circuit in memory at a time), then prints the plan.
// With cuts, it cuts there instead, and with planPath it splits as that recorded plan
// does (each segment is still checked against limits).
func compileSharded(cmd *cobra.Command, m *prover.Model, syss []circuits.System, limits bench.Limits, cuts []int, planPath string, asJSON bool) error {
	errw, out := cmd.ErrOrStderr(), cmd.OutOrStdout()
	if cuts != nil && planPath != "" {
		return fmt.Errorf("--cuts and --plan both say where to cut: give one")
	}
	pl, err := step(errw, "split", func() (*shard.Plan, error) {
		if cuts != nil {
			return shard.Split(m.Program, cuts)
		}
		if planPath != "" {
			rec, err := readBounded(planPath, maxPlanBytes)
			if err != nil {
				return nil, err
			}
			pl, err := shard.Rebuild(m.Program, m.ID, rec)
			if err != nil {
				return nil, fmt.Errorf("--plan %s: %w", planPath, err)
			}
			return pl, nil
		}
		return shard.SplitBudget(m.Program, syss, limits)
	})
	if err != nil {
		return err
	}
	if err := shard.Save(m, pl); err != nil {
		return err
	}
	type row struct {
		Segment     int            `json:"segment"`
		FirstLayer  string         `json:"first_layer"`
		LastLayer   string         `json:"last_layer"`
		Layers      [2]int         `json:"layers"`
		In          int            `json:"boundary_in"`
		Out         int            `json:"boundary_out"`
		From        []int          `json:"in_from,omitempty"`
		To          []int          `json:"out_to,omitempty"`
		ID          string         `json:"segment_id"`
		Estimates   map[string]any `json:"estimates"`
		Constraints map[string]int `json:"constraints"`
	}
	var rows []row
	for i, s := range pl.Segments {
		r := row{Segment: i, FirstLayer: pl.Program.Layers[s.First].Name, LastLayer: pl.Program.Layers[s.End-1].Name, Layers: [2]int{s.First, s.End},
			In: len(s.In), Out: len(s.Out), From: s.From, To: s.To, ID: s.ID, Estimates: map[string]any{}, Constraints: map[string]int{}}
		for _, sys := range syss {
			e, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				return err
			}
			r.Estimates[string(sys)] = e
			if err := limits.Check(e); err != nil {
				return fmt.Errorf("segment %d: %w", i, err)
			}
			st, err := step(errw, fmt.Sprintf("compile %s segment %d", sys, i), func() (*circuits.Stats, error) { return shard.Dir{M: m, Sys: sys}.Compile(pl, i) })
			if err != nil {
				return err
			}
			r.Constraints[string(sys)] = st.Constraints
		}
		rows = append(rows, r)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"model_id": m.ID, "dir": m.Dir, "plan_id": pl.ID, "splits": pl.Splits, "segments": rows})
	}
	fmt.Fprintf(out, "model %s\nmodel ID %s (sha256 of the quantized program)\nsharded into %d segments, plan ID %s\n", m.Dir, m.ID, len(pl.Segments), pl.ID)
	for _, sp := range pl.Splits {
		fmt.Fprintf(out, "split layers [%d, %d) (%s..%s) into %d bands of output rows (layer indices below are of the split program)\n",
			sp.Layer, sp.Layer+sp.Count, m.Program.Layers[sp.Layer].Name, m.Program.Layers[sp.Layer+sp.Count-1].Name, sp.Bands)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "segment\tlayers\tfrom\tto\tin\tout")
	for _, sys := range syss {
		fmt.Fprintf(tw, "\t%s constraints\testimate\tdomain\tmemory", sys)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t[%d, %d)\t%s\t%s\t%d%s\t%d%s", r.Segment, r.Layers[0], r.Layers[1], r.FirstLayer, r.LastLayer, r.In, peers(r.From), r.Out, peers(r.To))
		for _, sys := range syss {
			e := r.Estimates[string(sys)].(*bench.Estimate)
			fmt.Fprintf(tw, "\t%d\t%d\t2^%d\t%d MiB", r.Constraints[string(sys)], e.Constraints, bits.Len64(uint64(e.Domain))-1, e.MemoryBytes>>20)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "in/out: the segment's boundary tensors and (in parentheses) the segments they come from / go to: one group per such segment, bound by a Poseidon2 commitment shared by the two")
	return nil
}

// peers formats the segments of a segment's boundary groups: " (0,2)", "" for none.
func peers(segs []int) string {
	if len(segs) == 0 {
		return ""
	}
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = fmt.Sprint(s)
	}
	return " (" + strings.Join(parts, ",") + ")"
}

// printEstimates prints the whole program's estimates (compile --shard: the segments,
// not the whole, must fit the budget).
func printEstimates(p *quant.Program, syss []circuits.System, w io.Writer) error {
	for _, sys := range syss {
		e, err := bench.EstimateProgram(p, sys)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "estimate %s (whole model, unsharded): at most %d constraints, domain 2^%d, %d MiB\n",
			sys, e.Constraints, bits.Len64(uint64(e.Domain))-1, e.MemoryBytes>>20)
	}
	return nil
}

// checkSegments refuses a sharded model one of whose segments is over the budget.
func checkSegments(budget *memoryBudget, pl *shard.Plan, syss []circuits.System) error {
	for _, s := range pl.Segments {
		if err := budget.check(s.Program, syss, nil); err != nil {
			return fmt.Errorf("segment %d: %w", s.Index, err)
		}
	}
	return nil
}

// setupSharded compiles (where missing) and sets up each segment in turn: the
// development setup, or with ptau (`setup --srs FILE.ptau`) each segment's PLONK keys
// on the public SRS (reproducible by anyone, nothing to trust beyond the Powers of Tau
// ceremony). The bundle's provenance is recorded as the model's. With resume, a
// segment whose keys were already made for its stored circuit by the same kind of
// setup (shard.Dir.HasKeys) keeps them: a setup that stopped part way goes on where
// it stopped.
func setupSharded(cmd *cobra.Command, m *prover.Model, syss []circuits.System, budget *memoryBudget, ptau, cacheFlag string, resume bool) error {
	var cache string
	want := &prover.Provenance{Trust: prover.TrustDevelopment}
	if ptau != "" {
		var err error
		if cache, err = srsCache(cacheFlag); err != nil {
			return err
		}
		if resume {
			h, err := srs.FileHash(ptau)
			if err != nil {
				return err
			}
			want = &prover.Provenance{Trust: prover.TrustUniversalSRS, Ptau: &prover.PtauInfo{BLAKE2b: h}}
		}
	}
	pl, err := shard.Load(m)
	if err != nil {
		return err
	}
	if err := checkSegments(budget, pl, syss); err != nil {
		return err
	}
	if ptau == "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", prover.DevSetupWarning)
	}
	for _, sys := range syss {
		if ptau != "" && sys != circuits.Plonk {
			return fmt.Errorf("--srs makes PLONK keys; Groth16 keys of sharded models come from the development setup only (a per-segment ceremony is not supported yet)")
		}
		d := shard.Dir{M: m, Sys: sys}
		kept := 0
		for i := range pl.Segments {
			if resume && d.HasKeys(i, want) {
				kept++
				continue
			}
			if !d.HasCircuit(i) {
				if _, err := step(cmd.ErrOrStderr(), fmt.Sprintf("compile %s segment %d", sys, i), func() (*circuits.Stats, error) { return d.Compile(pl, i) }); err != nil {
					return err
				}
			}
			what, setup := fmt.Sprintf("setup %s segment %d", sys, i), func() error { return d.Setup(i) }
			if ptau != "" {
				what, setup = what+" (public SRS)", func() error { return d.SetupUniversal(i, ptau, cache) }
			}
			if _, err := step(cmd.ErrOrStderr(), what, func() (struct{}, error) { return struct{}{}, setup() }); err != nil {
				return err
			}
		}
		own := 0
		for i, j := range d.SharedKeys(len(pl.Segments)) {
			if j == i {
				own++
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d segments, %d distinct circuits set up (segments with identical circuits share keys)\n", sys, len(pl.Segments), own)
		if resume {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: kept the keys of %d of %d segments (made for their circuits by an earlier setup; --resume)\n", sys, kept, len(pl.Segments))
		}
		if err := d.RecordTrust(pl); err != nil {
			return err
		}
		if ptau != "" {
			printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
		}
	}
	return nil
}

// proveSharded proves a bundle, segment after segment, and writes it into the model
// directory.
// Each segment proof is stored as soon as it is made; with resume, stored proofs that
// prove their segment on this inference (shard.Reusable) are used instead of proving
// it again.
func proveSharded(cmd *cobra.Command, m *prover.Model, sys circuits.System, in []*model.Tensor, budget *memoryBudget, resume bool) error {
	pl, err := shard.Load(m)
	if err != nil {
		return err
	}
	if err := checkSegments(budget, pl, []circuits.System{sys}); err != nil {
		return err
	}
	want, err := m.Graph.Eval(in)
	if err != nil {
		return err
	}
	qi, err := m.Program.QuantizeInputs(in)
	if err != nil {
		return err
	}
	d := shard.Dir{M: m, Sys: sys}
	cp := &shard.Checkpoint{Save: d.SaveProof}
	if resume {
		cp.Saved = d.SavedProof
	}
	b, err := step(cmd.ErrOrStderr(), fmt.Sprintf("prove %s, %d segments", sys, len(pl.Segments)), func() (*shard.Bundle, error) {
		return shard.ProveWith(pl, m.Program, sys, d, qi, cp)
	})
	if err != nil {
		return err
	}
	if resume {
		fmt.Fprintf(cmd.ErrOrStderr(), "reused the proofs of %d of %d segments from an earlier prove (--resume)\n", cp.Reused, len(pl.Segments))
	}
	bj, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := m.WriteArtifact(shard.BundleFile(sys), bj); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	p := &prover.Proof{System: sys, Outputs: b.Outputs, IntOutputs: b.IntOutputs, Device: prover.CPU}
	for _, s := range b.Segments {
		p.ProveSeconds += s.ProveSeconds
		fmt.Fprintf(out, "segment %d: proved in %.2fs; boundary commitments in %s out %s\n", s.Index, s.ProveSeconds, boundaryLinks(s.InCommitments, "from"), boundaryLinks(s.OutCommitments, "to"))
	}
	fmt.Fprintf(out, "bundle of %d segment proofs (plan %s) written to %s\n", len(b.Segments), pl.ID, shard.BundleFile(sys))
	return printOutputs(out, m, p, want)
}

// boundaryLinks formats a segment's boundary commitments: "-" for none, else each with the
// segment of its pair ("from 0: 123...").
func boundaryLinks(ls []shard.Link, dir string) string {
	if len(ls) == 0 {
		return "-"
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s %d: %s", dir, l.Segment, l.Commitment)
	}
	return strings.Join(parts, ", ")
}

// verifySharded verifies a bundle (default: the model directory's last one).
func verifySharded(cmd *cobra.Command, m *prover.Model, sys circuits.System, path string) error {
	pl, err := shard.Load(m)
	if err != nil {
		return err
	}
	var raw []byte
	if path != "" {
		raw, err = os.ReadFile(path)
	} else {
		raw, err = m.ReadArtifact(shard.BundleFile(sys))
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	var b shard.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		fmt.Fprintf(out, "INVALID: bundle: %v\n", err)
		return exitError(2)
	}
	v, err := shard.Verify(pl, sys, shard.Dir{M: m, Sys: sys}.VerifyingKey, &b)
	if err != nil {
		fmt.Fprintf(out, "INVALID: %v\n", err)
		return exitError(2)
	}
	fmt.Fprintf(out, "valid %s bundle of %d segment proofs for model %s (plan %s)\n", sys, len(pl.Segments), m.ID, pl.ID)
	printVerified(out, v)
	printTrust(out, cmd.ErrOrStderr(), m, sys)
	return nil
}

func printVerified(w io.Writer, v *shard.Verified) {
	if v.Outputs != nil {
		fmt.Fprintf(w, "proven outputs (integers): %v\n", v.Outputs)
	}
	for _, k := range []string{"inputs", "outputs"} {
		if c, ok := v.Commitments[k]; ok {
			fmt.Fprintf(w, "%s commitment (Poseidon2): %s\n", k, c)
		}
	}
}

// exportSharded is export-verifier for a sharded model: each segment's ZKMLVerifier
// (segmentI/ZKMLVerifier.sol, deployed with modelId = the segment ID) and the
// ZKMLBundleVerifier that calls them, its constructor arguments in its header.
func exportSharded(cmd *cobra.Command, m *prover.Model, sys circuits.System, out string) error {
	pl, err := shard.Load(m)
	if err != nil {
		return err
	}
	printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
	dev := m.Provenance(sys).Trust == prover.TrustDevelopment
	d := shard.Dir{M: m, Sys: sys}
	var wrote []string
	for i, s := range pl.Segments {
		vk, err := d.VerifyingKey(i)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if dev {
			buf.WriteString(prover.DevVerifierBanner)
		}
		if err := shard.ExportSegmentVerifier(&buf, s, vk); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		path := filepath.Join(out, fmt.Sprintf("segment%d", i), verifier.WrapperContract+".sol")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return err
		}
		wrote = append(wrote, path)
	}
	var buf bytes.Buffer
	shard.BundleVerifierSource(&buf, pl, sys, dev, "segmentI/"+verifier.WrapperContract+".sol", "zkml calldata -d DIR")
	path := filepath.Join(out, shard.BundleContract+".sol")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	for _, p := range append(wrote, path) {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "deploy each segment's %s (modelId = its segment ID), then %s with the constructor arguments in its header\n", verifier.WrapperContract, shard.BundleContract)
	return nil
}

// bundleCalldata is calldata for a sharded model: ZKMLBundleVerifier.verify(proofs,
// publicInputs) of its last bundle, or of the bundle file at path.
func bundleCalldata(m *prover.Model, sys circuits.System, path string) ([]byte, error) {
	var raw []byte
	var err error
	if path != "" {
		raw, err = os.ReadFile(path)
	} else {
		raw, err = os.ReadFile(filepath.Join(m.Dir, shard.BundleFile(sys)))
	}
	if err != nil {
		return nil, err
	}
	var b shard.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return shard.Calldata(&b)
}
