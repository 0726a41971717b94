package shard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// A sharded model directory is a model directory (prover.Model: the source model,
// settings and manifest; its model ID is the whole program's) with the plan in
// PlanFile and, per segment i and system, segment<i>.circuit.<system>.bin,
// segment<i>.stats.<system>.json and segment<i>.keys.<system>.json (which segment's
// segment<j>.pk.<system>.bin and segment<j>.vk.<system>.bin hold its keys, and the
// circuit they were made for: segments whose circuits are identical, as the inner
// bands of a split layer are, share one setup), all checksummed in the manifest. The
// last bundle proved with a system is bundle.<system>.json.
const PlanFile = "shard.json"

// Sharded reports whether m is a sharded model directory.
func Sharded(m *prover.Model) bool { return m.HasArtifact(PlanFile) }

// Save records pl in m's directory.
func Save(m *prover.Model, pl *Plan) error {
	if pl.ModelID != m.ID {
		return fmt.Errorf("shard: plan is for model %s, the directory holds %s", pl.ModelID, m.ID)
	}
	b, err := json.MarshalIndent(pl, "", "  ")
	if err != nil {
		return err
	}
	return m.WriteArtifact(PlanFile, b)
}

// Load reads m's plan and rebuilds its segments from m's program at the recorded
// cuts; a plan whose ID the rebuilt segments do not reproduce is refused.
func Load(m *prover.Model) (*Plan, error) {
	b, err := m.ReadArtifact(PlanFile)
	if err != nil {
		return nil, err
	}
	pl, err := Rebuild(m.Program, m.ID, b)
	if err != nil && !errors.Is(err, ErrBadCut) {
		return nil, fmt.Errorf("%w: %s: %v", prover.ErrCorrupt, PlanFile, err)
	}
	return pl, err
}

// Rebuild splits p (whose model ID is modelID) by a recorded plan (a sharded model
// directory's PlanFile: its splits and segments), so that a plan found once, which
// for a full-size network takes the planner minutes to hours, can be used again: by
// another directory of the same model, or after a change of zkml that keeps the
// program. The rebuilt plan must reproduce the recorded plan ID, which binds the model
// ID, every segment and every boundary pair.
func Rebuild(p *quant.Program, modelID string, record []byte) (*Plan, error) {
	var rec Plan
	if err := json.Unmarshal(record, &rec); err != nil {
		return nil, fmt.Errorf("plan: %v", err)
	}
	if len(rec.Segments) == 0 {
		return nil, fmt.Errorf("plan has no segments")
	}
	if rec.ModelID != modelID {
		return nil, fmt.Errorf("plan is for model %s, not %s (another model, or its settings differ)", rec.ModelID, modelID)
	}
	pl, err := SplitWith(p, rec.Splits, rec.Cuts())
	if err != nil {
		return nil, err
	}
	if pl.ID != rec.ID || pl.ModelID != modelID {
		return nil, fmt.Errorf("plan %s: the model splits into %s at its splits and cuts (made by another zkml version?)", rec.ID, pl.ID)
	}
	return pl, nil
}

func segmentFile(i int, kind string, sys circuits.System) string {
	return fmt.Sprintf("segment%d.%s.%s.bin", i, kind, sys)
}

// Dir gives a sharded model directory's segment circuits and keys for one system,
// read from disk on every call (a prover holds one segment at a time).
type Dir struct {
	M   *prover.Model
	Sys circuits.System
}

var _ Keys = Dir{}

func (d Dir) read(i int, kind string, obj io.ReaderFrom) error {
	b, err := d.M.ReadArtifact(segmentFile(i, kind, d.Sys))
	if err != nil {
		return err
	}
	if _, err := obj.ReadFrom(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%w: segment %d %s: %v", prover.ErrCorrupt, i, kind, err)
	}
	return nil
}

// Circuit implements Keys.
func (d Dir) Circuit(i int) (constraint.ConstraintSystem, error) {
	var ccs constraint.ConstraintSystem
	if d.Sys == circuits.Plonk {
		ccs = plonk.NewCS(ecc.BN254)
	} else {
		ccs = groth16.NewCS(ecc.BN254)
	}
	return ccs, d.read(i, "circuit", ccs)
}

// unsafeReader reads a proving key without its points' checks.
type unsafeReader struct {
	pk interface {
		UnsafeReadFrom(r io.Reader) (int64, error)
	}
}

func (u unsafeReader) ReadFrom(r io.Reader) (int64, error) { return u.pk.UnsafeReadFrom(r) }

// ProvingKey implements Keys. The file is checksum-verified and our own, so its points
// are decoded without gnark's per-point checks (as prover.Model.ProvingKey does), most
// of a large key's decoding time. A key that is wrong anyway only makes proofs that do
// not verify: ProveSegment checks every proof with the segment's verifying key, which
// VerifyingKey decodes with the checks, before returning it.
func (d Dir) ProvingKey(i int) (any, error) {
	j, err := d.keysOf(i)
	if err != nil {
		return nil, err
	}
	if d.Sys == circuits.Plonk {
		pk := plonk.NewProvingKey(ecc.BN254)
		return pk, d.read(j, "pk", unsafeReader{pk})
	}
	pk := groth16.NewProvingKey(ecc.BN254)
	return pk, d.read(j, "pk", unsafeReader{pk})
}

// VerifyingKey implements Keys.
func (d Dir) VerifyingKey(i int) (any, error) {
	j, err := d.keysOf(i)
	if err != nil {
		return nil, err
	}
	if d.Sys == circuits.Plonk {
		vk := plonk.NewVerifyingKey(ecc.BN254)
		return vk, d.read(j, "vk", vk)
	}
	vk := groth16.NewVerifyingKey(ecc.BN254)
	return vk, d.read(j, "vk", vk)
}

// keyRecord is segment<i>.keys.<system>.json: segment i's keys are the key files of
// segment Segment (i itself, or an earlier segment with the identical circuit), made
// for the circuit whose stored file has the SHA-256 Circuit.
type keyRecord struct {
	Circuit string `json:"circuit_sha256"`
	Segment int    `json:"segment"`
}

func keysFile(i int, sys circuits.System) string {
	return fmt.Sprintf("segment%d.keys.%s.json", i, sys)
}

func (d Dir) circuitSum(i int) (string, bool) {
	return d.M.ArtifactSum(segmentFile(i, "circuit", d.Sys))
}

func (d Dir) keyRecord(i int) (*keyRecord, error) {
	b, err := d.M.ReadArtifact(keysFile(i, d.Sys))
	if err != nil {
		return nil, err
	}
	var r keyRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", prover.ErrCorrupt, keysFile(i, d.Sys), err)
	}
	return &r, nil
}

// keysOf returns the segment whose key files hold segment i's keys, after checking
// that they were made for segment i's stored circuit: keys of a circuit compiled
// again since (by another zkml version, or from a changed plan) are refused, as are
// keys borrowed from a segment whose own record does not hold them for that circuit.
// A directory set up before key records has each segment's own files. (The record is
// read, not looked up, so that a Model opened before the setup finds it: a read of an
// artifact its manifest does not list reads the manifest again.)
func (d Dir) keysOf(i int) (int, error) {
	r, err := d.keyRecord(i)
	if err != nil {
		if !d.M.HasArtifact(keysFile(i, d.Sys)) {
			return i, nil
		}
		return 0, err
	}
	stale := func(k int) error {
		return fmt.Errorf("%w: segment %d's %s keys (of segment %d) were made for another circuit than segment %d's stored one: run setup again",
			prover.ErrCorrupt, i, d.Sys, r.Segment, k)
	}
	if sum, ok := d.circuitSum(i); !ok || sum != r.Circuit {
		return 0, stale(i)
	}
	if r.Segment == i {
		return i, nil
	}
	if r.Segment < 0 || r.Segment >= i {
		return 0, fmt.Errorf("%w: %s names segment %d", prover.ErrCorrupt, keysFile(i, d.Sys), r.Segment)
	}
	if !d.holdsKeysFor(r.Segment, r.Circuit) {
		return 0, stale(r.Segment)
	}
	return r.Segment, nil
}

// holdsKeysFor reports whether segment j's stored circuit has the checksum sum and its
// own key files were made for it (its record names itself and sum).
func (d Dir) holdsKeysFor(j int, sum string) bool {
	if s, ok := d.circuitSum(j); !ok || s != sum {
		return false
	}
	r, err := d.keyRecord(j)
	return err == nil && *r == keyRecord{sum, j}
}

// sameKeys returns an earlier segment whose own keys were made for segment i's stored
// circuit (identical circuits have identical keys to make: the inner bands of a split
// layer share one setup), or -1.
func (d Dir) sameKeys(i int) (int, string, error) {
	sum, ok := d.circuitSum(i)
	if !ok {
		return -1, "", fmt.Errorf("segment %d: no %s circuit compiled", i, d.Sys)
	}
	for j := range i {
		if d.holdsKeysFor(j, sum) {
			return j, sum, nil
		}
	}
	return -1, sum, nil
}

// setupWith stores segment i's keys: an earlier segment's when it holds keys for the
// identical circuit (their provenance too), else the keys keygen returns.
func (d Dir) setupWith(i int, keygen func(ccs constraint.ConstraintSystem) (pk, vk io.WriterTo, prov *prover.Provenance, err error)) error {
	j, sum, err := d.sameKeys(i)
	if err != nil {
		return err
	}
	if j >= 0 {
		if err := d.writeProvenance(i, d.Provenance(j)); err != nil {
			return err
		}
		return d.writeKeyRecord(i, keyRecord{sum, j})
	}
	ccs, err := d.Circuit(i)
	if err != nil {
		return err
	}
	pk, vk, prov, err := keygen(ccs)
	if err != nil {
		return fmt.Errorf("segment %d: %w", i, err)
	}
	if err := d.write(i, "pk", pk); err != nil {
		return err
	}
	if err := d.write(i, "vk", vk); err != nil {
		return err
	}
	if err := d.writeProvenance(i, prov); err != nil {
		return err
	}
	return d.writeKeyRecord(i, keyRecord{sum, i})
}

func (d Dir) writeKeyRecord(i int, r keyRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return d.M.WriteArtifact(keysFile(i, d.Sys), b)
}

// HasKeys reports whether segment i's keys (its own or an earlier segment's, for the
// identical circuit) were made for its stored circuit by the kind of setup want
// describes: want's trust and, when want names a Powers of Tau file, the same file. A
// setup that stopped part way resumes from there (`zkml setup --resume`). Keys without
// a key record (a directory set up before records) are not known to match: false.
func (d Dir) HasKeys(i int, want *prover.Provenance) bool {
	if !d.M.HasArtifact(keysFile(i, d.Sys)) {
		return false
	}
	j, err := d.keysOf(i)
	if err != nil || !d.M.HasArtifact(segmentFile(j, "pk", d.Sys)) || !d.M.HasArtifact(segmentFile(j, "vk", d.Sys)) {
		return false
	}
	// Both the key files' provenance and segment i's copy of it (a borrower's copy
	// predates a lender set up again since).
	for _, k := range []int{j, i} {
		got := d.Provenance(k)
		if got.Trust != want.Trust || (want.Ptau != nil && (got.Ptau == nil || got.Ptau.BLAKE2b != want.Ptau.BLAKE2b)) {
			return false
		}
	}
	return true
}

// SharedKeys reports, per segment, the segment whose keys it uses (itself when it has
// its own; -1 when it has none or they are refused by keysOf).
func (d Dir) SharedKeys(n int) []int {
	out := make([]int, n)
	for i := range out {
		if j, err := d.keysOf(i); err == nil && d.M.HasArtifact(segmentFile(j, "vk", d.Sys)) {
			out[i] = j
		} else {
			out[i] = -1
		}
	}
	return out
}

func (d Dir) write(i int, kind string, obj io.WriterTo) error {
	if kind == "pk" {
		b, err := prover.EncodeProvingKey(obj)
		if err != nil {
			return err
		}
		return d.M.WriteArtifact(segmentFile(i, kind, d.Sys), b)
	}
	var buf bytes.Buffer
	if _, err := obj.WriteTo(&buf); err != nil {
		return err
	}
	return d.M.WriteArtifact(segmentFile(i, kind, d.Sys), buf.Bytes())
}

// Compile compiles segment i and stores its circuit and size report. Keys made for an
// earlier, different circuit of it are refused from then on (keysOf) until setup runs
// again.
func (d Dir) Compile(pl *Plan, i int) (*circuits.Stats, error) {
	ccs, stats, err := circuits.Compile(pl.Segments[i].Program, d.Sys)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", i, err)
	}
	if err := d.write(i, "circuit", ccs); err != nil {
		return nil, err
	}
	sj, err := json.MarshalIndent(stats, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := d.M.WriteArtifact(fmt.Sprintf("segment%d.stats.%s.json", i, d.Sys), sj); err != nil {
		return nil, err
	}
	return stats, nil
}

// Stats returns the stored size report of segment i's circuit.
func (d Dir) Stats(i int) (*circuits.Stats, error) {
	b, err := d.M.ReadArtifact(fmt.Sprintf("segment%d.stats.%s.json", i, d.Sys))
	if err != nil {
		return nil, err
	}
	var s circuits.Stats
	return &s, json.Unmarshal(b, &s)
}

// HasCircuit reports whether segment i's circuit is stored.
func (d Dir) HasCircuit(i int) bool { return d.M.HasArtifact(segmentFile(i, "circuit", d.Sys)) }

// Setup runs the development setup of segment i (prover.SetupKeys: NOT for
// production) on its stored circuit and stores its keys, or records that it uses an
// earlier segment's keys made for the identical circuit.
func (d Dir) Setup(i int) error {
	return d.setupWith(i, func(ccs constraint.ConstraintSystem) (io.WriterTo, io.WriterTo, *prover.Provenance, error) {
		pk, vk, err := prover.SetupKeys(ccs, d.Sys)
		return pk, vk, &prover.Provenance{Trust: prover.TrustDevelopment}, err
	})
}

// SetupUniversal makes segment i's PLONK keys on the public SRS of the Powers of Tau
// file at ptau (prover.UniversalSetupKeys: no randomness, reproducible by anyone from
// the segment's circuit and the file) and records their provenance; an earlier
// segment's keys for the identical circuit are used as Setup does.
func (d Dir) SetupUniversal(i int, ptau, cacheDir string) error {
	if d.Sys != circuits.Plonk {
		return fmt.Errorf("shard: a public SRS makes PLONK keys, not %s", d.Sys)
	}
	return d.setupWith(i, func(ccs constraint.ConstraintSystem) (io.WriterTo, io.WriterTo, *prover.Provenance, error) {
		pk, vk, prov, err := prover.UniversalSetupKeys(ccs, ptau, cacheDir)
		return pk, vk, prov, err
	})
}

func provenanceFile(i int, sys circuits.System) string {
	return fmt.Sprintf("segment%d.provenance.%s.json", i, sys)
}

func (d Dir) writeProvenance(i int, p *prover.Provenance) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return d.M.WriteArtifact(provenanceFile(i, d.Sys), b)
}

// Provenance is where segment i's keys come from (development when unrecorded).
func (d Dir) Provenance(i int) *prover.Provenance {
	b, err := d.M.ReadArtifact(provenanceFile(i, d.Sys))
	var p prover.Provenance
	if err != nil || json.Unmarshal(b, &p) != nil || p.Trust == "" {
		return &prover.Provenance{Trust: prover.TrustDevelopment}
	}
	return &p
}

// Trust is the provenance of a bundle's keys: a bundle is only as trustworthy as its
// weakest segment, so any segment with development keys makes it development; else
// every segment's keys come from the same kind of setup, and the first's is returned.
// RecordTrust writes it into the model's manifest (prover.Model.Provenance).
func (d Dir) Trust(pl *Plan) *prover.Provenance {
	var first *prover.Provenance
	for i := range pl.Segments {
		p := d.Provenance(i)
		if p.Trust == prover.TrustDevelopment {
			return p
		}
		if first == nil {
			first = p
		} else if p.Trust != first.Trust {
			return &prover.Provenance{Trust: prover.TrustDevelopment}
		}
	}
	if first == nil {
		return &prover.Provenance{Trust: prover.TrustDevelopment}
	}
	return first
}

// RecordTrust records the bundle's provenance (Trust) as the model's for d.Sys, once
// every segment's keys are made: what verify, the service's views and its trusted-setup
// policy read.
func (d Dir) RecordTrust(pl *Plan) error { return d.M.RecordProvenance(d.Sys, d.Trust(pl)) }

// BundleFile is the name of the last bundle proved with sys.
func BundleFile(sys circuits.System) string { return fmt.Sprintf("bundle.%s.json", sys) }

func proofFile(i int, sys circuits.System) string {
	return fmt.Sprintf("segment%d.proof.%s.json", i, sys)
}

// SaveProof stores a segment proof as soon as it is made (Checkpoint.Save): the
// segment proofs of the last bundle proved, or of a proving that stopped part way.
func (d Dir) SaveProof(sp *SegmentProof) error {
	b, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	return d.M.WriteArtifact(proofFile(sp.Index, d.Sys), b)
}

// SavedProof is segment i's stored proof (Checkpoint.Saved), nil when there is none
// or it cannot be read.
func (d Dir) SavedProof(i int) *SegmentProof {
	b, err := d.M.ReadArtifact(proofFile(i, d.Sys))
	if err != nil {
		return nil
	}
	var sp SegmentProof
	if json.Unmarshal(b, &sp) != nil {
		return nil
	}
	return &sp
}
