// Package prover compiles a model into circuits, runs the setup, and proves
// inferences. A model lives in a directory of versioned, checksummed artifacts:
//
//	model.onnx            the source model
//	settings.json         fixed-point and visibility settings (quant.Config)
//	circuit.<system>.bin  the compiled constraint system
//	pk.<system>.bin       proving key     (setup)
//	vk.<system>.bin       verifying key   (setup)
//	proof.<system>.bin    the last proof  (prove), with public.<system>.bin and output.json
//	manifest.json         checksums of all of the above, the model ID and setup kind
//	manifest.lock         locked (flock) around every change of manifest.json (LockName)
//
// The setup is a single-party development setup (Groth16) or a test SRS (PLONK): the
// party who ran it can forge proofs. It is NOT for production; a production deployment
// needs an MPC ceremony (Groth16) or a public powers-of-tau SRS (PLONK).
package prover

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/constraint"
	csbn254 "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// Version is the zkml version recorded in artifacts.
const Version = "0.1.0"

// DevSetupWarning is printed and recorded wherever dev keys are made or used.
const DevSetupWarning = "dev setup: keys come from a single-party setup with known toxic waste; NOT FOR PRODUCTION"

// Model is a compiled model directory.
type Model struct {
	Dir      string
	Graph    *model.Graph
	Program  *quant.Program
	Config   quant.Config
	ID       string
	manifest *Manifest
	mu       sync.Mutex
}

// ModelID is the SHA-256 of the canonical binary encoding of the quantized program
// (quant.Program.WriteCanonical: graph, fixed-point settings, visibility and integer
// parameters), streamed into the hash: two models with the same ID compute the same
// function and compile to the same circuit, and computing it allocates nothing
// proportional to the model (docs/model-id.md).
func ModelID(p *quant.Program) (string, error) {
	h := sha256.New()
	if err := p.WriteCanonical(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// jsonModelID is the model ID of zkml before the canonical encoding (#16): the SHA-256
// of the program's JSON encoding. It materializes that encoding (several bytes per
// multiply-accumulate), so it is only computed to open a directory that records it.
func jsonModelID(p *quant.Program) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// legacyModelID reports whether recorded is an ID that an earlier zkml recorded for
// this program, so that model directories it wrote keep the ID their verifiers were
// deployed with:
//   - the JSON-based ID (jsonModelID), recorded before the canonical encoding;
//   - the same with an empty range_check, recorded before settings were normalized
//     (quant.Config.Normalized) when settings.json left range_check empty: the same
//     circuit as "lookup", hashed with an empty field.
func legacyModelID(p *quant.Program, settings []byte, recorded string) bool {
	if id, err := jsonModelID(p); err == nil && id == recorded {
		return true
	}
	var read struct {
		RangeCheck string `json:"range_check"`
	}
	if json.Unmarshal(settings, &read) != nil || read.RangeCheck != "" {
		return false
	}
	legacy := *p
	legacy.RangeCheck = ""
	id, err := jsonModelID(&legacy)
	return err == nil && id == recorded
}

func fileName(kind string, sys circuits.System) string {
	return fmt.Sprintf("%s.%s.bin", kind, sys)
}

// Build loads and quantizes an ONNX model without writing anything.
func Build(onnx []byte, cfg quant.Config) (*model.Graph, *quant.Program, error) {
	g, err := model.Load(onnx)
	if err != nil {
		return nil, nil, err
	}
	p, err := quant.Lower(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	return g, p, nil
}

// Create quantizes an ONNX model and initializes dir with the source model, settings
// and manifest. It does not compile circuits (see Compile).
func Create(dir string, onnx []byte, cfg quant.Config) (*Model, error) {
	g, p, err := Build(onnx, cfg)
	if err != nil {
		return nil, err
	}
	return CreateBuilt(dir, onnx, cfg, g, p)
}

// CreateBuilt is Create for a model that Build(onnx, cfg) already quantized into g
// and p (so a caller can check the program, for instance against a memory budget,
// before anything is written).
func CreateBuilt(dir string, onnx []byte, cfg quant.Config, g *model.Graph, p *quant.Program) (*Model, error) {
	id, err := ModelID(p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Model{Dir: dir, Graph: g, Program: p, Config: cfg, ID: id,
		manifest: &Manifest{Version: FormatVersion, ZKMLVersion: Version, ModelID: id, Files: map[string]FileEntry{}, Setup: map[string]string{}, Provenance: map[string]*Provenance{}}}
	settings, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.manifest.putFile(dir, "model.onnx", onnx); err != nil {
		return nil, err
	}
	if err := m.manifest.putFile(dir, "settings.json", settings); err != nil {
		return nil, err
	}
	return m, m.manifest.write(dir)
}

// man is the manifest m last read or wrote. A published Manifest is never changed
// (update changes a fresh copy), so the caller may read it without m.mu.
func (m *Model) man() *Manifest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.manifest
}

// update changes the model directory's manifest with fn, atomically with respect to
// every other Model of the directory, in this process or another: under the
// directory's lock (LockName) it re-reads the manifest from disk, so that entries
// written since m read it are kept, applies fn (which may write the files it lists)
// and replaces manifest.json through a rename, so readers never see it half-written.
func (m *Model) update(fn func(man *Manifest) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	unlock, err := lockDir(m.Dir, false)
	if err != nil {
		return err
	}
	defer unlock()
	man, err := readManifest(m.Dir)
	if err != nil {
		return err
	}
	if man.ModelID != m.manifest.ModelID {
		return fmt.Errorf("%w: %s now holds model %s, not %s", ErrCorrupt, m.Dir, man.ModelID, m.manifest.ModelID)
	}
	if err := fn(man); err != nil {
		return err
	}
	if err := man.write(m.Dir); err != nil {
		return err
	}
	m.manifest = man
	return nil
}

// read returns the artifact name, checked against the manifest, and its entry. When
// the manifest m holds does not match (another Model of the directory, perhaps in
// another process, replaced the file since m read it), it reads the manifest and the
// file again under the directory's shared lock, so that no writer is between the
// two, and keeps the newer manifest.
func (m *Model) read(name string) ([]byte, FileEntry, error) {
	man := m.man()
	b, err := man.readFile(m.Dir, name)
	if err == nil {
		return b, man.Files[name], nil
	}
	unlock, lerr := lockDir(m.Dir, true)
	if lerr != nil {
		return nil, FileEntry{}, err
	}
	defer unlock()
	fresh, ferr := readManifest(m.Dir)
	if ferr != nil || fresh.ModelID != man.ModelID {
		return nil, FileEntry{}, err
	}
	if b, err = fresh.readFile(m.Dir, name); err != nil {
		return nil, FileEntry{}, err
	}
	m.mu.Lock()
	m.manifest = fresh
	m.mu.Unlock()
	return b, fresh.Files[name], nil
}

// Open loads a model directory, checking checksums and that the model still quantizes
// to the recorded model ID.
func Open(dir string) (*Model, error) {
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	onnx, err := man.readFile(dir, "model.onnx")
	if err != nil {
		return nil, err
	}
	sb, err := man.readFile(dir, "settings.json")
	if err != nil {
		return nil, err
	}
	cfg := quant.DefaultConfig()
	if err := json.Unmarshal(sb, &cfg); err != nil {
		return nil, fmt.Errorf("%w: settings.json: %v", ErrCorrupt, err)
	}
	g, p, err := Build(onnx, cfg)
	if err != nil {
		return nil, err
	}
	id, err := ModelID(p)
	if err != nil {
		return nil, err
	}
	if id != man.ModelID && !legacyModelID(p, sb, man.ModelID) {
		// Before random-linear-combination checks (#16) every linear layer was
		// direct: a directory recorded then opens with that program, which its keys
		// and verifier were made for.
		direct, changed := p.WithoutRLC()
		did, err := ModelID(direct)
		if err != nil {
			return nil, err
		}
		if !changed || (did != man.ModelID && !legacyModelID(direct, sb, man.ModelID)) {
			return nil, fmt.Errorf("%w: model quantizes to ID %s but the manifest records %s (made by another zkml version?)", ErrCorrupt, id, man.ModelID)
		}
		p = direct
	}
	id = man.ModelID
	return &Model{Dir: dir, Graph: g, Program: p, Config: cfg, ID: id, manifest: man}, nil
}

// Compile builds and stores the constraint system for sys and returns its size report.
func (m *Model) Compile(sys circuits.System) (*circuits.Stats, error) {
	ccs, stats, err := circuits.Compile(m.Program, sys)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := ccs.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("serialize circuit: %w", err)
	}
	sj, err := json.MarshalIndent(stats, "", "  ")
	if err != nil {
		return nil, err
	}
	return stats, m.update(func(man *Manifest) error {
		if err := man.putFile(m.Dir, fileName("circuit", sys), buf.Bytes()); err != nil {
			return err
		}
		if err := man.putFile(m.Dir, fmt.Sprintf("stats.%s.json", sys), sj); err != nil {
			return err
		}
		// Keys made for an earlier circuit no longer match it.
		delete(man.Files, fileName("pk", sys))
		delete(man.Files, fileName("vk", sys))
		delete(man.Setup, string(sys))
		delete(man.Provenance, string(sys))
		cache.put(man.Files[fileName("circuit", sys)].SHA256, ccs)
		return nil
	})
}

// Stats returns the stored size report of sys's circuit.
func (m *Model) Stats(sys circuits.System) (*circuits.Stats, error) {
	b, _, err := m.read(fmt.Sprintf("stats.%s.json", sys))
	if err != nil {
		return nil, err
	}
	var s circuits.Stats
	return &s, json.Unmarshal(b, &s)
}

// Has reports whether the artifact kind ("circuit", "pk", "vk", "proof") exists for sys.
func (m *Model) Has(kind string, sys circuits.System) bool {
	_, ok := m.man().Files[fileName(kind, sys)]
	return ok
}

// cache keeps decoded circuits and keys in memory across proofs, keyed by checksum.
var cache = &objCache{m: map[string]any{}}

type objCache struct {
	mu sync.Mutex
	m  map[string]any
}

func (c *objCache) get(sum string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[sum]
	return v, ok
}

func (c *objCache) put(sum string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[sum] = v
}

// load reads and decodes an artifact through the in-memory cache.
func (m *Model) load(kind string, sys circuits.System, decode func([]byte) (any, error)) (any, error) {
	name := fileName(kind, sys)
	e, ok := m.man().Files[name]
	if ok {
		if v, ok := cache.get(e.SHA256); ok {
			return v, nil
		}
	}
	// read looks at the manifest on disk again when m's does not list the file
	// (another Model of the directory may have made it since m read it).
	b, e, err := m.read(name)
	if err != nil && !ok {
		hint := "run compile"
		if kind != "circuit" {
			hint = "run setup"
		}
		return nil, fmt.Errorf("%s has no %s for %s: %s first", m.Dir, kind, sys, hint)
	}
	if err != nil {
		return nil, err
	}
	if v, ok := cache.get(e.SHA256); ok {
		return v, nil // the file another Model replaced it with, decoded already
	}
	v, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: decode %s: %v", ErrCorrupt, name, err)
	}
	cache.put(e.SHA256, v)
	return v, nil
}

// Circuit returns the compiled constraint system for sys.
func (m *Model) Circuit(sys circuits.System) (constraint.ConstraintSystem, error) {
	v, err := m.load("circuit", sys, func(b []byte) (any, error) {
		var ccs constraint.ConstraintSystem
		if sys == circuits.Plonk {
			ccs = plonk.NewCS(ecc.BN254)
		} else {
			ccs = groth16.NewCS(ecc.BN254)
		}
		_, err := ccs.ReadFrom(bytes.NewReader(b))
		return ccs, err
	})
	if err != nil {
		return nil, err
	}
	return v.(constraint.ConstraintSystem), nil
}

// Setup generates proving and verifying keys for sys with the development setup (see
// the package doc and DevSetupWarning). Production keys come from SetupUniversal
// (PLONK) or a ceremony (Groth16, see CeremonyInit).
func (m *Model) Setup(sys circuits.System) error {
	ccs, err := m.Circuit(sys)
	if err != nil {
		return err
	}
	pk, vk, err := SetupKeys(ccs, sys)
	if err != nil {
		return err
	}
	return m.storeKeys(sys, pk, vk, &Provenance{Trust: TrustDevelopment})
}

// EncodeProvingKey is the stored form of a proving key: its points uncompressed
// (gnark's WriteRawTo), about twice the bytes of the compressed form but read about
// 100x faster (a 6.9 MB Groth16 key: 2.59 s compressed, 27 ms raw), which every proof
// pays when it loads its key. gnark's decoder reads either form, so directories whose
// keys were stored compressed still open.
func EncodeProvingKey(pk io.WriterTo) ([]byte, error) {
	var b bytes.Buffer
	var err error
	if raw, ok := pk.(interface {
		WriteRawTo(io.Writer) (int64, error)
	}); ok {
		_, err = raw.WriteRawTo(&b)
	} else {
		_, err = pk.WriteTo(&b)
	}
	return b.Bytes(), err
}

// storeKeys writes sys's keys and records where they come from.
func (m *Model) storeKeys(sys circuits.System, pk, vk writerTo, prov *Provenance) error {
	pkBytes, err := EncodeProvingKey(pk)
	if err != nil {
		return err
	}
	pkb := bytes.NewBuffer(pkBytes)
	var vkb bytes.Buffer
	if _, err := vk.WriteTo(&vkb); err != nil {
		return err
	}
	return m.update(func(man *Manifest) error {
		if err := man.putFile(m.Dir, fileName("pk", sys), pkb.Bytes()); err != nil {
			return err
		}
		if err := man.putFile(m.Dir, fileName("vk", sys), vkb.Bytes()); err != nil {
			return err
		}
		man.Setup[string(sys)] = prov.Summary()
		man.Provenance[string(sys)] = prov
		cache.put(man.Files[fileName("pk", sys)].SHA256, pk)
		cache.put(man.Files[fileName("vk", sys)].SHA256, vk)
		return nil
	})
}

// RecordProvenance records where sys's keys come from when they are not the model's
// own pk and vk files (a sharded model's segment keys: the bundle's provenance, its
// weakest segment's), so that Provenance, ReadProvenance and CheckTrusted see it.
func (m *Model) RecordProvenance(sys circuits.System, prov *Provenance) error {
	return m.update(func(man *Manifest) error {
		man.Setup[string(sys)] = prov.Summary()
		man.Provenance[string(sys)] = prov
		return nil
	})
}

// ReadProvenance is Provenance from the manifest of the model directory dir alone,
// without opening (rebuilding) the model.
func ReadProvenance(dir string, sys circuits.System) (*Provenance, error) {
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	m := &Model{Dir: dir, manifest: man}
	return m.Provenance(sys), nil
}

// Provenance says where sys's keys come from. Keys made before provenance was recorded
// (and any without a record) are development keys.
func (m *Model) Provenance(sys circuits.System) *Provenance {
	if p, ok := m.man().Provenance[string(sys)]; ok {
		return p
	}
	return &Provenance{Trust: TrustDevelopment}
}

// SetupKeys runs the development setup for sys (see the package doc: NOT for
// production). Groth16 over BN254 runs devSetupGroth16 (gnark's setup with the key
// points computed by fixed-base combs); PLONK runs plonk.Setup on a test SRS.
func SetupKeys(ccs constraint.ConstraintSystem, sys circuits.System) (pk, vk writerTo, err error) {
	if sys == circuits.Plonk {
		srs, lagrange, err := newTestSRS(ccs)
		if err != nil {
			return nil, nil, fmt.Errorf("plonk SRS: %w", err)
		}
		ppk, pvk, err := plonk.Setup(ccs, srs, lagrange)
		if err != nil {
			return nil, nil, fmt.Errorf("plonk setup: %w", err)
		}
		return ppk, pvk, nil
	}
	if r1cs, ok := ccs.(*csbn254.R1CS); ok {
		gpk, gvk, err := devSetupGroth16(r1cs)
		if err != nil {
			return nil, nil, fmt.Errorf("groth16 setup: %w", err)
		}
		return gpk, gvk, nil
	}
	gpk, gvk, err := groth16.Setup(ccs)
	if err != nil {
		return nil, nil, fmt.Errorf("groth16 setup: %w", err)
	}
	return gpk, gvk, nil
}

// ProvingKey returns the stored proving key for sys. The file is checksum-verified
// and our own, so its points are decoded without gnark's per-point subgroup checks
// (for BN254 G1, the on-curve check), about half of the decoding CPU time (PLONK's
// mnist_mlp key, 8.4 MB raw, 131k G1 points: about 28 ms checked, 14 ms unchecked).
// A key that is wrong anyway only makes proofs that do not verify: Prove checks every
// proof with the verifying key, which is decoded with the checks, before returning it.
func (m *Model) ProvingKey(sys circuits.System) (any, error) {
	return m.load("pk", sys, func(b []byte) (any, error) {
		if sys == circuits.Plonk {
			pk := plonk.NewProvingKey(ecc.BN254)
			_, err := pk.UnsafeReadFrom(bytes.NewReader(b))
			return pk, err
		}
		pk := groth16.NewProvingKey(ecc.BN254)
		_, err := pk.UnsafeReadFrom(bytes.NewReader(b))
		return pk, err
	})
}

// VerifyingKey returns the stored verifying key for sys (groth16.VerifyingKey or
// plonk.VerifyingKey).
func (m *Model) VerifyingKey(sys circuits.System) (any, error) {
	return m.load("vk", sys, func(b []byte) (any, error) {
		if sys == circuits.Plonk {
			vk := plonk.NewVerifyingKey(ecc.BN254)
			_, err := vk.ReadFrom(bytes.NewReader(b))
			return vk, err
		}
		vk := groth16.NewVerifyingKey(ecc.BN254)
		_, err := vk.ReadFrom(bytes.NewReader(b))
		return vk, err
	})
}

// VerifyingKeyBytes returns the serialized verifying key for sys.
func (m *Model) VerifyingKeyBytes(sys circuits.System) ([]byte, error) {
	b, _, err := m.read(fileName("vk", sys))
	return b, err
}

// HasArtifact reports whether the model directory records the artifact file name.
func (m *Model) HasArtifact(name string) bool {
	_, ok := m.man().Files[name]
	return ok
}

// ArtifactSum returns the SHA-256 (hex) the manifest records for the artifact file
// name, and whether it records the file.
func (m *Model) ArtifactSum(name string) (string, bool) {
	e, ok := m.man().Files[name]
	return e.SHA256, ok
}

// ReadArtifact returns a checksum-verified artifact file of the model directory.
func (m *Model) ReadArtifact(name string) ([]byte, error) {
	b, _, err := m.read(name)
	return b, err
}

// WriteArtifact writes a file into the model directory and records it (see update:
// safe with other Models of the directory writing at the same time).
func (m *Model) WriteArtifact(name string, data []byte) error {
	return m.update(func(man *Manifest) error { return man.putFile(m.Dir, name, data) })
}

// ProverOptions are the options every proof is made with: the commitment's challenge
// uses the hash the Solidity verifier expects, so each proof verifies on-chain too.
func ProverOptions(sys circuits.System) []backend.ProverOption {
	if sys == circuits.Plonk {
		return []backend.ProverOption{solidity.WithProverTargetSolidityVerifier(backend.PLONK)}
	}
	return []backend.ProverOption{solidity.WithProverTargetSolidityVerifier(backend.GROTH16)}
}

// VerifierOptions match ProverOptions.
func VerifierOptions(sys circuits.System) []backend.VerifierOption {
	if sys == circuits.Plonk {
		return []backend.VerifierOption{solidity.WithVerifierTargetSolidityVerifier(backend.PLONK)}
	}
	return []backend.VerifierOption{solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16)}
}
