package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/internal/store"
)

// spawned starts a prove job and fans it out into n segment jobs.
func spawned(t *testing.T, s store.Store, owner, model string, n int) (*store.Job, []*store.Job) {
	t.Helper()
	ctx := context.Background()
	p := mkJob(t, s, owner, model, "")
	_, err := s.StartJob(ctx, p.ID, time.Minute)
	must(t, err)
	segs, err := s.SpawnSegments(ctx, p.ID, 1, "sha256:acts", n)
	must(t, err)
	if len(segs) != n {
		t.Fatalf("SpawnSegments: %d jobs, want %d", len(segs), n)
	}
	return p, segs
}

// runSegments is the conformance suite of sharded proofs' segment jobs.
func runSegments(t *testing.T, setup func(t *testing.T) (store.Store, *store.APIKey, *store.Model)) {
	ctx := context.Background()

	t.Run("SegmentsSpawn", func(t *testing.T) {
		s, k, m := setup(t)
		p := mkJob(t, s, k.ID, m.ID, "")
		if _, err := s.SpawnSegments(ctx, p.ID, 1, "sha256:a", 2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("spawn from a queued job: err = %v, want ErrConflict", err)
		}
		_, err := s.StartJob(ctx, p.ID, time.Minute)
		must(t, err)
		if _, err := s.SpawnSegments(ctx, p.ID, 2, "sha256:a", 2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("spawn by another attempt: err = %v, want ErrConflict", err)
		}
		segs, err := s.SpawnSegments(ctx, p.ID, 1, "sha256:a", 3)
		must(t, err)
		if _, err := s.SpawnSegments(ctx, p.ID, 1, "sha256:a", 3); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second spawn: err = %v, want ErrConflict", err)
		}
		for i, sj := range segs {
			got, err := s.GetJob(ctx, k.ID, sj.ID)
			must(t, err)
			if got.Kind != store.KindSegment || got.ParentID != p.ID || got.Segment != i || got.Status != store.JobQueued ||
				got.System != p.System || got.ModelID != m.ID {
				t.Fatalf("segment job %d = %+v", i, got)
			}
		}
		got, err := s.GetJob(ctx, k.ID, p.ID)
		must(t, err)
		if !got.Waiting() || got.SegmentsTotal != 3 || got.Activations != "sha256:a" || got.LeaseUntil != nil {
			t.Fatalf("parent = %+v", got)
		}
		// Heartbeats keep working (regression: a typed lease expression broke them on
		// PostgreSQL), and a late heartbeat of the spawning run that renews the
		// parent's lease does not make it startable or reclaimable.
		if _, err := s.Heartbeat(ctx, p.ID, 1, "", 0, 0); err != nil {
			t.Fatalf("heartbeat of the spawning run: %v", err)
		}
		// Nobody runs a waiting parent: no worker starts it, no reaper takes it.
		if _, err := s.StartJob(ctx, p.ID, time.Minute); !errors.Is(err, store.ErrLeased) {
			t.Fatalf("StartJob of a waiting parent: err = %v, want ErrLeased", err)
		}
		if _, err := s.ReclaimJob(ctx, p.ID, 1, false); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("ReclaimJob of a waiting parent: err = %v, want ErrConflict", err)
		}
	})

	t.Run("SegmentsComplete", func(t *testing.T) {
		s, k, m := setup(t)
		p, segs := spawned(t, s, k.ID, m.ID, 2)
		for _, sj := range segs {
			_, err := s.StartJob(ctx, sj.ID, time.Minute)
			must(t, err)
		}
		if _, err := s.FinishSegment(ctx, segs[0].ID, 2, []byte("x")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("FinishSegment by a stale attempt: err = %v, want ErrConflict", err)
		}
		if _, err := s.FinishSegment(ctx, p.ID, 1, []byte("x")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("FinishSegment of the parent: err = %v, want ErrConflict", err)
		}
		par, err := s.FinishSegment(ctx, segs[1].ID, 1, []byte("proof 1"))
		must(t, err)
		if par.Status != store.JobRunning || par.SegmentsDone != 1 {
			t.Fatalf("parent after 1 of 2 = %+v", par)
		}
		if _, err := s.FinishSegment(ctx, segs[1].ID, 1, []byte("again")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second FinishSegment of one segment: err = %v, want ErrConflict", err)
		}
		par, err = s.FinishSegment(ctx, segs[0].ID, 1, []byte("proof 0"))
		must(t, err)
		if par.Status != store.JobQueued || par.SegmentsDone != 2 || par.Stage != "assemble" {
			t.Fatalf("parent after 2 of 2 = %+v", par)
		}
		res, err := s.SegmentResults(ctx, p.ID)
		must(t, err)
		if len(res) != 2 || string(res[0]) != "proof 0" || string(res[1]) != "proof 1" {
			t.Fatalf("SegmentResults = %q", res)
		}
		// The parent runs again (assembly) and finishes once, with a bundle.
		got, err := s.StartJob(ctx, p.ID, time.Minute)
		must(t, err)
		if got.Attempt != 2 {
			t.Fatalf("assembly attempt = %d, want 2", got.Attempt)
		}
		done, err := s.FinishJob(ctx, p.ID, 2, store.Finish{Status: store.JobSucceeded, Proof: &store.Proof{Proof: []byte(`{}`), Bundle: true}})
		must(t, err)
		pr, err := s.GetProof(ctx, k.ID, done.ProofID)
		must(t, err)
		if !pr.Bundle || string(pr.Proof) != `{}` {
			t.Fatalf("proof = %+v", pr)
		}
	})

	// Regression: every segment finishing at once must count each exactly once and hand
	// the parent back exactly once (no double assembly, no lost segment).
	t.Run("SegmentsConcurrentFinish", func(t *testing.T) {
		s, k, m := setup(t)
		const n = 6
		p, segs := spawned(t, s, k.ID, m.ID, n)
		for _, sj := range segs {
			_, err := s.StartJob(ctx, sj.ID, time.Minute)
			must(t, err)
		}
		var last atomic.Int32
		var wg sync.WaitGroup
		for i, sj := range segs {
			for range 2 { // each twice: a duplicate finish must not count
				wg.Add(1)
				go func() {
					defer wg.Done()
					par, err := s.FinishSegment(ctx, sj.ID, 1, []byte(fmt.Sprint(i)))
					switch {
					case errors.Is(err, store.ErrConflict):
					case err != nil:
						t.Errorf("FinishSegment: %v", err)
					case par.Status == store.JobQueued:
						last.Add(1)
					}
				}()
			}
		}
		wg.Wait()
		if last.Load() != 1 {
			t.Fatalf("%d finishers handed the parent back, want 1", last.Load())
		}
		got, err := s.GetJob(ctx, k.ID, p.ID)
		must(t, err)
		if got.SegmentsDone != n || got.Status != store.JobQueued {
			t.Fatalf("parent = %+v", got)
		}
		res, err := s.SegmentResults(ctx, p.ID)
		must(t, err)
		for i, r := range res {
			if string(r) != fmt.Sprint(i) {
				t.Fatalf("result %d = %q", i, r)
			}
		}
	})

	t.Run("SegmentFailureFailsParent", func(t *testing.T) {
		s, k, m := setup(t)
		p, segs := spawned(t, s, k.ID, m.ID, 3)
		_, err := s.StartJob(ctx, segs[0].ID, time.Minute)
		must(t, err)
		_, err = s.StartJob(ctx, segs[1].ID, time.Minute)
		must(t, err)
		_, err = s.FinishJob(ctx, segs[1].ID, 1, store.Finish{Status: store.JobFailed, ErrorCode: "invalid_input", ErrorMessage: "bad"})
		must(t, err)
		got, err := s.GetJob(ctx, k.ID, p.ID)
		must(t, err)
		if got.Status != store.JobFailed || got.ErrorCode != "invalid_input" || got.FinishedAt == nil {
			t.Fatalf("parent = %+v", got)
		}
		q, err := s.GetJob(ctx, k.ID, segs[2].ID)
		must(t, err)
		if q.Status != store.JobCancelled {
			t.Fatalf("queued sibling = %+v", q)
		}
		// The running sibling is told to stop by its next heartbeat; its success no
		// longer counts and the failed parent stays failed.
		stop, err := s.Heartbeat(ctx, segs[0].ID, 1, "prove", 0.5, time.Minute)
		must(t, err)
		if !stop {
			t.Fatal("heartbeat of a failed parent's segment: not asked to stop")
		}
		par, err := s.FinishSegment(ctx, segs[0].ID, 1, []byte("late"))
		must(t, err)
		if par.Status != store.JobFailed || par.SegmentsDone != 0 {
			t.Fatalf("parent after a late segment = %+v", par)
		}
	})

	t.Run("SegmentWorkerLost", func(t *testing.T) {
		s, k, m := setup(t)
		p, segs := spawned(t, s, k.ID, m.ID, 2)
		_, err := s.StartJob(ctx, segs[0].ID, 0) // its worker dies at once
		must(t, err)
		got, err := s.ReclaimJob(ctx, segs[0].ID, 1, false)
		must(t, err)
		if got.Status != store.JobQueued || got.Reclaims != 1 {
			t.Fatalf("reclaimed segment = %+v", got)
		}
		if par, err := s.GetJob(ctx, k.ID, p.ID); err != nil || !par.Waiting() {
			t.Fatalf("parent after a retried segment = %+v, %v", par, err)
		}
		_, err = s.StartJob(ctx, segs[0].ID, 0)
		must(t, err)
		_, err = s.ReclaimJob(ctx, segs[0].ID, 2, true)
		must(t, err)
		par, err := s.GetJob(ctx, k.ID, p.ID)
		must(t, err)
		if par.Status != store.JobFailed || par.ErrorCode != "worker_lost" {
			t.Fatalf("parent after a lost segment = %+v", par)
		}
	})

	// A cancel request that reaches a prove job before it spawns its segments stops
	// them (their cancellation then cancels the parent).
	t.Run("CancelBeforeSpawn", func(t *testing.T) {
		s, k, m := setup(t)
		p := mkJob(t, s, k.ID, m.ID, "")
		_, err := s.StartJob(ctx, p.ID, time.Minute)
		must(t, err)
		_, err = s.CancelJob(ctx, k.ID, p.ID)
		must(t, err)
		segs, err := s.SpawnSegments(ctx, p.ID, 1, "sha256:a", 2)
		must(t, err)
		_, err = s.StartJob(ctx, segs[0].ID, time.Minute)
		must(t, err)
		stop, err := s.Heartbeat(ctx, segs[0].ID, 1, "", 0, time.Minute)
		if err != nil || !stop {
			t.Fatalf("segment of a parent with a cancel request: stop = %v, err = %v", stop, err)
		}
		_, err = s.FinishJob(ctx, segs[0].ID, 1, store.Finish{Status: store.JobCancelled, ErrorCode: "cancelled", ErrorMessage: "cancelled by request"})
		must(t, err)
		got, err := s.GetJob(ctx, k.ID, p.ID)
		must(t, err)
		if got.Status != store.JobCancelled {
			t.Fatalf("parent = %+v", got)
		}
		if q, err := s.GetJob(ctx, k.ID, segs[1].ID); err != nil || q.Status != store.JobCancelled {
			t.Fatalf("queued sibling = %+v, %v", q, err)
		}
	})

	t.Run("CancelWaitingParent", func(t *testing.T) {
		s, k, m := setup(t)
		p, segs := spawned(t, s, k.ID, m.ID, 2)
		_, err := s.StartJob(ctx, segs[0].ID, time.Minute)
		must(t, err)
		got, err := s.CancelJob(ctx, k.ID, p.ID)
		must(t, err)
		if got.Status != store.JobCancelled {
			t.Fatalf("cancelled parent = %+v", got)
		}
		q, err := s.GetJob(ctx, k.ID, segs[1].ID)
		must(t, err)
		if q.Status != store.JobCancelled {
			t.Fatalf("queued segment = %+v", q)
		}
		if stop, err := s.Heartbeat(ctx, segs[0].ID, 1, "", 0, time.Minute); err != nil || !stop {
			t.Fatalf("running segment's heartbeat: stop = %v, err = %v", stop, err)
		}
	})
}
