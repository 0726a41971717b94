package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/prover"
)

// barrierSetups holds each setup, once its keys are made and before its job records
// them, until the number armed have been made (or a timeout passes), so that setups
// of one model run at the same time on different workers.
type barrierSetups struct {
	*engine.Engine
	mu   sync.Mutex
	wait *sync.WaitGroup
}

func (b *barrierSetups) Setup(ctx context.Context, dir, system string) (api.Provenance, error) {
	p, err := b.Engine.Setup(ctx, dir, system)
	b.mu.Lock()
	wg := b.wait
	b.mu.Unlock()
	if wg != nil {
		wg.Done()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
	return p, err
}

// storedManifest is the prover manifest (manifest.json) the model's stored files
// record: what a worker restores the model's directory from.
func storedManifest(t *testing.T, a *service.App, id string) map[string]any {
	t.Helper()
	ctx := context.Background()
	m, err := a.Store.GetModel(ctx, "", id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := artifact.ReadAll(ctx, a.Blobs, artifact.Digest(m.Files["manifest.json"]))
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Files map[string]any `json:"files"`
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	return man.Files
}

// TestConcurrentSetupsAcrossWorkers sets up a model's Groth16 and PLONK keys at once
// on two workers: of one process (one working directory, both stores), of two
// processes sharing a data directory, and of two machines that share the database and
// the blob store but not their working directories. The model's stored manifest must
// list both systems' keys afterwards, and each system proves on each worker.
func TestConcurrentSetupsAcrossWorkers(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, eng *barrierSetups, a, b *env) {
		k := a.newKey("owner").Key
		m, j := a.upload(k, onnx, "")
		if got := a.wait(k, j, 60*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		eng.mu.Lock()
		eng.wait = &wg
		eng.mu.Unlock()
		var jobs []string
		for _, sys := range []string{"groth16", "plonk"} {
			var sj api.JobView
			a.want(a.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"`+sys+`"}`)), 202).json(t, &sj)
			jobs = append(jobs, sj.ID)
		}
		for _, id := range jobs {
			if got := a.wait(k, id, 60*time.Second); got.Status != "succeeded" {
				t.Fatalf("setup: %+v", got)
			}
		}
		files := storedManifest(t, a.app, m)
		for _, name := range []string{"pk.groth16.bin", "vk.groth16.bin", "pk.plonk.bin", "vk.plonk.bin"} {
			if _, ok := files[name]; !ok {
				t.Errorf("the stored manifest does not list %s after concurrent setups", name)
			}
		}
		for _, e := range []*env{a, b} {
			for _, sys := range []string{"groth16", "plonk"} {
				var pj api.JobView
				e.want(e.prove(k, m, `{"system":"`+sys+`","input":{"input_data":[[-0.4,2.5,0.6]]}}`), 202).json(t, &pj)
				if got := e.wait(k, pj.ID, 60*time.Second); got.Status != "succeeded" {
					t.Errorf("prove %s after concurrent setups: %+v", sys, got)
				}
			}
		}
	}
	t.Run("one process", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, bk backend) {
			eng := &barrierSetups{Engine: &engine.Engine{}}
			cfg := fastConfig(bk.cfg(t), eng)
			cfg.Workers = 2
			e := newEnv(t, cfg)
			run(t, eng, e, e)
		})
	})
	twoWorkers := func(t *testing.T, ownDataDir bool) {
		if testing.Short() {
			t.Skip("needs PostgreSQL; skipped with -short")
		}
		var pg backend
		for _, bk := range backends(t) {
			if bk.name == "postgres" {
				pg = bk
			}
		}
		eng := &barrierSetups{Engine: &engine.Engine{}}
		cfgA := fastConfig(pg.cfg(t), eng)
		cfgA.Workers = 1 // the barrier then holds each setup on its own worker
		cfgB := cfgA
		if ownDataDir {
			cfgB.DataDir = t.TempDir()
			if err := os.MkdirAll(filepath.Join(cfgA.DataDir, "blobs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(cfgA.DataDir, "blobs"), filepath.Join(cfgB.DataDir, "blobs")); err != nil {
				t.Fatal(err)
			}
		}
		run(t, eng, newEnv(t, cfgA), newEnv(t, cfgB))
	}
	t.Run("two processes, one data directory", func(t *testing.T) { twoWorkers(t, false) })
	t.Run("two machines", func(t *testing.T) { twoWorkers(t, true) })
}

// sealHook runs hook after a seal has made its keys and before the API records them.
type sealHook struct {
	*service.Ceremonies
	hook func()
}

func (s *sealHook) Seal(ctx context.Context, dir, beacon string) (api.CeremonyView, api.Provenance, error) {
	v, p, err := s.Ceremonies.Seal(ctx, dir, beacon)
	if err == nil && s.hook != nil {
		s.hook()
	}
	return v, p, err
}

// TestSealKeepsConcurrentSetup seals a model's Groth16 ceremony while its PLONK setup
// finishes (between the seal making its keys and recording them): the PLONK keys must
// stay listed, locally and in the stored manifest, and both systems prove.
func TestSealKeepsConcurrentSetup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
		if err != nil {
			t.Fatal(err)
		}
		cer := &sealHook{Ceremonies: &service.Ceremonies{Ptau: "../../srs/testdata/pot9.ptau", SRSCache: t.TempDir()}}
		cfg := fastConfig(bk.cfg(t), &engine.Engine{})
		cfg.Ceremonies = cer
		e := newEnv(t, cfg)
		k := e.newKey("owner").Key
		m, j := e.upload(k, onnx, "")
		if got := e.wait(k, j, 60*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		base := "/v1/models/" + m + "/ceremony"
		e.want(e.do("POST", base, k, nil), 201)
		var next bytes.Buffer
		if _, err := prover.Contribute(bytes.NewReader(e.want(e.do("GET", base+"/state", k, nil), 200).body), &next); err != nil {
			t.Fatal(err)
		}
		e.want(e.do("POST", base+"/contributions?name=alice", k, &next, "Content-Type", "application/octet-stream"), 201)
		cer.hook = func() {
			var sj api.JobView
			e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"plonk"}`)), 202).json(t, &sj)
			if got := e.wait(k, sj.ID, 60*time.Second); got.Status != "succeeded" {
				t.Errorf("plonk setup: %+v", got)
			}
		}
		e.want(e.do("POST", base+"/seal", k, strings.NewReader(`{"beacon":"00ff00ff"}`)), 200)
		files := storedManifest(t, e.app, m)
		for _, name := range []string{"pk.groth16.bin", "vk.groth16.bin", "pk.plonk.bin", "vk.plonk.bin"} {
			if _, ok := files[name]; !ok {
				t.Errorf("the stored manifest does not list %s after a seal and a setup at once", name)
			}
		}
		for _, sys := range []string{"groth16", "plonk"} {
			var pj api.JobView
			e.want(e.prove(k, m, `{"system":"`+sys+`","input":{"input_data":[[-0.4,2.5,0.6]]}}`), 202).json(t, &pj)
			if got := e.wait(k, pj.ID, 60*time.Second); got.Status != "succeeded" {
				t.Errorf("prove %s after a seal and a setup at once: %+v", sys, got)
			}
		}
	})
}
