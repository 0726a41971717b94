package service_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/internal/store"
)

// failingJobs is a store whose CreateJob fails, as when the database goes away, or the
// client hangs up, between recording an upload's model and its compile job.
type failingJobs struct{ store.Store }

func (failingJobs) CreateJob(ctx context.Context, j *store.Job) (*store.Job, bool, error) {
	return nil, false, errors.New("database went away")
}

// TestUploadWithoutCompileJobFailsModel uploads a model whose compile job cannot be
// recorded: the request fails, and the model it recorded must not stay "compiling"
// forever with no job to compile it.
func TestUploadWithoutCompileJobFailsModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		a := startApp(t, cfg, false)
		srv := httptest.NewServer(api.New(api.Config{Store: failingJobs{a.Store}, Queue: a.Processor, Engine: cfg.Engine,
			Blobs: a.Blobs, Workspaces: a.Processor.Workspaces, AdminKey: adminKey, Logger: cfg.Logger}))
		t.Cleanup(srv.Close)
		e := &env{t: t, app: a, srv: srv, cfg: cfg}
		k := e.newKey("owner").Key
		r := e.do("POST", "/v1/models", k, jsonBody(map[string]string{"onnx": "b25ueC10aW55LW1vZGVs"}))
		if r.status < 500 {
			t.Fatalf("upload whose compile job is not recorded: %d %s", r.status, r.body)
		}
		models, err := a.Store.ListModels(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range models {
			if m.Status == store.ModelCompiling {
				t.Errorf("model %s stays %s with no compile job", m.ID, m.Status)
			}
		}
	})
}

// failAfterCompile compiles for real (writing the model directory) and then fails, as
// a compile that runs out of its budget or time in its last system does.
type failAfterCompile struct{ *engine.Engine }

func (f failAfterCompile) Compile(ctx context.Context, dir string, onnx []byte, settings []byte) (api.ModelInfo, error) {
	if _, err := f.Engine.Compile(ctx, dir, onnx, settings); err != nil {
		return api.ModelInfo{}, err
	}
	return api.ModelInfo{}, fmt.Errorf("%w: plonk: unsupported after all", api.ErrInvalidModel)
}

// TestFailedCompileLeavesNoWorkspace fails a compile job after the engine wrote the
// model's working directory (source, settings, a circuit): the model is failed for
// good, so nothing will use the directory again, and it must not stay on disk.
func TestFailedCompileLeavesNoWorkspace(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(service.Config{DataDir: t.TempDir()}, failAfterCompile{&engine.Engine{}})
	e := newEnv(t, cfg)
	k := e.newKey("owner").Key
	m, j := e.upload(k, onnx, "")
	if got := e.wait(k, j, 60*time.Second); got.Status != "failed" {
		t.Fatalf("compile: %+v", got)
	}
	// The worker removes the directory right after it records the failure (a job taken
	// over by another attempt keeps it): the job reads failed a moment before, which
	// a loaded machine stretches (a fresh-clone CI run saw the directory still there).
	dir := filepath.Join(cfg.DataDir, "work", "models", m)
	deadline := time.Now().Add(15 * time.Second)
	for {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed model's working directory is left behind (%d entries, %v)", len(entries), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSnapshotDropsDeadWritersTempFiles leaves in a model's working directory the
// temporary file of a write whose process was killed (a setup past its timeout is
// killed with its child) and runs a setup: the snapshot must neither store the
// leftover in the blob store nor record it among the model's files (every worker
// would fetch it), and the leftover is removed.
func TestSnapshotDropsDeadWritersTempFiles(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(service.Config{DataDir: t.TempDir()}, &engine.Engine{})
	e := newEnv(t, cfg)
	k := e.newKey("owner").Key
	m, j := e.upload(k, onnx, "")
	if got := e.wait(k, j, 60*time.Second); got.Status != "succeeded" {
		t.Fatalf("compile: %+v", got)
	}
	leftover := filepath.Join(cfg.DataDir, "work", "models", m, ".tmp-pk.groth16.bin3141592")
	junk := []byte("the first bytes of a proving key whose writer was killed")
	if err := os.WriteFile(leftover, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	var sj api.JobView
	e.want(e.do("POST", "/v1/models/"+m+"/setup", k, jsonBody(map[string]string{"system": "groth16"})), 202).json(t, &sj)
	if got := e.wait(k, sj.ID, 60*time.Second); got.Status != "succeeded" {
		t.Fatalf("setup: %+v", got)
	}
	stored, err := e.app.Store.GetModel(context.Background(), "", m)
	if err != nil {
		t.Fatal(err)
	}
	for p := range stored.Files {
		if strings.HasPrefix(filepath.Base(p), ".") {
			t.Errorf("the model's files record the leftover %s", p)
		}
	}
	if _, err := artifact.ReadAll(context.Background(), e.app.Blobs, artifact.Sum(junk)); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("the leftover was stored in the blob store (%v)", err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the leftover is still in the working directory (%v)", err)
	}
}
