package sqldb

import (
	"context"
	"fmt"

	"github.com/zkml/zkml/internal/store"
)

// ---- segment jobs of sharded proofs ----
//
// Lock order: a segment job before its parent (FinishSegment, and FinishJob,
// ReclaimJob and CancelJob of a segment through settleParent). Statements that touch
// a parent's segments while the parent is locked (cancelSegments) only change queued
// segments; a running segment's worker learns that its parent ended from its
// heartbeat (see Heartbeat), so no transaction waits for a segment that waits for the
// parent.

// SpawnSegments fans a running prove job out into n queued segment jobs.
func (s *Store) SpawnSegments(ctx context.Context, parent string, attempt int, activations string, n int) ([]*store.Job, error) {
	if n < 1 {
		return nil, fmt.Errorf("sqldb: SpawnSegments with %d segments", n)
	}
	var out []*store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		p, err := s.getJob(ctx, q, parent, true)
		if err != nil {
			return err
		}
		if p.Kind != store.KindProve || p.Status != store.JobRunning || p.Attempt != attempt || p.SegmentsTotal != 0 {
			return store.ErrConflict
		}
		now := s.now()
		for i := range n {
			j := &store.Job{ID: store.NewID("job"), Owner: p.Owner, ModelID: p.ModelID, Kind: store.KindSegment, System: p.System,
				Status: store.JobQueued, CreatedAt: now, ParentID: p.ID, Segment: i}
			if _, err := q.Exec(ctx, `INSERT INTO jobs (id, owner, model_id, kind, system, status, created_at, parent_id, segment)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				j.ID, j.Owner, j.ModelID, string(j.Kind), j.System, string(j.Status), j.CreatedAt, j.ParentID, j.Segment); err != nil {
				return err
			}
			out = append(out, j)
		}
		_, err = q.Exec(ctx, `UPDATE jobs SET segments_total = $2, segments_done = 0, activations = $3, lease_until = NULL,
			stage = 'segments', progress = 0, heartbeat_at = $4 WHERE id = $1`, p.ID, n, activations, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishSegment records a segment's success and counts it on its parent.
func (s *Store) FinishSegment(ctx context.Context, id string, attempt int, result []byte) (*store.Job, error) {
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		j, err := s.getJob(ctx, q, id, true)
		if err != nil {
			return err
		}
		if j.Kind != store.KindSegment {
			return fmt.Errorf("sqldb: job %s is a %s job, not a segment: %w", id, j.Kind, store.ErrConflict)
		}
		if j.Status != store.JobRunning || j.Attempt != attempt {
			return store.ErrConflict
		}
		if result == nil {
			result = []byte{}
		}
		now := s.now()
		if _, err := q.Exec(ctx, `UPDATE jobs SET status = 'succeeded', finished_at = $2, heartbeat_at = $2, progress = 1,
			error_code = '', error_message = '', result = $3 WHERE id = $1`, id, now, result); err != nil {
			return err
		}
		p, err := s.getJob(ctx, q, j.ParentID, true)
		if err != nil {
			return err
		}
		out = p
		if !p.Waiting() {
			// The parent ended (a sibling failed, or it was cancelled): nothing to count.
			return nil
		}
		p.SegmentsDone++
		p.Progress = float64(p.SegmentsDone) / float64(p.SegmentsTotal)
		p.HeartbeatAt = &now
		if p.SegmentsDone == p.SegmentsTotal {
			// The last segment: the parent goes back to the queue to assemble its bundle.
			p.Status, p.Stage, p.LeaseUntil = store.JobQueued, "assemble", nil
		}
		_, err = q.Exec(ctx, `UPDATE jobs SET segments_done = $2, progress = $3, status = $4, stage = $5, heartbeat_at = $6
			WHERE id = $1`, p.ID, p.SegmentsDone, p.Progress, string(p.Status), p.Stage, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SegmentResults returns the stored results of a parent's succeeded segments.
func (s *Store) SegmentResults(ctx context.Context, parent string) ([][]byte, error) {
	p, err := s.getJob(ctx, s.c, parent, false)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, p.SegmentsTotal)
	rows, err := s.c.Query(ctx, `SELECT segment, result FROM jobs WHERE parent_id = $1 AND status = 'succeeded'
		ORDER BY segment`, parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var r []byte
		if err := rows.Scan(&i, &r); err != nil {
			return nil, err
		}
		if i < 0 || i >= len(out) {
			return nil, fmt.Errorf("sqldb: job %s has segment %d of %d", parent, i, len(out))
		}
		out[i] = r
	}
	return out, rows.Err()
}

// settleParent, in the transaction q that ended segment job j without success, ends
// its parent the same way (cancelled if the segment was, failed otherwise) with the
// segment's error, and cancels the parent's queued segments.
func (s *Store) settleParent(ctx context.Context, q Querier, j *store.Job) error {
	if j.Kind != store.KindSegment || j.ParentID == "" || !j.Status.Terminal() || j.Status == store.JobSucceeded {
		return nil
	}
	p, err := s.getJob(ctx, q, j.ParentID, true)
	if err != nil {
		return err
	}
	if p.Status.Terminal() {
		return nil
	}
	status, code := store.JobFailed, j.ErrorCode
	if j.Status == store.JobCancelled {
		status = store.JobCancelled
	}
	if code == "" {
		code = "internal"
	}
	msg := fmt.Sprintf("segment %d of %d (job %s) %s: %s", j.Segment, p.SegmentsTotal, j.ID, j.Status, j.ErrorMessage)
	if _, err := q.Exec(ctx, `UPDATE jobs SET status = $2, finished_at = $3, error_code = $4, error_message = $5,
		lease_until = NULL WHERE id = $1`, p.ID, string(status), s.now(), code, msg); err != nil {
		return err
	}
	return s.cancelSegments(ctx, q, p.ID)
}

// cancelSegments cancels the queued segment jobs of an ended parent.
func (s *Store) cancelSegments(ctx context.Context, q Querier, parent string) error {
	_, err := q.Exec(ctx, `UPDATE jobs SET status = 'cancelled', cancel_requested = $2, finished_at = $3,
		error_code = 'cancelled', error_message = 'the prove job ended before this segment started'
		WHERE parent_id = $1 AND status = 'queued'`, parent, true, s.now())
	return err
}
