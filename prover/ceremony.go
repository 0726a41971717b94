package prover

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/srs"
)

// A Groth16 phase-2 ceremony for one model (gnark's mpcsetup, the MPC of Bowe, Gabizon and
// Miers as used by Linea), on the phase-1 powers of a public Powers of Tau file:
//
//	init        the coordinator imports the ptau (checked), initializes phase 2 from the
//	            circuit: phase2.0000.bin, a public, deterministic state
//	contribute  each participant, on their own machine, reads only the current state
//	            file, adds secret randomness (then forgotten) with a proof of knowledge,
//	            writes the next state and publishes its hash
//	accept      the coordinator verifies a contribution against the current state and
//	            appends it to the transcript
//	verify      anyone re-derives the initial state from the circuit and the ptau and
//	            checks every contribution in order (and the sealed keys)
//	seal        a public random beacon (chosen after the last contribution, e.g. a
//	            drand round) makes the last update; the keys are written to the model
//
// The keys are sound if at least one participant of the Powers of Tau ceremony and one of
// the phase-2 contributors was honest. The transcript lives in <model>/ceremony.groth16/.

// ErrCeremony is wrapped by errors that reject a contribution or a transcript.
var ErrCeremony = errors.New("ceremony")

// ErrStaleContribution (which wraps ErrCeremony) rejects a contribution made from an
// earlier state of this ceremony: another contribution was accepted since the
// contributor downloaded the state. Nothing is wrong with it but its timing: the
// contributor should download the current state and contribute again.
var ErrStaleContribution = fmt.Errorf("%w: contribution made from an earlier state", ErrCeremony)

const ceremonyDirName = "ceremony.groth16"

// CeremonyState is the public record of a ceremony (state.json).
type CeremonyState struct {
	ModelID string `json:"model_id"`
	// Circuit is the SHA-256 of the compiled Groth16 circuit the ceremony is for.
	Circuit string   `json:"circuit_sha256"`
	Ptau    PtauInfo `json:"ptau"`
	// Initial is the SHA-256 of phase2.0000.bin.
	Initial       string               `json:"initial"`
	Contributions []ContributionRecord `json:"contributions"`
	Beacon        string               `json:"beacon,omitempty"`
	Sealed        *time.Time           `json:"sealed,omitempty"`
}

// Ceremony is a model's Groth16 phase-2 ceremony directory.
type Ceremony struct {
	m     *Model
	Dir   string
	State CeremonyState
}

func phaseFile(i int) string { return fmt.Sprintf("phase2.%04d.bin", i) }

// CeremonyInit starts the model's Groth16 ceremony on the Powers of Tau file at ptau
// (checked and cached in cacheDir, see srs.Load). It refuses to overwrite a ceremony
// that has contributions.
func (m *Model) CeremonyInit(ptau, cacheDir string) (*Ceremony, error) {
	dir := filepath.Join(m.Dir, ceremonyDirName)
	if old, err := m.OpenCeremony(); err == nil && len(old.State.Contributions) > 0 {
		return nil, fmt.Errorf("%w: %s already holds %d contribution(s); remove it to start over", ErrCeremony, dir, len(old.State.Contributions))
	}
	r1cs, err := m.r1cs()
	if err != nil {
		return nil, err
	}
	s, err := srs.Load(ptau, Groth16Power(r1cs), srs.Groth16, cacheDir)
	if err != nil {
		return nil, err
	}
	commons, err := s.Commons()
	if err != nil {
		return nil, err
	}
	var p2 mpcsetup.Phase2
	initPhase2(&p2, r1cs, commons, s)
	b, err := encodePhase2(&p2)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, phaseFile(0)), b); err != nil {
		return nil, err
	}
	c := &Ceremony{m: m, Dir: dir, State: CeremonyState{
		ModelID: m.ID, Circuit: m.man().Files[fileName("circuit", circuits.Groth16)].SHA256,
		Ptau: *ptauInfo(s), Initial: sha256Hex(b), Contributions: []ContributionRecord{},
	}}
	return c, c.writeState()
}

// r1cs returns the model's compiled Groth16 constraint system.
func (m *Model) r1cs() (*cs.R1CS, error) {
	ccs, err := m.Circuit(circuits.Groth16)
	if err != nil {
		return nil, err
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, fmt.Errorf("groth16 circuit is %T, not a BN254 R1CS", ccs)
	}
	return r, nil
}

// OpenCeremony opens the model's ceremony directory.
func (m *Model) OpenCeremony() (*Ceremony, error) {
	dir := filepath.Join(m.Dir, ceremonyDirName)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, fmt.Errorf("no ceremony for %s (run ceremony init first): %w", m.Dir, err)
	}
	c := &Ceremony{m: m, Dir: dir}
	if err := json.Unmarshal(b, &c.State); err != nil {
		return nil, fmt.Errorf("%w: state.json: %v", ErrCorrupt, err)
	}
	if c.State.ModelID != m.ID {
		return nil, fmt.Errorf("%w: the ceremony is for model %s, this is %s", ErrCeremony, c.State.ModelID, m.ID)
	}
	return c, nil
}

func (c *Ceremony) writeState() error {
	b, err := json.MarshalIndent(c.State, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(c.Dir, "state.json"), b)
}

// CurrentFile is the path of the latest state, the one the next contributor needs.
func (c *Ceremony) CurrentFile() string {
	return filepath.Join(c.Dir, phaseFile(len(c.State.Contributions)))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func encodePhase2(p *mpcsetup.Phase2) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodePhase2 reads a phase-2 state; gnark's decoder checks every point is on the curve
// and in its subgroup. Trailing bytes are refused.
func decodePhase2(b []byte) (*mpcsetup.Phase2, error) {
	var p mpcsetup.Phase2
	r := bytes.NewReader(b)
	if _, err := p.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("%w: not a phase-2 state: %v", ErrCeremony, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the phase-2 state", ErrCeremony, r.Len())
	}
	return &p, nil
}

// readPhase2 reads state i of the transcript and checks it against the recorded hash.
func (c *Ceremony) readPhase2(i int) (*mpcsetup.Phase2, []byte, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, phaseFile(i)))
	if err != nil {
		return nil, nil, err
	}
	want := c.State.Initial
	if i > 0 {
		want = c.State.Contributions[i-1].Hash
	}
	if got := sha256Hex(b); got != want {
		return nil, nil, fmt.Errorf("%w: %s has hash %s, the transcript records %s", ErrCeremony, phaseFile(i), got, want)
	}
	p, err := decodePhase2(b)
	return p, b, err
}

// Contribute reads a phase-2 state from r, adds fresh secret randomness with its proof
// of knowledge (gnark's Phase2.Contribute; the randomness is never stored), writes the
// next state to w and returns its SHA-256, the hash the contributor publishes. It needs
// nothing but the state: no circuit, no ptau.
func Contribute(r io.Reader, w io.Writer) (hash string, err error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	p, err := decodePhase2(b)
	if err != nil {
		return "", err
	}
	p.Contribute()
	out, err := encodePhase2(p)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(out); err != nil {
		return "", err
	}
	return sha256Hex(out), nil
}

// Accept verifies a contribution (the state a contributor wrote from the current one)
// and appends it to the transcript under name. A contribution that does not build on the
// current state, changes anything but by a proven secret factor, or lacks a valid proof
// of knowledge is refused, and the transcript is left as it was.
func (c *Ceremony) Accept(next []byte, name string) (ContributionRecord, error) {
	if err := c.checkOpen(); err != nil {
		return ContributionRecord{}, err
	}
	p, err := decodePhase2(next)
	if err != nil {
		return ContributionRecord{}, err
	}
	return c.accept(p, sha256Hex(next), name, func(dst string) error { return writeAtomic(dst, next) })
}

// AcceptFile is Accept for a contribution in a file (an upload), streamed: the file's
// bytes are hashed while they are decoded and copied, never held whole in memory.
func (c *Ceremony) AcceptFile(path, name string) (ContributionRecord, error) {
	if err := c.checkOpen(); err != nil {
		return ContributionRecord{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return ContributionRecord{}, err
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	var p mpcsetup.Phase2
	if _, err := p.ReadFrom(br); err != nil {
		return ContributionRecord{}, fmt.Errorf("%w: not a phase-2 state: %v", ErrCeremony, err)
	}
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		return ContributionRecord{}, fmt.Errorf("%w: %d bytes after the phase-2 state", ErrCeremony, n)
	}
	return c.accept(&p, hex.EncodeToString(h.Sum(nil)), name, func(dst string) error { return copyAtomic(dst, path) })
}

// accept verifies p (whose serialization has the given hash) against the current state
// and, if it is valid, stores it with store and records it.
func (c *Ceremony) accept(p *mpcsetup.Phase2, hash, name string, store func(dst string) error) (ContributionRecord, error) {
	if err := c.checkBasis(p, hash); err != nil {
		return ContributionRecord{}, err
	}
	prev, _, err := c.readPhase2(len(c.State.Contributions))
	if err != nil {
		return ContributionRecord{}, err
	}
	if err := verifyStep(prev, p, len(c.State.Contributions)+1); err != nil {
		return ContributionRecord{}, err
	}
	rec := ContributionRecord{Name: name, Hash: hash, Time: time.Now().UTC().Truncate(time.Second)}
	if err := store(filepath.Join(c.Dir, phaseFile(len(c.State.Contributions)+1))); err != nil {
		return ContributionRecord{}, err
	}
	c.State.Contributions = append(c.State.Contributions, rec)
	if err := c.writeState(); err != nil {
		c.State.Contributions = c.State.Contributions[:len(c.State.Contributions)-1]
		return ContributionRecord{}, err
	}
	return rec, nil
}

// checkBasis refuses, with a precise reason, a contribution that was already accepted
// and one made from an earlier state of the transcript (ErrStaleContribution): its
// challenge, gnark's SHA-256 of the state it was made from, is the hash of state k < n.
// Any other contribution is left to verifyStep.
func (c *Ceremony) checkBasis(p *mpcsetup.Phase2, hash string) error {
	n := len(c.State.Contributions)
	for i, r := range c.State.Contributions {
		if r.Hash == hash {
			return fmt.Errorf("%w: this contribution was already accepted as contribution %d (by %s)", ErrCeremony, i+1, r.Name)
		}
	}
	challenge := hex.EncodeToString(p.Challenge)
	for k := range n {
		h := c.State.Initial
		if k > 0 {
			h = c.State.Contributions[k-1].Hash
		}
		if challenge == h {
			return fmt.Errorf("%w: it was made from state %d, but %d contribution(s) have been accepted since "+
				"(the current state is %d, hash %s): download the current state and contribute again",
				ErrStaleContribution, k, n-k, n, c.State.Contributions[n-1].Hash)
		}
	}
	return nil
}

// checkOpen refuses contributions to a sealed ceremony.
func (c *Ceremony) checkOpen() error {
	if c.State.Sealed != nil {
		return fmt.Errorf("%w: the ceremony is sealed", ErrCeremony)
	}
	return nil
}

// copyAtomic copies src to dst through a temporary file and rename.
func copyAtomic(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// verifyStep checks contribution i (1-based) against the state before it.
func verifyStep(prev, next *mpcsetup.Phase2, i int) error {
	if len(next.Challenge) == 0 {
		return fmt.Errorf("%w: contribution %d names no previous state (empty challenge)", ErrCeremony, i)
	}
	if err := prev.Verify(next); err != nil {
		return fmt.Errorf("%w: contribution %d rejected: %v", ErrCeremony, i, err)
	}
	return nil
}

// Verify checks the whole transcript from scratch: the initial state is re-derived from
// the model's circuit and the Powers of Tau file (whose hash must be the recorded one),
// then every contribution is verified in order. For a sealed ceremony the keys are
// re-derived with the recorded beacon and compared with the model's, byte for byte.
func (c *Ceremony) Verify(ptau, cacheDir string) error {
	r1cs, commons, s, err := c.inputs(ptau, cacheDir)
	if err != nil {
		return err
	}
	var initial mpcsetup.Phase2
	initPhase2(&initial, r1cs, commons, s)
	ib, err := encodePhase2(&initial)
	if err != nil {
		return err
	}
	if sha256Hex(ib) != c.State.Initial {
		return fmt.Errorf("%w: the initial state does not match the circuit and the ptau", ErrCeremony)
	}
	prev := &initial
	for i := 1; i <= len(c.State.Contributions); i++ {
		next, _, err := c.readPhase2(i)
		if err != nil {
			return err
		}
		if err := verifyStep(prev, next, i); err != nil {
			return err
		}
		prev = next
	}
	if c.State.Sealed == nil {
		return nil
	}
	pk, vk, err := c.seal(r1cs, commons, s, c.State.Beacon)
	if err != nil {
		return err
	}
	for _, k := range []struct {
		kind string
		key  writerTo
	}{{"pk", pk}, {"vk", vk}} {
		var buf bytes.Buffer
		if _, err := k.key.WriteTo(&buf); err != nil {
			return err
		}
		stored, err := c.m.ReadArtifact(fileName(k.kind, circuits.Groth16))
		if err != nil {
			return err
		}
		same := bytes.Equal(stored, buf.Bytes())
		if !same && k.kind == "pk" {
			// Proving keys are stored uncompressed (EncodeProvingKey) since
			// 2026-11-30, compressed before.
			raw, err := EncodeProvingKey(k.key)
			if err != nil {
				return err
			}
			same = bytes.Equal(stored, raw)
		}
		if !same {
			return fmt.Errorf("%w: the model's %s is not the one the sealed transcript gives", ErrCeremony, fileName(k.kind, circuits.Groth16))
		}
	}
	return nil
}

// inputs loads the circuit and the phase-1 commons, checking both are the recorded ones.
func (c *Ceremony) inputs(ptau, cacheDir string) (*cs.R1CS, *mpcsetup.SrsCommons, *srs.SRS, error) {
	if got := c.m.man().Files[fileName("circuit", circuits.Groth16)].SHA256; got != c.State.Circuit {
		return nil, nil, nil, fmt.Errorf("%w: the model's Groth16 circuit changed since the ceremony began (recompiled?)", ErrCeremony)
	}
	r1cs, err := c.m.r1cs()
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := srs.Load(ptau, c.State.Ptau.DomainPower, srs.Groth16, cacheDir)
	if err != nil {
		return nil, nil, nil, err
	}
	if s.Source.Hash != c.State.Ptau.BLAKE2b {
		return nil, nil, nil, fmt.Errorf("%w: %s is not the Powers of Tau file the ceremony began with (blake2b %s)", ErrCeremony, ptau, short(c.State.Ptau.BLAKE2b))
	}
	commons, err := s.Commons()
	return r1cs, commons, s, err
}

// seal re-verifies the transcript (gnark's VerifyPhase2, see verifyPhase2) and applies
// the beacon.
func (c *Ceremony) seal(r1cs *cs.R1CS, commons *mpcsetup.SrsCommons, s *srs.SRS, beaconHex string) (groth16.ProvingKey, groth16.VerifyingKey, error) {
	beacon, err := hex.DecodeString(beaconHex)
	if err != nil || len(beacon) == 0 {
		return nil, nil, fmt.Errorf("%w: the beacon must be a non-empty hex string", ErrCeremony)
	}
	states := make([]*mpcsetup.Phase2, len(c.State.Contributions))
	for i := range states {
		if states[i], _, err = c.readPhase2(i + 1); err != nil {
			return nil, nil, err
		}
	}
	last, evals, err := verifyPhase2(r1cs, commons, s, beacon, states...)
	if err != nil {
		return nil, nil, err
	}
	pk, vk := last.Seal(commons, &evals, beacon)
	return pk, vk, nil
}

// Seal verifies the whole transcript, applies the public beacon (hex; choose one that
// nobody could know before the last contribution, such as a future drand round) and
// writes the Groth16 keys into the model with their provenance. At least one
// contribution is required: the beacon alone is public, so it hides nothing.
func (c *Ceremony) Seal(ptau, cacheDir, beaconHex string) error {
	if c.State.Sealed != nil {
		return fmt.Errorf("%w: already sealed", ErrCeremony)
	}
	if len(c.State.Contributions) == 0 {
		return fmt.Errorf("%w: no contribution yet: a ceremony sealed by its public beacon alone hides nothing", ErrCeremony)
	}
	r1cs, commons, s, err := c.inputs(ptau, cacheDir)
	if err != nil {
		return err
	}
	pk, vk, err := c.seal(r1cs, commons, s, beaconHex)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	c.State.Beacon, c.State.Sealed = beaconHex, &now
	ptauCopy := c.State.Ptau
	prov := &Provenance{Trust: TrustCeremony, Ptau: &ptauCopy, Contributions: c.State.Contributions, Beacon: beaconHex}
	if err := c.m.storeKeys(circuits.Groth16, pk, vk, prov); err != nil {
		return err
	}
	return c.writeState()
}

// ContributeFile is Contribute from file in to file out (written atomically).
func ContributeFile(in, out string) (string, error) {
	f, err := os.Open(in)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	hash, err := Contribute(bufio.NewReader(f), bw)
	if err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return hash, writeAtomic(out, buf.Bytes())
}
