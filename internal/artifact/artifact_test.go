package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"os"
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
