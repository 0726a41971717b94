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
	// Setup records how keys were made per system; "dev" keys are NOT for production.
	Setup map[string]string `json:"setup,omitempty"`
}

const manifestName = "manifest.json"

func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("read manifest (is %s a compiled model directory?): %w", dir, err)
	}
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
