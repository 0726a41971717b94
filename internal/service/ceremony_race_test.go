package service_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/prover"
)

// barrierCeremonies holds each contribution, once verified and before it is recorded,
// until the number of contributions armed has been verified: uploads made from the
// same state are then verified against the same state and race for the store's
// compare-and-swap (without the barrier the second one could also be refused as stale
// by the transcript check, which would leave the swap untested).
type barrierCeremonies struct {
	*service.Ceremonies
	wait atomic.Pointer[sync.WaitGroup]
}

func (b *barrierCeremonies) Contribute(ctx context.Context, dir, upload, name string) (api.ContributionView, error) {
	v, err := b.Ceremonies.Contribute(ctx, dir, upload, name)
	if wg := b.wait.Load(); wg != nil {
		wg.Done()
		wg.Wait()
	}
	return v, err
}

// ceremonyServer is one service process of the race test.
type ceremonyServer struct {
	*env
	cer *barrierCeremonies
}

func newCeremonyServer(t *testing.T, cfg service.Config) ceremonyServer {
	cer := &barrierCeremonies{Ceremonies: &service.Ceremonies{Ptau: "../../srs/testdata/pot9.ptau", SRSCache: t.TempDir()}}
	cfg = fastConfig(cfg, &engine.Engine{})
	cfg.Ceremonies = cer
	return ceremonyServer{env: newEnv(t, cfg), cer: cer}
}

// TestCeremonyConcurrentContributions uploads two contributions made from the same
// state at once, to one server (both stores) and to two servers sharing one Postgres
// database and blob store but not their working directories: exactly one is accepted,
// the other gets 409 stale_ceremony_state, and the accepted one is what every server
// serves afterwards (transcript and state); the loser contributes again from the new
// state, the ceremony is sealed and its keys prove, with their provenance in the views.
func TestCeremonyConcurrentContributions(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, a, b ceremonyServer) {
		k := a.newKey("coordinator").Key
		m, j := a.upload(k, onnx, "")
		if got := a.wait(k, j, 60*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		base := "/v1/models/" + m + "/ceremony"
		a.want(a.do("POST", base, k, nil), 201)
		state := b.want(b.do("GET", base+"/state", k, nil), 200).body
		contribution := func(state []byte) ([]byte, string) {
			var next bytes.Buffer
			hash, err := prover.Contribute(bytes.NewReader(state), &next)
			if err != nil {
				t.Fatal(err)
			}
			return next.Bytes(), hash
		}
		x, xHash := contribution(state)
		y, yHash := contribution(state)
		blobs := filepath.Join(a.cfg.DataDir, "blobs")
		before := blobSet(t, blobs)

		var wg sync.WaitGroup
		wg.Add(2)
		a.cer.wait.Store(&wg)
		b.cer.wait.Store(&wg)
		servers := []ceremonyServer{a, b}
		uploads := [][]byte{x, y}
		results := make([]resp, 2)
		var done sync.WaitGroup
		for i := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				results[i] = servers[i].do("POST", base+"/contributions?name=racer"+string(rune('1'+i)), k, bytes.NewReader(uploads[i]),
					"Content-Type", "application/octet-stream")
			}()
		}
		done.Wait()
		a.cer.wait.Store(nil)
		b.cer.wait.Store(nil)
		winner, loser := 0, 1
		if results[0].status != 201 {
			winner, loser = 1, 0
		}
		if results[winner].status != 201 || results[loser].status != 409 || results[loser].code(t) != "stale_ceremony_state" {
			t.Fatalf("concurrent uploads: %d %s / %d %s", results[0].status, results[0].body, results[1].status, results[1].body)
		}
		wantHash := []string{xHash, yHash}[winner]
		// The loser's upload was stored in the blob store before the swap; it must be
		// gone, with nothing else of its step left behind, while the winner's stays.
		ctx := context.Background()
		if _, err := artifact.ReadAll(ctx, a.app.Blobs, artifact.Sum(uploads[loser])); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("the losing contribution's blob is still stored (read: %v)", err)
		}
		if _, err := artifact.ReadAll(ctx, a.app.Blobs, artifact.Sum(uploads[winner])); err != nil {
			t.Errorf("the accepted contribution's blob: %v", err)
		}
		checkNewBlobsReferenced(t, a.env, blobs, m, before)
		for _, s := range servers {
			var cv api.CeremonyView
			s.want(s.do("GET", base, k, nil), 200).json(t, &cv)
			if len(cv.Contributions) != 1 || cv.Contributions[0].Hash != wantHash {
				t.Fatalf("transcript after the race: %+v (winner %s)", cv.Contributions, wantHash)
			}
			if got := s.want(s.do("GET", base+"/state", k, nil), 200).body; !bytes.Equal(got, uploads[winner]) {
				t.Fatal("a server serves another state than the accepted contribution")
			}
			var mv api.ModelView
			s.want(s.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
			if mv.Ceremony == nil || mv.Ceremony.Contributions != 1 || mv.Ceremony.Head != wantHash || mv.Ceremony.Sealed {
				t.Fatalf("model ceremony head %+v", mv.Ceremony)
			}
		}
		// The stale upload again (now caught by the transcript check): still 409.
		if r := servers[loser].do("POST", base+"/contributions?name=late", k, bytes.NewReader(uploads[loser])); r.status != 409 || r.code(t) != "stale_ceremony_state" {
			t.Fatalf("stale upload after the race: %d %s", r.status, r.body)
		}
		// The loser contributes again from the current state, on its own server.
		again, againHash := contribution(servers[loser].want(servers[loser].do("GET", base+"/state", k, nil), 200).body)
		var c api.ContributionView
		servers[loser].want(servers[loser].do("POST", base+"/contributions?name=again", k, bytes.NewReader(again)), 201).json(t, &c)
		if c.Index != 2 || c.Hash != againHash {
			t.Fatalf("second contribution %+v", c)
		}
		var cv api.CeremonyView
		servers[winner].want(servers[winner].do("POST", base+"/seal", k, bytes.NewReader([]byte(`{"beacon":"00ff00ff"}`))), 200).json(t, &cv)
		for _, s := range servers {
			var mv api.ModelView
			s.want(s.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
			p := mv.Trust["groth16"]
			if p.Trust != api.TrustCeremony || p.Beacon != "00ff00ff" || p.Ptau == nil || p.Ptau.Power != 9 || len(p.Ptau.BLAKE2b) != 128 ||
				len(p.Contributions) != 2 || p.Contributions[0].Hash != wantHash || p.Contributions[1].Hash != againHash ||
				p.Contributions[1].Name != "again" || mv.Ceremony == nil || !mv.Ceremony.Sealed {
				t.Fatalf("model trust after seal: %+v (ceremony %+v)", p, mv.Ceremony)
			}
		}
		var pj api.JobView
		b.want(b.prove(k, m, `{"input":{"input_data":[[-0.4,2.5,0.6]]}}`), 202).json(t, &pj)
		got := b.wait(k, pj.ID, 120*time.Second)
		if got.Status != "succeeded" {
			t.Fatalf("prove with the ceremony's keys: %+v", got)
		}
		var pv api.ProofView
		a.want(a.do("GET", "/v1/proofs/"+got.ProofID, k, nil), 200).json(t, &pv)
		if pv.Trust.Trust != api.TrustCeremony || len(pv.Trust.Contributions) != 2 || pv.Trust.Beacon != "00ff00ff" {
			t.Fatalf("proof trust %+v", pv.Trust)
		}
		r := a.want(a.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k, nil), 200)
		if r.header.Get(api.TrustHeader) != api.TrustCeremony || r.header.Get("Warning") != "" {
			t.Fatalf("verifier download headers %v", r.header)
		}
	}
	t.Run("one server", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, bk backend) {
			s := newCeremonyServer(t, bk.cfg(t))
			run(t, s, s)
		})
	})
	t.Run("two servers on one postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs PostgreSQL; skipped with -short")
		}
		var pg backend
		for _, bk := range backends(t) {
			if bk.name == "postgres" {
				pg = bk
			}
		}
		cfgA := pg.cfg(t)
		cfgB := cfgA
		// Another machine: its own data directory (working directories), the same blob
		// store (a shared volume) and database.
		cfgB.DataDir = t.TempDir()
		if err := os.MkdirAll(filepath.Join(cfgA.DataDir, "blobs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(cfgA.DataDir, "blobs"), filepath.Join(cfgB.DataDir, "blobs")); err != nil {
			t.Fatal(err)
		}
		a := newCeremonyServer(t, cfgA)
		b := newCeremonyServer(t, cfgB)
		run(t, a, b)
	})
}

// blobSet lists the digests of the blobs stored under root.
func blobSet(t *testing.T, root string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, "sha256"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			set["sha256:"+d.Name()] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// checkNewBlobsReferenced fails if the blob store under root holds a blob, not in
// before, that model id's manifest does not reference: what a refused or losing
// request stored and nothing cleans up.
func checkNewBlobsReferenced(t *testing.T, e *env, root, id string, before map[string]bool) {
	t.Helper()
	m, err := e.app.Store.GetModel(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]bool{m.ONNXDigest: true}
	for _, d := range m.Files {
		ref[d] = true
	}
	for d := range blobSet(t, root) {
		if !before[d] && !ref[d] {
			t.Errorf("blob %s, stored since, is referenced by no file of model %s", d, id)
		}
	}
}

// barrierOpens holds each ceremony open, once made and before it is recorded, until
// two have been made, so that they race for the store's compare-and-swap.
type barrierOpens struct {
	*service.Ceremonies
	wg sync.WaitGroup
}

func (b *barrierOpens) Open(ctx context.Context, dir string) (api.CeremonyView, error) {
	v, err := b.Ceremonies.Open(ctx, dir)
	b.wg.Done()
	b.wg.Wait()
	return v, err
}

// TestCeremonyConcurrentOpens opens a model's ceremony twice at once. Opening is
// deterministic, so both requests store the same blobs: the loser, removing what it
// stored, must not remove what the winner's recorded step references.
func TestCeremonyConcurrentOpens(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, bk backend) {
		cer := &barrierOpens{Ceremonies: &service.Ceremonies{Ptau: "../../srs/testdata/pot9.ptau", SRSCache: t.TempDir()}}
		cfg := fastConfig(bk.cfg(t), &engine.Engine{})
		cfg.Ceremonies = cer
		e := newEnv(t, cfg)
		k := e.newKey("coordinator").Key
		m, j := e.upload(k, onnx, "")
		if got := e.wait(k, j, 60*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		cer.wg.Add(2)
		codes := make([]int, 2)
		var done sync.WaitGroup
		for i := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				codes[i] = e.do("POST", "/v1/models/"+m+"/ceremony", k, nil).status
			}()
		}
		done.Wait()
		if !(codes[0] == 201 && codes[1] == 409 || codes[0] == 409 && codes[1] == 201) {
			t.Fatalf("concurrent opens answered %v", codes)
		}
		ctx := context.Background()
		got, err := e.app.Store.GetModel(ctx, "", m)
		if err != nil {
			t.Fatal(err)
		}
		for p, d := range got.Files {
			if _, err := artifact.ReadAll(ctx, e.app.Blobs, artifact.Digest(d)); err != nil {
				t.Errorf("%s, recorded by the winning open: %v", p, err)
			}
		}
		// A worker with an empty working directory restores the opened ceremony.
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, "work", "models", m)); err != nil {
			t.Fatal(err)
		}
		e.want(e.do("GET", "/v1/models/"+m+"/ceremony/state", k, nil), 200)
	})
}
