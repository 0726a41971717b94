package sqldb

import (
	"context"

	"github.com/zkml/zkml/internal/store"
)

// ListJobsAfter is ListJobs by pages: up to limit jobs of owner in status (all
// statuses when empty) that come after the job with ID after in the order of ListJobs
// (created_at, then id), or from the first when after is empty. The job after must
// be one of owner's (store.ErrNotFound otherwise): it is the cursor the previous page
// ended with, and it may since have changed status.
func (s *Store) ListJobsAfter(ctx context.Context, owner string, status store.JobStatus, after string, limit int) ([]*store.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	cond, args := "", []any{owner, string(status), limit}
	if after != "" {
		if _, err := s.GetJob(ctx, owner, after); err != nil {
			return nil, err
		}
		cond, args = ` AND (created_at, id) > (SELECT created_at, id FROM jobs WHERE id = $4)`, append(args, after)
	}
	rows, err := s.c.Query(ctx, `SELECT `+jobCols+` FROM jobs WHERE ($2 = '' OR status = $2)`+ownerClause(1)+cond+
		` ORDER BY created_at, id LIMIT $3`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*store.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
