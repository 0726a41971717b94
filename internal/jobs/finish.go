package jobs

import (
	"context"
	"errors"

	"github.com/zkml/zkml/internal/store"
)

// compileFinisher is a store that ends a compile job and fails its model in one
// transaction (sqldb.Store.FinishCompileJob, under both of ours).
type compileFinisher interface {
	FinishCompileJob(ctx context.Context, id string, attempt int, f store.Finish) (*store.Job, error)
}

// finishJob records f as the end of j's run. A compile job that did not succeed also
// fails its model: in the same transaction when the store can, so that no reader sees
// the job ended while its model still reads compiling; otherwise right after.
func (p *Processor) finishJob(ctx context.Context, j *store.Job, f store.Finish) (*store.Job, error) {
	if fc, ok := p.Store.(compileFinisher); ok && j.Kind == store.KindCompile {
		return fc.FinishCompileJob(ctx, j.ID, j.Attempt, f)
	}
	done, err := p.Store.FinishJob(ctx, j.ID, j.Attempt, f)
	if err == nil && j.Kind == store.KindCompile && f.Status != store.JobSucceeded {
		p.markModelFailed(ctx, j, errors.New(f.ErrorMessage))
	}
	return done, err
}
