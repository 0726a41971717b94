package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestWorkspaceKeepsNewerLocalManifest restores a model directory from a snapshot
// taken before its keys were made (another job's setup on this machine has made them
// and not yet snapshotted them): the restore must not put the older manifest back
// over the newer one, which would unlist the keys.
func TestWorkspaceKeepsNewerLocalManifest(t *testing.T) {
	ctx := context.Background()
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := artifact.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := jobs.Workspaces{Root: t.TempDir(), Blobs: blobs}
	const id = "mdl_test"
	dir := filepath.Join(ws.Root, "models", id)
	m, err := prover.Create(dir, onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compile(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	snap, err := artifact.Snapshot(ctx, blobs, dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for p, d := range snap {
		files[p] = string(d)
	}
	if err := m.Setup(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	got, err := ws.Dir(ctx, &store.Model{ID: id, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := prover.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"pk", "vk"} {
		if !reopened.Has(kind, circuits.Groth16) {
			t.Errorf("%s.groth16 is no longer listed after restoring the directory from an older snapshot", kind)
		}
	}
	if _, err := reopened.ProvingKey(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	// A damaged file that the snapshot has is still restored.
	if err := os.WriteFile(filepath.Join(dir, "circuit.groth16.bin"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Dir(ctx, &store.Model{ID: id, Files: files}); err != nil {
		t.Fatal(err)
	}
	if reopened, err = prover.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.ReadArtifact("circuit.groth16.bin"); err != nil {
		t.Fatalf("damaged circuit not restored: %v", err)
	}
	// So is a damaged manifest (the snapshot's: the keys made since are not in it).
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"version": 1, "fil`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Dir(ctx, &store.Model{ID: id, Files: files}); err != nil {
		t.Fatal(err)
	}
	if reopened, err = prover.Open(dir); err != nil {
		t.Fatalf("damaged manifest not restored: %v", err)
	}
	if !reopened.Has("circuit", circuits.Groth16) {
		t.Fatal("the restored manifest does not list the circuit")
	}
}
