// Package artifact is a content-addressed blob store: a blob is named by the SHA-256 of
// its bytes, and every read checks the bytes against that name, so a corrupted or
// truncated file is reported instead of fed to the prover.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Errors returned by Store implementations.
var (
	ErrNotFound = errors.New("artifact: not found")
	ErrCorrupt  = errors.New("artifact: checksum mismatch")
	ErrDigest   = errors.New("artifact: malformed digest")
)

const prefix = "sha256:"

// Digest names a blob: "sha256:" followed by 64 lowercase hex digits.
type Digest string

// Sum returns the digest of b.
func Sum(b []byte) Digest {
	h := sha256.Sum256(b)
	return Digest(prefix + hex.EncodeToString(h[:]))
}

// Validate reports whether d is well formed.
func (d Digest) Validate() error {
	s, ok := strings.CutPrefix(string(d), prefix)
	if !ok || len(s) != 64 {
		return fmt.Errorf("%w: %q", ErrDigest, d)
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: %q", ErrDigest, d)
		}
	}
	return nil
}

func (d Digest) hex() string { return strings.TrimPrefix(string(d), prefix) }

// Store keeps immutable blobs by digest. Implementations are safe for concurrent use.
type Store interface {
	// Put stores the bytes of r and returns their digest and length. Storing bytes that
	// are already present is cheap and returns the same digest.
	Put(ctx context.Context, r io.Reader) (Digest, int64, error)
	// Open returns the blob; the reader fails with ErrCorrupt at EOF when the bytes do
	// not match d.
	Open(ctx context.Context, d Digest) (io.ReadCloser, error)
	// Delete removes the blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, d Digest) error
}

// ReadAll reads and verifies a whole blob.
func ReadAll(ctx context.Context, s Store, d Digest) ([]byte, error) {
	rc, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Disk stores blobs as files under root/sha256/<first two hex digits>/<hex>.
type Disk struct {
	root string
}

var _ Store = (*Disk)(nil)

// NewDisk returns a Disk rooted at root, creating the directory.
func NewDisk(root string) (*Disk, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	return &Disk{root: root}, nil
}

// Path is where the blob d lives on disk.
func (s *Disk) Path(d Digest) string {
	h := d.hex()
	return filepath.Join(s.root, "sha256", h[:2], h)
}

// Put implements Store: it writes to a temporary file, syncs it and renames it into
// place, so a crash never leaves a partial blob under a valid name.
func (s *Disk) Put(ctx context.Context, r io.Reader) (Digest, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("artifact: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("artifact: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("artifact: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("artifact: close: %w", err)
	}
	d := Digest(prefix + hex.EncodeToString(h.Sum(nil)))
	dst := s.Path(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, fmt.Errorf("artifact: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("artifact: rename: %w", err)
	}
	return d, n, nil
}

// Has reports whether the blob d is stored.
func (s *Disk) Has(ctx context.Context, d Digest) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, err
	}
	_, err := os.Stat(s.Path(d))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("artifact: %w", err)
	}
	return true, nil
}

// SumReader returns the digest of the bytes of r.
func SumReader(r io.Reader) (Digest, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return Digest(prefix + hex.EncodeToString(h.Sum(nil))), nil
}

// Open implements Store.
func (s *Disk) Open(ctx context.Context, d Digest) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	return &verifier{f: f, h: sha256.New(), want: d}, nil
}

// Delete implements Store.
func (s *Disk) Delete(ctx context.Context, d Digest) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("artifact: %w", err)
	}
	return nil
}

// verifier hashes what is read and checks the digest at EOF.
type verifier struct {
	f    *os.File
	h    hash.Hash
	want Digest
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.hex() {
			return n, fmt.Errorf("%w: %s has sha256 %s", ErrCorrupt, v.want, got)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.f.Close() }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
