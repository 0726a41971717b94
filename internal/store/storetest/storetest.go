// Package storetest is the conformance suite every store.Store implementation must
// pass, in the style of River's riverdrivertest: each implementation's tests call Run
// with a constructor for a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/postgres"
)

// DefaultPostgresDSN is used when ZKML_TEST_DATABASE_URL is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN returns the test database URL and a fresh schema name that is dropped
// when t ends. It skips t under -short.
func PostgresDSN(t testing.TB) (dsn, schema string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	dsn = os.Getenv("ZKML_TEST_DATABASE_URL")
	if dsn == "" {
		dsn = DefaultPostgresDSN
	}
	schema = fmt.Sprintf("zkmltest_%d_%s", os.Getpid(), store.NewID("s")[2:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.DropSchema(ctx, dsn, schema); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

// Run runs the conformance suite; newStore returns an empty, migrated store that the
// suite closes.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := context.Background()
	setup := func(t *testing.T) (store.Store, *store.APIKey, *store.Model) {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		k := mkKey(t, s, "alice")
		m := mkModel(t, s, k.ID)
		return s, k, m
	}

	t.Run("APIKeys", func(t *testing.T) {
		s := newStore(t)
		defer s.Close()
		k := mkKey(t, s, "alice")
		got, err := s.APIKeyByHash(ctx, k.Hash)
		must(t, err)
		if got.ID != k.ID || got.Name != "alice" || got.WebhookSecret != k.WebhookSecret || got.CreatedAt.IsZero() {
			t.Fatalf("APIKeyByHash = %+v, want %+v", got, k)
		}
		mkKey(t, s, "bob")
		keys, err := s.ListAPIKeys(ctx)
		must(t, err)
		if len(keys) != 2 {
			t.Fatalf("ListAPIKeys: %d keys, want 2", len(keys))
		}
		must(t, s.RevokeAPIKey(ctx, k.ID))
		if _, err := s.APIKeyByHash(ctx, k.Hash); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked key: err = %v, want ErrNotFound", err)
		}
		if err := s.RevokeAPIKey(ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second revoke: err = %v, want ErrNotFound", err)
		}
		got, err = s.GetAPIKey(ctx, k.ID)
		must(t, err)
		if got.RevokedAt == nil {
			t.Fatal("GetAPIKey: RevokedAt not set")
		}
	})

	t.Run("Models", func(t *testing.T) {
		s, k, m := setup(t)
		other := mkKey(t, s, "mallory")
		got, err := s.GetModel(ctx, k.ID, m.ID)
		must(t, err)
		if got.Name != m.Name || got.Status != store.ModelCompiling || got.ONNXDigest != m.ONNXDigest ||
			!jsonEq(got.Settings, `{"scale":7}`) || len(got.Systems) != 0 {
			t.Fatalf("GetModel = %+v", got)
		}
		if _, err := s.GetModel(ctx, other.ID, m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other owner: err = %v, want ErrNotFound", err)
		}
		if _, err := s.GetModel(ctx, "", m.ID); err != nil {
			t.Fatalf("any owner: %v", err)
		}
		list, err := s.ListModels(ctx, other.ID)
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("other owner lists %d models", len(list))
		}

		got.Status = store.ModelCompiled
		got.EngineModelID = "eng1"
		got.Constraints = map[string]int{"groth16": 100, "plonk": 300}
		got.Inputs = [][]int{{1, 4}}
		got.Outputs = [][]int{{1, 2}}
		got.Stats = json.RawMessage(`{"layers":3}`)
		must(t, s.SetModelCompiled(ctx, got))

		var wg sync.WaitGroup
		for _, sys := range []string{"groth16", "plonk", "groth16"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.AddModelSystem(ctx, m.ID, sys, json.RawMessage(`{"trust":"development","system":"`+sys+`"}`)); err != nil {
					t.Errorf("AddModelSystem(%s): %v", sys, err)
				}
			}()
		}
		for _, files := range []map[string]string{{"circuit.bin": "sha256:1"}, {"g.pk": "sha256:2"}, {"circuit.bin": "sha256:3"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.MergeModelFiles(ctx, m.ID, files); err != nil {
					t.Errorf("MergeModelFiles: %v", err)
				}
			}()
		}
		wg.Wait()
		got, err = s.GetModel(ctx, k.ID, m.ID)
		must(t, err)
		if len(got.Files) != 2 || got.Files["g.pk"] != "sha256:2" || got.Files["circuit.bin"] == "" {
			t.Fatalf("Files = %v", got.Files)
		}
		// UpdateModelFiles is a read-modify-write no other one interleaves with: each
		// adds one to a counter kept in the manifest, and none is lost.
		const updaters = 8
		for range updaters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.UpdateModelFiles(ctx, m.ID, func(cur map[string]string) (map[string]string, error) {
					n := 0
					fmt.Sscanf(cur["counter"], "sha256:%d", &n)
					return map[string]string{"counter": fmt.Sprintf("sha256:%d", n+1)}, nil
				})
				if err != nil {
					t.Errorf("UpdateModelFiles: %v", err)
				}
			}()
		}
		wg.Wait()
		failed := errors.New("refused")
		if err := s.UpdateModelFiles(ctx, m.ID, func(cur map[string]string) (map[string]string, error) {
			cur["g.pk"] = "sha256:changed by the callback"
			return map[string]string{"counter": "sha256:0"}, failed
		}); !errors.Is(err, failed) {
			t.Fatalf("UpdateModelFiles whose callback fails: %v", err)
		}
		got, err = s.GetModel(ctx, k.ID, m.ID)
		must(t, err)
		if got.Files["counter"] != fmt.Sprintf("sha256:%d", updaters) || got.Files["g.pk"] != "sha256:2" || len(got.Files) != 3 {
			t.Fatalf("after %d concurrent UpdateModelFiles and a failed one: Files = %v", updaters, got.Files)
		}
		if got.Status != store.ModelCompiled || got.Constraints["plonk"] != 300 || got.Inputs[0][1] != 4 ||
			!jsonEq(got.Stats, `{"layers":3}`) || !got.HasSystem("groth16") || !got.HasSystem("plonk") || len(got.Systems) != 2 {
			t.Fatalf("after compile and setup: %+v", got)
		}
		if len(got.Provenance) != 2 || !jsonEq(got.Provenance["plonk"], `{"trust":"development","system":"plonk"}`) ||
			!jsonEq(got.Provenance["groth16"], `{"trust":"development","system":"groth16"}`) {
			t.Fatalf("Provenance = %s", got.Provenance)
		}
		// Keys are made once: a later record for the same system does not replace the first.
		must(t, s.AddModelSystem(ctx, m.ID, "plonk", json.RawMessage(`{"trust":"universal-srs"}`)))
		got, err = s.GetModel(ctx, k.ID, m.ID)
		must(t, err)
		if !jsonEq(got.Provenance["plonk"], `{"trust":"development","system":"plonk"}`) {
			t.Fatalf("Provenance after a second record = %s", got.Provenance["plonk"])
		}

		if err := s.DeleteModel(ctx, other.ID, m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete by other owner: err = %v", err)
		}
		must(t, s.DeleteModel(ctx, k.ID, m.ID))
		if _, err := s.GetModel(ctx, k.ID, m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted model: err = %v", err)
		}
		list, err = s.ListModels(ctx, k.ID)
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("deleted model still listed")
		}
	})

	t.Run("CeremonyCompareAndSwap", func(t *testing.T) {
		s, k, m := setup(t)
		get := func() *store.Model {
			t.Helper()
			got, err := s.GetModel(ctx, k.ID, m.ID)
			must(t, err)
			return got
		}
		if h := get().Ceremony; h != (store.CeremonyHead{}) {
			t.Fatalf("new model's ceremony head %+v", h)
		}
		open := store.CeremonyHead{Hash: "h0"}
		must(t, s.AdvanceCeremony(ctx, m.ID, store.CeremonyStep{To: open, Files: map[string]string{"c/state.json": "sha256:s0", "c/p0": "sha256:p0"}}))
		// Concurrent steps from the same head: exactly one is recorded, the others
		// conflict and change nothing.
		const n = 8
		var wg sync.WaitGroup
		var won atomic.Int32
		winner := make(chan int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.AdvanceCeremony(ctx, m.ID, store.CeremonyStep{From: open, To: store.CeremonyHead{Contributions: 1, Hash: fmt.Sprint("h1-", i)},
					Files: map[string]string{"c/state.json": fmt.Sprint("sha256:s1-", i), "c/p1": fmt.Sprint("sha256:p1-", i)}})
				switch {
				case err == nil:
					won.Add(1)
					winner <- i
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("AdvanceCeremony: %v", err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d concurrent steps from one head were recorded, want 1", won.Load())
		}
		w := <-winner
		got := get()
		if got.Ceremony != (store.CeremonyHead{Contributions: 1, Hash: fmt.Sprint("h1-", w)}) ||
			got.Files["c/state.json"] != fmt.Sprint("sha256:s1-", w) || got.Files["c/p1"] != fmt.Sprint("sha256:p1-", w) || got.Files["c/p0"] != "sha256:p0" {
			t.Fatalf("after the race (winner %d): head %+v files %v", w, got.Ceremony, got.Files)
		}
		sealed := store.CeremonyHead{Contributions: 1, Hash: got.Ceremony.Hash, Sealed: true}
		seal := store.CeremonyStep{From: got.Ceremony, To: sealed, Files: map[string]string{"g.pk": "sha256:pk"},
			System: "groth16", Provenance: json.RawMessage(`{"trust":"ceremony"}`)}
		must(t, s.AdvanceCeremony(ctx, m.ID, seal))
		if err := s.AdvanceCeremony(ctx, m.ID, seal); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second seal: err = %v, want ErrConflict", err)
		}
		got = get()
		if got.Ceremony != sealed || !got.HasSystem("groth16") || !jsonEq(got.Provenance["groth16"], `{"trust":"ceremony"}`) || got.Files["g.pk"] != "sha256:pk" {
			t.Fatalf("after seal: %+v", got)
		}
		if err := s.AdvanceCeremony(ctx, "mdl_nope", seal); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown model: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("JobLifecycle", func(t *testing.T) {
		s, k, m := setup(t)
		j := mkJob(t, s, k.ID, m.ID, "")
		if j.Status != store.JobQueued {
			t.Fatalf("new job status %s", j.Status)
		}
		must(t, s.AddModelSystem(ctx, m.ID, "groth16", json.RawMessage(`{"trust":"ceremony","beacon":"01"}`)))
		got, err := s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		if got.Status != store.JobRunning || got.Attempt != 1 || got.StartedAt == nil {
			t.Fatalf("StartJob = %+v", got)
		}
		cancel, err := s.Heartbeat(ctx, j.ID, 1, "witness", 0.25, time.Minute)
		must(t, err)
		if cancel {
			t.Fatal("Heartbeat reports cancel without a request")
		}
		if _, err := s.Heartbeat(ctx, j.ID, 2, "x", 0, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Heartbeat of a stale attempt: err = %v, want ErrConflict", err)
		}
		got, err = s.GetJob(ctx, k.ID, j.ID)
		must(t, err)
		if got.Stage != "witness" || got.Progress != 0.25 || !jsonEq(got.Input, `{"input_data":[[1,2]]}`) {
			t.Fatalf("after heartbeat: %+v", got)
		}
		// A live lease keeps the job with its worker; once it runs out (here: renewed for
		// zero time), the job is started again under a new attempt and the old one loses.
		if _, err := s.StartJob(ctx, j.ID, time.Minute); !errors.Is(err, store.ErrLeased) {
			t.Fatalf("StartJob of a leased job: err = %v, want ErrLeased", err)
		}
		_, err = s.Heartbeat(ctx, j.ID, 1, "", 0, 0)
		must(t, err)
		_, err = s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		if _, err := s.FinishJob(ctx, j.ID, 1, store.Finish{Status: store.JobSucceeded}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("FinishJob by stale attempt: err = %v, want ErrConflict", err)
		}
		p := &store.Proof{Proof: []byte{1, 2, 3}, PublicInputs: []string{"1", "42"}, Outputs: [][]float64{{0.5, -1.25}},
			Calldata: []byte{0xca, 0xfe}, ProveSeconds: 1.5}
		done, err := s.FinishJob(ctx, j.ID, 2, store.Finish{Status: store.JobSucceeded, Proof: p})
		must(t, err)
		if done.Status != store.JobSucceeded || done.ProofID == "" || done.FinishedAt == nil || done.Progress != 1 {
			t.Fatalf("FinishJob = %+v", done)
		}
		if _, err := s.FinishJob(ctx, j.ID, 2, store.Finish{Status: store.JobFailed}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second FinishJob: err = %v, want ErrConflict", err)
		}
		if _, err := s.StartJob(ctx, j.ID, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("StartJob of a finished job: err = %v, want ErrConflict", err)
		}
		proof, err := s.GetProof(ctx, k.ID, done.ProofID)
		must(t, err)
		if proof.JobID != j.ID || proof.ModelID != m.ID || proof.System != "groth16" || string(proof.Proof) != "\x01\x02\x03" ||
			len(proof.PublicInputs) != 2 || proof.PublicInputs[1] != "42" || proof.Outputs[0][1] != -1.25 ||
			string(proof.Calldata) != "\xca\xfe" || proof.ProveSeconds != 1.5 || !jsonEq(proof.Provenance, `{"trust":"ceremony","beacon":"01"}`) {
			t.Fatalf("GetProof = %+v", proof)
		}
		other := mkKey(t, s, "mallory")
		if _, err := s.GetProof(ctx, other.ID, done.ProofID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other owner's proof: err = %v", err)
		}
		if _, err := s.GetJob(ctx, other.ID, j.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other owner's job: err = %v", err)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		s, k, m := setup(t)
		a := mkJob(t, s, k.ID, m.ID, "key-1")
		b, created, err := s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID,
			Kind: store.KindProve, System: "groth16", IdempotencyKey: "key-1"})
		must(t, err)
		if created || b.ID != a.ID {
			t.Fatalf("same key: created=%v id=%s, want existing %s", created, b.ID, a.ID)
		}
		other := mkKey(t, s, "bob")
		om := mkModel(t, s, other.ID)
		c := mkJob(t, s, other.ID, om.ID, "key-1")
		if c.ID == a.ID {
			t.Fatal("idempotency keys leak across owners")
		}
		// Concurrent creates with one key yield one job.
		var wg sync.WaitGroup
		ids := make(chan string, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, _, err := s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID,
					Kind: store.KindProve, IdempotencyKey: "key-2"})
				if err != nil {
					t.Errorf("CreateJob: %v", err)
					return
				}
				ids <- j.ID
			}()
		}
		wg.Wait()
		close(ids)
		if seen := distinct(ids); len(seen) != 1 {
			t.Fatalf("concurrent creates with one key made %d jobs", len(seen))
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		s, k, m := setup(t)
		queued := mkJob(t, s, k.ID, m.ID, "")
		got, err := s.CancelJob(ctx, k.ID, queued.ID)
		must(t, err)
		if got.Status != store.JobCancelled || got.FinishedAt == nil {
			t.Fatalf("cancel queued: %+v", got)
		}
		if _, err := s.StartJob(ctx, queued.ID, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("StartJob of a cancelled job: err = %v", err)
		}
		if _, err := s.CancelJob(ctx, k.ID, queued.ID); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("cancel twice: err = %v, want ErrConflict", err)
		}

		running := mkJob(t, s, k.ID, m.ID, "")
		_, err = s.StartJob(ctx, running.ID, time.Minute)
		must(t, err)
		other := mkKey(t, s, "mallory")
		if _, err := s.CancelJob(ctx, other.ID, running.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("cancel by other owner: err = %v", err)
		}
		got, err = s.CancelJob(ctx, k.ID, running.ID)
		must(t, err)
		if got.Status != store.JobRunning || !got.CancelRequested {
			t.Fatalf("cancel running: %+v", got)
		}
		cancel, err := s.Heartbeat(ctx, running.ID, 1, "", 0, time.Minute)
		must(t, err)
		if !cancel {
			t.Fatal("Heartbeat does not report the cancel request")
		}
		done, err := s.FinishJob(ctx, running.ID, 1, store.Finish{Status: store.JobCancelled, ErrorCode: "cancelled"})
		must(t, err)
		if done.Status != store.JobCancelled {
			t.Fatalf("finish cancelled: %+v", done)
		}
	})

	t.Run("RequeueAndCount", func(t *testing.T) {
		s, k, m := setup(t)
		a := mkJob(t, s, k.ID, m.ID, "")
		b := mkJob(t, s, k.ID, m.ID, "")
		_, err := s.StartJob(ctx, a.ID, time.Minute)
		must(t, err)
		counts, err := s.CountJobs(ctx)
		must(t, err)
		if counts[store.JobRunning] != 1 || counts[store.JobQueued] != 1 {
			t.Fatalf("CountJobs = %v", counts)
		}
		if err := s.RequeueJob(ctx, a.ID, 2, "shutdown"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("requeue by stale attempt: err = %v", err)
		}
		must(t, s.RequeueJob(ctx, a.ID, 1, "shutdown"))
		queued, err := s.ListJobs(ctx, "", store.JobQueued, 10)
		must(t, err)
		if len(queued) != 2 || queued[0].ID != a.ID || queued[1].ID != b.ID {
			t.Fatalf("ListJobs(queued) = %d jobs", len(queued))
		}
		got, err := s.GetJob(ctx, "", a.ID)
		must(t, err)
		if got.Status != store.JobQueued {
			t.Fatalf("after requeue: %+v", got)
		}
	})

	t.Run("WebhookDeliveries", func(t *testing.T) {
		s, k, m := setup(t)
		j, _, err := s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID, Kind: store.KindProve,
			System: "groth16", WebhookURL: "https://hooks.example.com/zkml"})
		must(t, err)
		if _, err := s.RedeliverWebhook(ctx, k.ID, j.ID); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("redelivery of an unfinished job: err = %v, want ErrConflict", err)
		}
		_, err = s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		_, err = s.FinishJob(ctx, j.ID, 1, store.Finish{Status: store.JobFailed, ErrorCode: "internal"})
		must(t, err)
		must(t, s.RecordWebhook(ctx, &store.WebhookDelivery{JobID: j.ID, Attempt: 1, StatusCode: 503, Error: "answered 503"}))
		ok, err := s.WebhookDelivered(ctx, j.ID, 0)
		must(t, err)
		if ok {
			t.Fatal("a failed attempt counts as delivered")
		}
		must(t, s.RecordWebhook(ctx, &store.WebhookDelivery{JobID: j.ID, Attempt: 2, StatusCode: 204, Delivered: true}))
		if ok, err := s.WebhookDelivered(ctx, j.ID, 0); err != nil || !ok {
			t.Fatalf("WebhookDelivered = %v, %v", ok, err)
		}
		other := mkKey(t, s, "mallory")
		if _, err := s.RedeliverWebhook(ctx, other.ID, j.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("redelivery by another owner: err = %v", err)
		}
		r, err := s.RedeliverWebhook(ctx, k.ID, j.ID)
		must(t, err)
		if r.WebhookRedeliveries != 1 {
			t.Fatalf("redeliveries = %d", r.WebhookRedeliveries)
		}
		if ok, err := s.WebhookDelivered(ctx, j.ID, 1); err != nil || ok {
			t.Fatalf("redelivery 1 delivered before any attempt: %v, %v", ok, err)
		}
		must(t, s.RecordWebhook(ctx, &store.WebhookDelivery{JobID: j.ID, Redelivery: 1, Attempt: 1, StatusCode: 200, Delivered: true}))
		got, err := s.GetJob(ctx, k.ID, j.ID)
		must(t, err)
		if got.WebhookAttempts != 3 || !got.WebhookDelivered || got.WebhookRedeliveries != 1 || len(got.WebhookDeliveries) != 3 {
			t.Fatalf("job after deliveries: %+v", got)
		}
		d := got.WebhookDeliveries
		if d[0].StatusCode != 503 || d[0].Error != "answered 503" || d[0].Delivered || d[0].At.IsZero() ||
			d[1].Attempt != 2 || !d[1].Delivered || d[2].Redelivery != 1 {
			t.Fatalf("deliveries = %+v", d)
		}
		if err := s.RecordWebhook(ctx, &store.WebhookDelivery{JobID: "job_missing", Attempt: 1}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delivery of a missing job: err = %v", err)
		}
	})

	t.Run("CompileEndFailsModel", func(t *testing.T) {
		// Each way a compile job ends without success fails its model in the same
		// transaction (issue 13: a job read failed while its model read compiling).
		s, k, _ := setup(t)
		compile := func() (*store.Model, *store.Job) {
			m := mkModel(t, s, k.ID)
			j, _, err := s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID, Kind: store.KindCompile})
			must(t, err)
			return m, j
		}
		wantModel := func(m *store.Model, status store.ModelStatus, errPart string) {
			t.Helper()
			got, err := s.GetModel(ctx, k.ID, m.ID)
			must(t, err)
			if got.Status != status || !strings.Contains(got.Error, errPart) {
				t.Fatalf("model = %s %q, want %s with %q", got.Status, got.Error, status, errPart)
			}
		}
		m, j := compile()
		_, err := s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		_, err = s.FinishJob(ctx, j.ID, 1, store.Finish{Status: store.JobFailed, ErrorCode: "invalid_model", ErrorMessage: "bad onnx"})
		must(t, err)
		wantModel(m, store.ModelFailed, "invalid_model: bad onnx")

		m, j = compile()
		_, err = s.CancelJob(ctx, k.ID, j.ID)
		must(t, err)
		wantModel(m, store.ModelFailed, "cancelled")

		m, j = compile()
		_, err = s.StartJob(ctx, j.ID, 0)
		must(t, err)
		_, err = s.ReclaimJob(ctx, j.ID, 1, true)
		must(t, err)
		wantModel(m, store.ModelFailed, "worker_lost")

		m, j = compile() // a compiled model is not touched by a late failure of its job
		_, err = s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		m.Status = store.ModelCompiled
		must(t, s.SetModelCompiled(ctx, m))
		_, err = s.FinishJob(ctx, j.ID, 1, store.Finish{Status: store.JobFailed, ErrorCode: "internal"})
		must(t, err)
		wantModel(m, store.ModelCompiled, "")
	})

	t.Run("SetupOnce", func(t *testing.T) {
		s, k, m := setup(t)
		setupJob := func(key string) (*store.Job, bool, error) {
			return s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID, Kind: store.KindSetup,
				System: "groth16", IdempotencyKey: key, RequestHash: "h" + key})
		}
		var created atomic.Int32
		ids := make(chan string, 8)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := ""
				if i%2 == 1 {
					key = fmt.Sprint("idem-", i) // distinct keys do not make distinct setups
				}
				j, ok, err := setupJob(key)
				if err != nil {
					t.Errorf("CreateJob(setup): %v", err)
					return
				}
				if ok {
					created.Add(1)
				}
				ids <- j.ID
			}()
		}
		wg.Wait()
		close(ids)
		seen := distinct(ids)
		if created.Load() != 1 || len(seen) != 1 {
			t.Fatalf("8 concurrent setups made %d jobs, %d IDs", created.Load(), len(seen))
		}
		var first string
		for id := range seen {
			first = id
		}
		plonk, ok, err := s.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m.ID, Kind: store.KindSetup, System: "plonk"})
		must(t, err)
		if !ok || plonk.ID == first {
			t.Fatal("a setup of another system was merged with groth16's")
		}
		// Once the setup has ended without keys, a new one may start.
		_, err = s.StartJob(ctx, first, time.Minute)
		must(t, err)
		_, err = s.FinishJob(ctx, first, 1, store.Finish{Status: store.JobFailed, ErrorCode: "internal"})
		must(t, err)
		again, ok, err := setupJob("")
		must(t, err)
		if !ok || again.ID == first {
			t.Fatalf("setup after a failed one: created %v, id %s", ok, again.ID)
		}
	})

	t.Run("LeaseReclaim", func(t *testing.T) {
		s, k, m := setup(t)
		j := mkJob(t, s, k.ID, m.ID, "")
		_, err := s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		if _, err := s.ReclaimJob(ctx, j.ID, 1, false); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("reclaim under a live lease: err = %v, want ErrConflict", err)
		}
		_, err = s.Heartbeat(ctx, j.ID, 1, "prove", 0.5, 0) // the worker's last word
		must(t, err)
		got, err := s.ReclaimJob(ctx, j.ID, 1, false)
		must(t, err)
		if got.Status != store.JobQueued || got.Reclaims != 1 || got.Stage != "" {
			t.Fatalf("reclaimed job = %+v", got)
		}
		if _, err := s.ReclaimJob(ctx, j.ID, 1, false); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second reclaim: err = %v, want ErrConflict", err)
		}
		if _, err := s.Heartbeat(ctx, j.ID, 1, "", 0, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("heartbeat of the lost attempt: err = %v, want ErrConflict", err)
		}
		got, err = s.StartJob(ctx, j.ID, 0)
		must(t, err)
		if got.Attempt != 2 || got.Reclaims != 1 {
			t.Fatalf("restarted job = %+v", got)
		}
		got, err = s.ReclaimJob(ctx, j.ID, 2, true)
		must(t, err)
		if got.Status != store.JobFailed || got.ErrorCode != "worker_lost" || got.FinishedAt == nil {
			t.Fatalf("given-up job = %+v", got)
		}
		c := mkJob(t, s, k.ID, m.ID, "")
		_, err = s.StartJob(ctx, c.ID, 0)
		must(t, err)
		_, err = s.CancelJob(ctx, k.ID, c.ID)
		must(t, err)
		got, err = s.ReclaimJob(ctx, c.ID, 1, false)
		must(t, err)
		if got.Status != store.JobCancelled {
			t.Fatalf("reclaim of a cancelled job's lost run = %+v", got)
		}
		stored, err := s.GetJob(ctx, k.ID, c.ID)
		must(t, err)
		if stored.Status != store.JobCancelled || stored.ErrorCode != "cancelled" {
			t.Fatalf("stored = %+v", stored)
		}
	})

	runSegments(t, setup)

	t.Run("ConcurrentFinish", func(t *testing.T) {
		s, k, m := setup(t)
		j := mkJob(t, s, k.ID, m.ID, "")
		_, err := s.StartJob(ctx, j.ID, time.Minute)
		must(t, err)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.FinishJob(ctx, j.ID, 1, store.Finish{Status: store.JobSucceeded, Proof: &store.Proof{Proof: []byte{1}}})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("FinishJob: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d concurrent finishes succeeded, want 1", wins.Load())
		}
	})
}

// jsonEq compares JSON up to formatting (Postgres jsonb normalizes whitespace).
func jsonEq(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mkKey(t *testing.T, s store.Store, name string) *store.APIKey {
	t.Helper()
	k := &store.APIKey{ID: store.NewID("key"), Name: name, Hash: store.NewID("h"), WebhookSecret: store.NewID("whsec")}
	must(t, s.CreateAPIKey(context.Background(), k))
	return k
}

func mkModel(t *testing.T, s store.Store, owner string) *store.Model {
	t.Helper()
	m := &store.Model{ID: store.NewID("mdl"), Owner: owner, Name: "mnist", Status: store.ModelCompiling,
		ONNXDigest: "sha256:00", ONNXSize: 10, Settings: json.RawMessage(`{"scale":7}`)}
	must(t, s.CreateModel(context.Background(), m))
	return m
}

func mkJob(t *testing.T, s store.Store, owner, model, idem string) *store.Job {
	t.Helper()
	j, created, err := s.CreateJob(context.Background(), &store.Job{ID: store.NewID("job"), Owner: owner, ModelID: model,
		Kind: store.KindProve, System: "groth16", Input: json.RawMessage(`{"input_data":[[1,2]]}`), IdempotencyKey: idem})
	must(t, err)
	if !created {
		t.Fatalf("CreateJob: not created")
	}
	return j
}

// distinct drains ids into a set.
func distinct(ids <-chan string) map[string]bool {
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	return seen
}
