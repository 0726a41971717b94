package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/internal/artifact"
)

func TestDiskRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, err := artifact.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("onnx model bytes")
	d, n, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d != artifact.Sum(data) || n != int64(len(data)) {
		t.Fatalf("Put = %s, %d; want %s, %d", d, n, artifact.Sum(data), len(data))
	}
	// Storing the same bytes again is idempotent.
	if d2, _, err := s.Put(ctx, bytes.NewReader(data)); err != nil || d2 != d {
		t.Fatalf("second Put = %s, %v", d2, err)
	}
	got, err := artifact.ReadAll(ctx, s, d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, d); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("Open after Delete: err = %v", err)
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatalf("Delete of a missing blob: %v", err)
	}
}

func TestDiskDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s, err := artifact.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.Put(ctx, strings.NewReader("proving key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path(d), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(d), []byte("proving kez"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.ReadAll(ctx, s, d); !errors.Is(err, artifact.ErrCorrupt) {
		t.Fatalf("ReadAll of a corrupted blob: err = %v, want ErrCorrupt", err)
	}
}

func TestDigestValidate(t *testing.T) {
	for _, tc := range []struct {
		d  artifact.Digest
		ok bool
	}{
		{artifact.Sum(nil), true},
		{"sha256:../../etc/passwd", false},
		{"md5:00", false},
		{artifact.Digest(strings.ToUpper(string(artifact.Sum(nil)))), false},
	} {
		if err := tc.d.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.d, err, tc.ok)
		}
	}
}

func TestSnapshotMaterialize(t *testing.T) {
	ctx := context.Background()
	s, err := artifact.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := map[string]string{"circuit.bin": "circuit", "keys/groth16.pk": "proving key", "keys/groth16.vk": "vk"}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := artifact.Snapshot(ctx, s, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["keys/groth16.pk"] != artifact.Sum([]byte("proving key")) {
		t.Fatalf("manifest = %v", m)
	}
	dst := t.TempDir()
	if err := artifact.Materialize(ctx, s, m, dst); err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || string(got) != c {
			t.Fatalf("%s = %q, %v", p, got, err)
		}
	}
	// A truncated local file is replaced; a corrupted blob is refused.
	if err := os.WriteFile(filepath.Join(dst, "keys/groth16.pk"), []byte("pro"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := artifact.Materialize(ctx, s, m, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "keys/groth16.pk")); string(got) != "proving key" {
		t.Fatalf("repaired file = %q", got)
	}
	// So is a small file of the right size but other content (metadata that another
	// process rewrote, e.g. a ceremony's state.json): small files are compared by hash.
	if err := os.WriteFile(filepath.Join(dst, "keys/groth16.pk"), []byte("PROVING KEY"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := artifact.Materialize(ctx, s, m, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "keys/groth16.pk")); string(got) != "proving key" {
		t.Fatalf("stale file of the same size = %q", got)
	}
	if err := os.WriteFile(s.Path(m["circuit.bin"]), []byte("CIRCUIT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := artifact.Materialize(ctx, s, m, t.TempDir()); !errors.Is(err, artifact.ErrCorrupt) {
		t.Fatalf("corrupted blob: err = %v, want ErrCorrupt", err)
	}
	if err := artifact.Materialize(ctx, s, artifact.Manifest{"../evil": m["circuit.bin"]}, dst); err == nil {
		t.Fatal("manifest path escaping the directory accepted")
	}
}
