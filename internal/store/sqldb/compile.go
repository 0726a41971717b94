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
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		tx := &Store{c: txConn{q}, dialect: s.dialect, now: s.now}
		j, err := tx.FinishJob(ctx, id, attempt, f)
		if err != nil {
			return err
		}
		out = j
		if f.Status == store.JobSucceeded {
			return nil
		}
		_, err = q.Exec(ctx, `UPDATE models SET status = $2, error = $3, updated_at = $4 WHERE id = $1 AND status = $5`,
			j.ModelID, string(store.ModelFailed), f.ErrorMessage, s.now(), string(store.ModelCompiling))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
