package srs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"golang.org/x/crypto/blake2b"
)

// DefaultCacheDir is where checked imports are kept: $ZKML_SRS_CACHE, or zkml/srs in the
// user's cache directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("ZKML_SRS_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (set ZKML_SRS_CACHE): %w", err)
	}
	return filepath.Join(d, "zkml", "srs"), nil
}

// FileHash returns the BLAKE2b-512 of the file at path, hex (what `b2sum` prints).
func FileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, err := blake2b.New512(nil)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20)); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Load returns the part of the .ptau file at path that kind needs for 2^power points,
// checked. A checked import is cached in cacheDir (empty: no cache) under the file's
// content hash, kind and power, so the checks run once per file; a later Load hashes the
// file and reads the cache. A cache entry that fails its own checksum is ignored and
// rewritten.
func Load(path string, power int, kind Kind, cacheDir string) (*SRS, error) {
	hash, err := FileHash(path)
	if err != nil {
		return nil, err
	}
	if kind == KZG && power < 2 {
		power = 2
	}
	var entry string
	if cacheDir != "" {
		entry = filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%d.srs", hash[:40], kind, power))
		if s, err := readCache(entry); err == nil && s.Source.Hash == hash && s.Kind == kind && s.Power == power {
			return s, nil
		}
	}
	p, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	s, err := importFile(p, hash, power, kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if entry != "" {
		if err := writeCache(entry, s); err != nil {
			return nil, fmt.Errorf("cache the checked SRS: %w", err)
		}
	}
	return s, nil
}

// cacheMagic starts every cache entry; the last 32 bytes are the SHA-256 of the rest.
const cacheMagic = "zkml-srs-cache-2\n"

type cacheMeta struct {
	Kind   Kind   `json:"kind"`
	Power  int    `json:"power"`
	Source Source `json:"source"`
}

func (s *SRS) encodeCache(w io.Writer) error {
	meta, err := json.Marshal(cacheMeta{Kind: s.Kind, Power: s.Power, Source: s.Source})
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, cacheMagic); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint32(len(meta))); err != nil {
		return err
	}
	if _, err := w.Write(meta); err != nil {
		return err
	}
	enc := curve.NewEncoder(w, curve.RawEncoding())
	for _, v := range []any{s.TauG1, s.TauG2, s.AlphaTauG1, s.BetaTauG1, &s.BetaG2, s.LagrangeG1, s.LagrangeG2, s.LagrangeAlphaG1, s.LagrangeBetaG1} {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

func writeCache(path string, s *SRS) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	if err := s.encodeCache(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(h.Sum(nil)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var errCacheCorrupt = errors.New("srs cache entry corrupt")

func readCache(path string) (*SRS, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < len(cacheMagic)+4+sha256.Size || !strings.HasPrefix(string(b[:len(cacheMagic)]), cacheMagic) {
		return nil, errCacheCorrupt
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errCacheCorrupt
	}
	body = body[len(cacheMagic):]
	ml := int(binary.LittleEndian.Uint32(body))
	if ml > len(body)-4 {
		return nil, errCacheCorrupt
	}
	var meta cacheMeta
	if err := json.Unmarshal(body[4:4+ml], &meta); err != nil {
		return nil, errCacheCorrupt
	}
	s := &SRS{Kind: meta.Kind, Power: meta.Power, Source: meta.Source}
	// The entry was written by this process's checks and is covered by its checksum:
	// the subgroup checks need not run again.
	dec := curve.NewDecoder(bytes.NewReader(body[4+ml:]), curve.NoSubgroupChecks())
	for _, v := range []any{&s.TauG1, &s.TauG2, &s.AlphaTauG1, &s.BetaTauG1, &s.BetaG2, &s.LagrangeG1, &s.LagrangeG2, &s.LagrangeAlphaG1, &s.LagrangeBetaG1} {
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("%w: %v", errCacheCorrupt, err)
		}
	}
	return s, nil
}
