package sqldb

import (
	"context"

	"github.com/zkml/zkml/internal/store"
)

// txConn is a Conn over an open transaction: InTx runs fn in that same transaction,
// so Store methods called on a Store over it compose into one transaction.
type txConn struct{ Querier }

func (t txConn) InTx(ctx context.Context, fn func(q Querier) error) error { return fn(t.Querier) }
func (t txConn) Ping(ctx context.Context) error                           { return nil }
func (t txConn) Close() error                                             { return nil }

// FinishCompileJob is FinishJob for a compile job that, when f is not a success, also
// marks the job's model failed with f's error message (if it still reads compiling),
// in the same transaction: no reader ever sees the job ended while its model still
// reads compiling, and a crash cannot leave the model compiling for ever.
func (s *Store) FinishCompileJob(ctx context.Context, id string, attempt int, f store.Finish) (*store.Job, error) {
	return s.withModel(ctx, func(tx *Store) (*store.Job, error) { return tx.FinishJob(ctx, id, attempt, f) })
}

// CancelJobAndModel is CancelJob that, when it cancels a queued compile job, also marks
// the job's model failed in the same transaction (a running job only gets a cancel
// request; its worker ends it with FinishCompileJob).
func (s *Store) CancelJobAndModel(ctx context.Context, owner, id string) (*store.Job, error) {
	return s.withModel(ctx, func(tx *Store) (*store.Job, error) { return tx.CancelJob(ctx, owner, id) })
}

// withModel runs change, a Store method that may end a job, in one transaction with
// the update that follows from it: a compile job that ended without success fails its
// model, if the model still reads compiling. change's errors (ErrConflict with the
// job, for one) are returned as they are.
func (s *Store) withModel(ctx context.Context, change func(tx *Store) (*store.Job, error)) (*store.Job, error) {
	var out *store.Job
	var changeErr error
	err := s.c.InTx(ctx, func(q Querier) error {
		out, changeErr = change(&Store{c: txConn{q}, dialect: s.dialect, now: s.now})
		if changeErr != nil {
			return changeErr
		}
		if out.Kind != store.KindCompile || !out.Status.Terminal() || out.Status == store.JobSucceeded {
			return nil
		}
		_, err := q.Exec(ctx, `UPDATE models SET status = $2, error = $3, updated_at = $4 WHERE id = $1 AND status = $5`,
			out.ModelID, string(store.ModelFailed), out.ErrorMessage, s.now(), string(store.ModelCompiling))
		return err
	})
	if changeErr != nil {
		return out, changeErr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
