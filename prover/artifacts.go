package prover

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FormatVersion is the version of the artifact directory layout. Readers refuse other
// versions rather than misreading them.
const FormatVersion = 1

// ErrCorrupt is wrapped when an artifact's checksum or format does not match its
// manifest.
var ErrCorrupt = errors.New("corrupt artifact")

// FileEntry records one artifact file.
type FileEntry struct {
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Manifest lists a model directory's artifacts with checksums, so that a circuit,
// key or proof that changed on disk is detected before it is used.
type Manifest struct {
	Version     int                  `json:"version"`
	ZKMLVersion string               `json:"zkml_version"`
	ModelID     string               `json:"model_id"`
	Files       map[string]FileEntry `json:"files"`
	// Setup records how keys were made per system, in words; "development" keys are NOT
	// for production. Provenance says the same in full.
	Setup map[string]string `json:"setup,omitempty"`
	// Provenance records where each system's keys come from (see Provenance).
	Provenance map[string]*Provenance `json:"provenance,omitempty"`
}

// Trust levels of a setup, from weakest to strongest.
const (
	// TrustDevelopment: a single-party setup whose toxic waste the party who ran it
	// knew; that party can forge proofs.
	TrustDevelopment = "development"
	// TrustUniversalSRS: PLONK on the KZG SRS of a public Powers of Tau file; sound if
	// one participant of that ceremony was honest, and reproducible by anyone.
	TrustUniversalSRS = "universal-srs"
	// TrustCeremony: Groth16 keys from a phase-2 ceremony on a public Powers of Tau
	// file, sealed with a public beacon; sound if one participant of either phase was
	// honest.
	TrustCeremony = "ceremony"
)

// Provenance says where a system's keys come from, so that a verifier can judge them.
type Provenance struct {
	Trust string `json:"trust"`
	// Ptau identifies the Powers of Tau file (universal-srs and ceremony).
	Ptau *PtauInfo `json:"ptau,omitempty"`
	// Contributions lists the phase-2 contributions in order (ceremony).
	Contributions []ContributionRecord `json:"contributions,omitempty"`
	// Beacon is the public random beacon that sealed the ceremony, hex (ceremony).
	Beacon string `json:"beacon,omitempty"`
}

// PtauInfo identifies a Powers of Tau file.
type PtauInfo struct {
	// BLAKE2b is the BLAKE2b-512 of the file (what `b2sum` prints and the ceremonies
	// publish).
	BLAKE2b string `json:"blake2b"`
	// Power is the file's power; DomainPower the power of the truncation used.
	Power       int `json:"power"`
	DomainPower int `json:"domain_power"`
	// Contributors are the names in the file's own contribution list.
	Contributors []string `json:"contributors,omitempty"`
}

// ContributionRecord is one entry of a phase-2 transcript.
type ContributionRecord struct {
	Name string `json:"name"`
	// Hash is the SHA-256 of the phase-2 state after the contribution (the hash the
	// contributor publishes; the next contribution's challenge).
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
}

// Summary is a one-line description of the provenance for people.
func (p *Provenance) Summary() string {
	switch {
	case p == nil || p.Trust == TrustDevelopment:
		return "development (single-party setup, NOT FOR PRODUCTION: whoever ran it can forge proofs)"
	case p.Trust == TrustUniversalSRS:
		return fmt.Sprintf("universal-srs (PLONK on the public Powers of Tau file blake2b %s, power %d)", short(p.Ptau.BLAKE2b), p.Ptau.Power)
	case p.Trust == TrustCeremony:
		return fmt.Sprintf("ceremony (Powers of Tau blake2b %s; %d phase-2 contribution(s); beacon %s)", short(p.Ptau.BLAKE2b), len(p.Contributions), short(p.Beacon))
	}
	return p.Trust
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

const manifestName = "manifest.json"

// LockName is the lock file of a model directory: every change of the manifest (and
// of the files it lists) holds an exclusive flock on it around re-reading the
// manifest, changing it and replacing it, so that Models of one directory in several
// goroutines, jobs or processes sharing the filesystem do not overwrite each other's
// entries. It is not an artifact.
const LockName = "manifest.lock"

// lockDir takes dir's exclusive (or, when shared, shared) manifest lock and returns
// its release.
func lockDir(dir string, shared bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// LockDir takes the exclusive lock of the model directory dir (LockName), which every
// change of its manifest through a Model holds, and returns its release: code outside
// this package that writes into the directory (a restore from a blob store) or reads
// its files as one consistent set (a snapshot into one) holds it meanwhile.
func LockDir(dir string) (unlock func(), err error) { return lockDir(dir, false) }

// MergeManifests merges two manifests of one model directory, each as manifest.json
// holds it: stored (a copy kept elsewhere, for instance in a blob store, that other
// machines may have added to) and local (this directory's). The merge lists every file
// of either; a file that both list is the entry written last (Created). Each system's
// provenance goes with its proving key's entry (a system without keys keeps local's
// record, else stored's). fromStored names the files whose merged entry is stored's
// and differs from local's: the files this directory must fetch for the merge to hold.
func MergeManifests(stored, local []byte) (merged []byte, fromStored []string, err error) {
	var sm, lm *Manifest
	if sm, err = parseManifest(stored); err != nil {
		return nil, nil, fmt.Errorf("stored %w", err)
	}
	if lm, err = parseManifest(local); err != nil {
		return nil, nil, fmt.Errorf("local %w", err)
	}
	if sm.ModelID != lm.ModelID {
		return nil, nil, fmt.Errorf("%w: the stored manifest is of model %s, the local one of %s", ErrCorrupt, sm.ModelID, lm.ModelID)
	}
	out := *lm
	out.Files = make(map[string]FileEntry, len(lm.Files)+len(sm.Files))
	for name, e := range lm.Files {
		out.Files[name] = e
	}
	for name, se := range sm.Files {
		le, ok := lm.Files[name]
		if ok && (le.SHA256 == se.SHA256 || !se.Created.After(le.Created)) {
			continue
		}
		out.Files[name] = se
		fromStored = append(fromStored, name)
	}
	out.Setup = map[string]string{}
	out.Provenance = map[string]*Provenance{}
	systems := map[string]bool{}
	for sys := range lm.Provenance {
		systems[sys] = true
	}
	for sys := range sm.Provenance {
		systems[sys] = true
	}
	for sys := range systems {
		from := lm
		pk := fmt.Sprintf("pk.%s.bin", sys)
		if e, ok := out.Files[pk]; ok && e.SHA256 != lm.Files[pk].SHA256 {
			from = sm // the keys are stored's
		} else if _, ok := lm.Provenance[sys]; !ok {
			from = sm
		}
		if p, ok := from.Provenance[sys]; ok {
			out.Provenance[sys] = p
			out.Setup[sys] = from.Setup[sys]
		}
	}
	merged, err = json.MarshalIndent(&out, "", "  ")
	return merged, fromStored, err
}

// ManifestFiles returns the files a manifest (as manifest.json holds it) lists, each
// with the hex SHA-256 of its content.
func ManifestFiles(b []byte) (map[string]string, error) {
	m, err := parseManifest(b)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m.Files))
	for name, e := range m.Files {
		out[name] = e.SHA256
	}
	return out, nil
}

// ReplaceManifest replaces dir's manifest.json with b (a manifest, as MergeManifests
// returns one) through a rename. The caller holds LockDir(dir).
func ReplaceManifest(dir string, b []byte) error {
	if _, err := parseManifest(b); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, manifestName), b)
}

func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("read manifest (is %s a compiled model directory?): %w", dir, err)
	}
	return parseManifest(b)
}

func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.Version != FormatVersion {
		return nil, fmt.Errorf("%w: artifact format version %d, this zkml reads %d", ErrCorrupt, m.Version, FormatVersion)
	}
	if m.Files == nil {
		m.Files = map[string]FileEntry{}
	}
	if m.Setup == nil {
		m.Setup = map[string]string{}
	}
	if m.Provenance == nil {
		m.Provenance = map[string]*Provenance{}
	}
	return &m, nil
}

func (m *Manifest) write(dir string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, manifestName), b)
}

// writeAtomic writes data to path through a temporary file and rename, so readers
// never see a half-written artifact.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// putFile writes an artifact and records its checksum in the manifest.
func (m *Manifest) putFile(dir, name string, data []byte) error {
	if err := writeAtomic(filepath.Join(dir, name), data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	m.Files[name] = FileEntry{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Created: time.Now().UTC()}
	return nil
}

// readFile reads an artifact and checks it against the manifest.
func (m *Manifest) readFile(dir, name string) ([]byte, error) {
	e, ok := m.Files[name]
	if !ok {
		return nil, fmt.Errorf("%s is missing from %s (run the step that makes it first)", name, dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != e.SHA256 {
		return nil, fmt.Errorf("%w: %s checksum mismatch (file changed since it was written)", ErrCorrupt, name)
	}
	return b, nil
}

// writerTo is implemented by gnark's serializable objects.
type writerTo interface {
	WriteTo(io.Writer) (int64, error)
}
