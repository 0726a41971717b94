package sqldb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zkml/zkml/internal/store"
)

// Store implements store.Store over a Conn.
type Store struct {
	c       Conn
	dialect Dialect
	now     func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns a Store on c.
func New(c Conn, d Dialect) *Store {
	return &Store{c: c, dialect: d, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// forUpdate is the row-lock suffix for read-modify-write transactions; SQLite
// serializes writers with BEGIN IMMEDIATE instead.
func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx) }

// Close releases the pool.
func (s *Store) Close() error { return s.c.Close() }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqldb: marshal %T: %v", v, err))
	}
	return string(b)
}

func rawOr(r json.RawMessage, def string) string {
	if len(r) == 0 {
		return def
	}
	return string(r)
}

// ---- API keys ----

const keyCols = `id, name, hash, webhook_secret, created_at, revoked_at`

func scanKey(r Row) (*store.APIKey, error) {
	var k store.APIKey
	var created, revoked Time
	if err := r.Scan(&k.ID, &k.Name, &k.Hash, &k.WebhookSecret, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.RevokedAt = created.T, revoked.Ptr()
	return &k, nil
}

// CreateAPIKey inserts k, filling CreatedAt.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	k.CreatedAt = s.now()
	_, err := s.c.Exec(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, NULL)`,
		k.ID, k.Name, k.Hash, k.WebhookSecret, k.CreatedAt)
	return err
}

// APIKeyByHash finds an unrevoked key.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*store.APIKey, error) {
	return scanKey(s.c.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash))
}

// GetAPIKey finds a key by ID, revoked or not.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*store.APIKey, error) {
	return scanKey(s.c.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
}

// ListAPIKeys lists all keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]*store.APIKey, error) {
	rows, err := s.c.Query(ctx, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes an active key.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	n, err := s.c.Exec(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, s.now())
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ---- models ----

const modelCols = `id, owner, name, status, onnx_digest, onnx_size, settings, engine_model_id,
	constraints, inputs, outputs, stats, systems, files, error, created_at, updated_at`

// modelReadCols are modelCols and the columns only changed by their own methods.
const modelReadCols = modelCols + `, provenance, ceremony_contributions, ceremony_head, ceremony_sealed`

func scanModel(r Row) (*store.Model, error) {
	var m store.Model
	var settings, constraints, inputs, outputs, stats, systems, files, prov string
	var created, updated Time
	if err := r.Scan(&m.ID, &m.Owner, &m.Name, &m.Status, &m.ONNXDigest, &m.ONNXSize, &settings,
		&m.EngineModelID, &constraints, &inputs, &outputs, &stats, &systems, &files, &m.Error, &created, &updated,
		&prov, &m.Ceremony.Contributions, &m.Ceremony.Hash, &m.Ceremony.Sealed); err != nil {
		return nil, err
	}
	m.Settings = json.RawMessage(settings)
	if stats != "null" {
		m.Stats = json.RawMessage(stats)
	}
	for _, f := range []struct {
		src string
		dst any
	}{{constraints, &m.Constraints}, {inputs, &m.Inputs}, {outputs, &m.Outputs}, {systems, &m.Systems}, {files, &m.Files}, {prov, &m.Provenance}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("sqldb: model %s: %w", m.ID, err)
		}
	}
	m.CreatedAt, m.UpdatedAt = created.T, updated.T
	return &m, nil
}

// CreateModel inserts m, filling timestamps.
func (s *Store) CreateModel(ctx context.Context, m *store.Model) error {
	m.CreatedAt = s.now()
	m.UpdatedAt = m.CreatedAt
	if m.Systems == nil {
		m.Systems = []string{}
	}
	_, err := s.c.Exec(ctx, `INSERT INTO models (`+modelCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		m.ID, m.Owner, m.Name, string(m.Status), m.ONNXDigest, m.ONNXSize, rawOr(m.Settings, "{}"), m.EngineModelID,
		mustJSON(orEmptyMap(m.Constraints)), mustJSON(orEmptyShapes(m.Inputs)), mustJSON(orEmptyShapes(m.Outputs)),
		rawOr(m.Stats, "null"), mustJSON(m.Systems), mustJSON(orEmptyFiles(m.Files)), m.Error, m.CreatedAt, m.UpdatedAt)
	return err
}

func orEmptyMap(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func orEmptyFiles(f map[string]string) map[string]string {
	if f == nil {
		return map[string]string{}
	}
	return f
}

func orEmptyShapes(s [][]int) [][]int {
	if s == nil {
		return [][]int{}
	}
	return s
}

// ownerClause restricts a query to the owner bound at placeholder arg; an empty
// owner (workers) matches every row.
func ownerClause(arg int) string {
	return fmt.Sprintf(" AND ($%d = '' OR owner = $%d)", arg, arg)
}

// GetModel returns a live model.
func (s *Store) GetModel(ctx context.Context, owner, id string) (*store.Model, error) {
	return scanModel(s.c.QueryRow(ctx, `SELECT `+modelReadCols+` FROM models WHERE id = $1 AND deleted_at IS NULL`+ownerClause(2), id, owner))
}

// ListModels lists the owner's live models, oldest first.
func (s *Store) ListModels(ctx context.Context, owner string) ([]*store.Model, error) {
	rows, err := s.c.Query(ctx, `SELECT `+modelReadCols+` FROM models WHERE deleted_at IS NULL`+ownerClause(1)+` ORDER BY created_at, id`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*store.Model{}
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteModel soft-deletes a model.
func (s *Store) DeleteModel(ctx context.Context, owner, id string) error {
	n, err := s.c.Exec(ctx, `UPDATE models SET deleted_at = $3 WHERE id = $1 AND deleted_at IS NULL`+ownerClause(2), id, owner, s.now())
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetModelCompiled stores the compile outcome held in m.
func (s *Store) SetModelCompiled(ctx context.Context, m *store.Model) error {
	m.UpdatedAt = s.now()
	n, err := s.c.Exec(ctx, `UPDATE models SET status = $2, engine_model_id = $3, constraints = $4, inputs = $5,
		outputs = $6, stats = $7, error = $8, updated_at = $9 WHERE id = $1`,
		m.ID, string(m.Status), m.EngineModelID, mustJSON(orEmptyMap(m.Constraints)), mustJSON(orEmptyShapes(m.Inputs)),
		mustJSON(orEmptyShapes(m.Outputs)), rawOr(m.Stats, "null"), m.Error, m.UpdatedAt)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// AddModelSystem adds system to the model's set-up systems with its provenance.
func (s *Store) AddModelSystem(ctx context.Context, id, system string, provenance json.RawMessage) error {
	return s.c.InTx(ctx, func(q Querier) error {
		var raw string
		if err := q.QueryRow(ctx, `SELECT systems FROM models WHERE id = $1`+s.forUpdate(), id).Scan(&raw); err != nil {
			return err
		}
		return s.addSystem(ctx, q, id, raw, system, provenance)
	})
}

// addSystem adds system (with provenance) to the model whose systems column, read
// under the transaction's lock, is raw.
func (s *Store) addSystem(ctx context.Context, q Querier, id, raw, system string, provenance json.RawMessage) error {
	var systems []string
	if err := json.Unmarshal([]byte(raw), &systems); err != nil {
		return err
	}
	have := false
	for _, x := range systems {
		have = have || x == system
	}
	if !have {
		systems = append(systems, system)
		if _, err := q.Exec(ctx, `UPDATE models SET systems = $2, updated_at = $3 WHERE id = $1`, id, mustJSON(systems), s.now()); err != nil {
			return err
		}
	}
	if len(provenance) == 0 {
		return nil
	}
	var prov map[string]json.RawMessage
	if err := q.QueryRow(ctx, `SELECT provenance FROM models WHERE id = $1`, id).Scan(&raw); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(raw), &prov); err != nil {
		return err
	}
	if prov == nil {
		prov = map[string]json.RawMessage{}
	}
	if _, ok := prov[system]; ok && have {
		return nil // keys are made once: the first record stays
	}
	prov[system] = provenance
	_, err := q.Exec(ctx, `UPDATE models SET provenance = $2, updated_at = $3 WHERE id = $1`, id, mustJSON(prov), s.now())
	return err
}

// AdvanceCeremony compares the ceremony head with step.From and swaps in step.To, in
// one transaction with the manifest and systems changes.
func (s *Store) AdvanceCeremony(ctx context.Context, id string, step store.CeremonyStep) error {
	return s.c.InTx(ctx, func(q Querier) error {
		var cur store.CeremonyHead
		var systems string
		if err := q.QueryRow(ctx, `SELECT ceremony_contributions, ceremony_head, ceremony_sealed, systems FROM models
			WHERE id = $1 AND deleted_at IS NULL`+s.forUpdate(), id).Scan(&cur.Contributions, &cur.Hash, &cur.Sealed, &systems); err != nil {
			return err
		}
		if cur != step.From {
			return store.ErrConflict
		}
		if _, err := q.Exec(ctx, `UPDATE models SET ceremony_contributions = $2, ceremony_head = $3, ceremony_sealed = $4,
			updated_at = $5 WHERE id = $1`, id, step.To.Contributions, step.To.Hash, step.To.Sealed, s.now()); err != nil {
			return err
		}
		if step.MergeFiles != nil {
			if err := s.updateFiles(ctx, q, id, func(cur map[string]string) (map[string]string, error) {
				return step.MergeFiles(cur, step.Files)
			}); err != nil {
				return err
			}
		} else if len(step.Files) > 0 {
			if err := s.mergeFiles(ctx, q, id, step.Files); err != nil {
				return err
			}
		}
		if step.System != "" {
			return s.addSystem(ctx, q, id, systems, step.System, step.Provenance)
		}
		return nil
	})
}

// MergeModelFiles merges files into the model's manifest.
func (s *Store) MergeModelFiles(ctx context.Context, id string, files map[string]string) error {
	return s.c.InTx(ctx, func(q Querier) error { return s.mergeFiles(ctx, q, id, files) })
}

// UpdateModelFiles runs fn on the model's manifest and merges what it returns, in
// one transaction holding the model's row.
func (s *Store) UpdateModelFiles(ctx context.Context, id string, fn func(cur map[string]string) (map[string]string, error)) error {
	return s.c.InTx(ctx, func(q Querier) error {
		return s.updateFiles(ctx, q, id, func(cur map[string]string) (map[string]string, error) {
			view := make(map[string]string, len(cur))
			for p, d := range cur {
				view[p] = d
			}
			return fn(view)
		})
	})
}

func (s *Store) mergeFiles(ctx context.Context, q Querier, id string, files map[string]string) error {
	return s.updateFiles(ctx, q, id, func(map[string]string) (map[string]string, error) { return files, nil })
}

func (s *Store) updateFiles(ctx context.Context, q Querier, id string, fn func(cur map[string]string) (map[string]string, error)) error {
	var raw string
	if err := q.QueryRow(ctx, `SELECT files FROM models WHERE id = $1`+s.forUpdate(), id).Scan(&raw); err != nil {
		return err
	}
	cur := map[string]string{}
	if err := json.Unmarshal([]byte(raw), &cur); err != nil {
		return err
	}
	files, err := fn(cur)
	if err != nil {
		return err
	}
	for p, d := range files {
		cur[p] = d
	}
	_, err = q.Exec(ctx, `UPDATE models SET files = $2, updated_at = $3 WHERE id = $1`, id, mustJSON(cur), s.now())
	return err
}

// ---- jobs ----

// settleModel records, in the transaction q that ends job j without success, that
// its model can never be set up: a compile job's model goes from compiling to failed
// with the job's error, in the same transaction, so no reader sees the job failed
// and the model still compiling.
func (s *Store) settleModel(ctx context.Context, q Querier, j *store.Job) error {
	if j.Kind != store.KindCompile || j.Status == store.JobSucceeded || !j.Status.Terminal() {
		return nil
	}
	msg := j.ErrorCode + ": " + j.ErrorMessage
	_, err := q.Exec(ctx, `UPDATE models SET status = $2, error = $3, updated_at = $4 WHERE id = $1 AND status = $5`,
		j.ModelID, string(store.ModelFailed), msg, s.now(), string(store.ModelCompiling))
	return err
}

const jobCols = `id, owner, model_id, kind, system, status, stage, progress, attempt, input, idempotency_key,
	request_hash, webhook_url, cancel_requested, error_code, error_message, proof_id, webhook_attempts,
	webhook_delivered, created_at, started_at, finished_at, heartbeat_at, lease_until, reclaims, webhook_redeliveries,
	parent_id, segment, segments_total, segments_done, activations`

func scanJob(r Row) (*store.Job, error) {
	var j store.Job
	var input []byte
	var idem *string
	var created, started, finished, heartbeat, lease Time
	var parent *string
	if err := r.Scan(&j.ID, &j.Owner, &j.ModelID, &j.Kind, &j.System, &j.Status, &j.Stage, &j.Progress, &j.Attempt,
		&input, &idem, &j.RequestHash, &j.WebhookURL, &j.CancelRequested, &j.ErrorCode, &j.ErrorMessage, &j.ProofID,
		&j.WebhookAttempts, &j.WebhookDelivered, &created, &started, &finished, &heartbeat, &lease, &j.Reclaims, &j.WebhookRedeliveries,
		&parent, &j.Segment, &j.SegmentsTotal, &j.SegmentsDone, &j.Activations); err != nil {
		return nil, err
	}
	if parent != nil {
		j.ParentID = *parent
	}
	if len(input) > 0 {
		j.Input = json.RawMessage(input)
	}
	if idem != nil {
		j.IdempotencyKey = *idem
	}
	j.CreatedAt, j.StartedAt, j.FinishedAt, j.HeartbeatAt, j.LeaseUntil = created.T, started.Ptr(), finished.Ptr(), heartbeat.Ptr(), lease.Ptr()
	return &j, nil
}

func (s *Store) getJob(ctx context.Context, q Querier, id string, lock bool) (*store.Job, error) {
	suffix := ""
	if lock {
		suffix = s.forUpdate()
	}
	return scanJob(q.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+suffix, id))
}

// CreateJob inserts a queued job, honouring the owner's idempotency key.
func (s *Store) CreateJob(ctx context.Context, j *store.Job) (*store.Job, bool, error) {
	j.Status = store.JobQueued
	j.CreatedAt = s.now()
	var idem any
	if j.IdempotencyKey != "" {
		idem = j.IdempotencyKey
	}
	var input any
	if len(j.Input) > 0 {
		input = []byte(j.Input)
	}
	// A conflict is the idempotency key or an in-flight setup of the same model and
	// system; the other job can finish between the insert and the lookup, so retry.
	for range 3 {
		var id string
		err := s.c.QueryRow(ctx, `INSERT INTO jobs (id, owner, model_id, kind, system, status, input, idempotency_key,
		request_hash, webhook_url, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING RETURNING id`,
			j.ID, j.Owner, j.ModelID, string(j.Kind), j.System, string(j.Status), input, idem, j.RequestHash, j.WebhookURL,
			j.CreatedAt).Scan(&id)
		if err == nil {
			return j, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		if j.IdempotencyKey != "" {
			existing, err := scanJob(s.c.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE owner = $1 AND idempotency_key = $2`,
				j.Owner, j.IdempotencyKey))
			if err == nil {
				return existing, false, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, false, err
			}
		}
		if j.Kind == store.KindSetup {
			existing, err := scanJob(s.c.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE model_id = $1 AND system = $2
			AND kind = 'setup' AND status IN ('queued', 'running')`, j.ModelID, j.System))
			if err == nil {
				return existing, false, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, false, err
			}
		}
	}
	return nil, false, fmt.Errorf("sqldb: job %s conflicts with a job that keeps changing: %w", j.ID, store.ErrConflict)
}

// GetJob returns a job of owner ("" for any owner) with its webhook deliveries.
func (s *Store) GetJob(ctx context.Context, owner, id string) (*store.Job, error) {
	j, err := scanJob(s.c.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+ownerClause(2), id, owner))
	if err != nil || j.WebhookURL == "" {
		return j, err
	}
	rows, err := s.c.Query(ctx, `SELECT redelivery, attempt, at, status_code, error, delivered FROM
		(SELECT * FROM webhook_deliveries WHERE job_id = $1 ORDER BY id DESC LIMIT 100) AS last ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		d := store.WebhookDelivery{JobID: id}
		var at Time
		if err := rows.Scan(&d.Redelivery, &d.Attempt, &at, &d.StatusCode, &d.Error, &d.Delivered); err != nil {
			return nil, err
		}
		d.At = at.T
		j.WebhookDeliveries = append(j.WebhookDeliveries, d)
	}
	return j, rows.Err()
}

// ListJobs lists jobs oldest first (the first page of ListJobsAfter).
func (s *Store) ListJobs(ctx context.Context, owner string, status store.JobStatus, limit int) ([]*store.Job, error) {
	return s.ListJobsAfter(ctx, owner, status, "", limit)
}

// StartJob claims the job under a new attempt number and lease.
func (s *Store) StartJob(ctx context.Context, id string, lease time.Duration) (*store.Job, error) {
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		j, err := s.getJob(ctx, q, id, true)
		if err != nil {
			return err
		}
		if j.Status.Terminal() {
			out = j
			return store.ErrConflict
		}
		now := s.now()
		if j.Status == store.JobRunning && j.LeaseUntil != nil && now.Before(*j.LeaseUntil) || j.Waiting() {
			// A waiting parent belongs to its segment jobs: the last one hands it back.
			out = j
			return store.ErrLeased
		}
		if j.CancelRequested {
			_, err := q.Exec(ctx, `UPDATE jobs SET status = $2, finished_at = $3, error_code = 'cancelled',
				error_message = 'cancelled before start' WHERE id = $1`, id, string(store.JobCancelled), now)
			if err != nil {
				return err
			}
			j.Status, j.FinishedAt, j.ErrorCode, j.ErrorMessage = store.JobCancelled, &now, "cancelled", "cancelled before start"
			out = j
			if err := s.settleModel(ctx, q, j); err != nil {
				return err
			}
			return store.ErrConflict
		}
		attempt := j.Attempt + 1
		started := j.StartedAt
		if started == nil {
			started = &now
		}
		until := now.Add(lease)
		if _, err := q.Exec(ctx, `UPDATE jobs SET status = $2, attempt = $3, started_at = $4, heartbeat_at = $5,
			stage = '', progress = 0, lease_until = $6 WHERE id = $1`, id, string(store.JobRunning), attempt, *started, now, until); err != nil {
			return err
		}
		j.Status, j.Attempt, j.StartedAt, j.HeartbeatAt, j.Stage, j.Progress, j.LeaseUntil = store.JobRunning, attempt, started, &now, "", 0, &until
		out = j
		return nil
	})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrLeased) {
		return out, err
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Heartbeat records progress, renews the lease and reports cancellation requests.
func (s *Store) Heartbeat(ctx context.Context, id string, attempt int, stage string, progress float64, lease time.Duration) (bool, error) {
	var cancel bool
	now := s.now()
	// A segment job whose parent ended (a sibling failed, the parent was cancelled) or
	// was asked to stop (a cancel request that reached it before it spawned its
	// segments) is asked to stop like a cancelled job.
	// (A heartbeat racing with SpawnSegments may give a waiting parent a lease again;
	// StartJob and ReclaimJob leave a waiting parent alone whatever its lease.)
	err := s.c.QueryRow(ctx, `UPDATE jobs SET heartbeat_at = $4, lease_until = $7,
		stage = CASE WHEN $5 THEN $2 ELSE stage END, progress = CASE WHEN $5 THEN $3 ELSE progress END,
		cancel_requested = (cancel_requested OR (parent_id IS NOT NULL AND EXISTS (SELECT 1 FROM jobs AS p
			WHERE p.id = jobs.parent_id AND (p.status IN ('succeeded', 'failed', 'cancelled') OR p.cancel_requested))))
		WHERE id = $1 AND status = 'running' AND attempt = $6 RETURNING cancel_requested`,
		id, stage, progress, now, stage != "", attempt, now.Add(lease)).Scan(&cancel)
	if errors.Is(err, store.ErrNotFound) {
		return false, store.ErrConflict
	}
	return cancel, err
}

// FinishJob ends the run of attempt, storing the proof in the same transaction.
func (s *Store) FinishJob(ctx context.Context, id string, attempt int, f store.Finish) (*store.Job, error) {
	if !f.Status.Terminal() {
		return nil, fmt.Errorf("sqldb: FinishJob with non-terminal status %q", f.Status)
	}
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		j, err := s.getJob(ctx, q, id, true)
		if err != nil {
			return err
		}
		if j.Status != store.JobRunning || j.Attempt != attempt {
			return store.ErrConflict
		}
		now := s.now()
		proofID := ""
		if f.Proof != nil && f.Status == store.JobSucceeded {
			p := f.Proof
			p.JobID, p.Owner, p.ModelID, p.System, p.CreatedAt = j.ID, j.Owner, j.ModelID, j.System, now
			if p.ID == "" {
				p.ID = store.NewID("prf")
			}
			if p.PublicInputs == nil {
				p.PublicInputs = []string{}
			}
			if p.Outputs == nil {
				p.Outputs = [][]float64{}
			}
			if p.Calldata == nil {
				p.Calldata = []byte{}
			}
			// The proof keeps the provenance of the keys it was made with.
			var provs string
			if err := q.QueryRow(ctx, `SELECT provenance FROM models WHERE id = $1`, j.ModelID).Scan(&provs); err != nil {
				return err
			}
			var byName map[string]json.RawMessage
			if err := json.Unmarshal([]byte(provs), &byName); err != nil {
				return err
			}
			p.Provenance = byName[j.System]
			var prov *string
			if len(p.Provenance) > 0 {
				v := string(p.Provenance)
				prov = &v
			}
			if _, err := q.Exec(ctx, `INSERT INTO proofs (id, job_id, owner, model_id, system, proof, public_inputs,
				outputs, calldata, prove_seconds, created_at, provenance, bundle) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				p.ID, p.JobID, p.Owner, p.ModelID, p.System, p.Proof, mustJSON(p.PublicInputs), mustJSON(p.Outputs),
				p.Calldata, p.ProveSeconds, p.CreatedAt, prov, p.Bundle); err != nil {
				return err
			}
			proofID = p.ID
		}
		progress := j.Progress
		if f.Status == store.JobSucceeded {
			progress = 1
		}
		if _, err := q.Exec(ctx, `UPDATE jobs SET status = $2, finished_at = $3, error_code = $4, error_message = $5,
			proof_id = $6, progress = $7, heartbeat_at = $3 WHERE id = $1`,
			id, string(f.Status), now, f.ErrorCode, f.ErrorMessage, proofID, progress); err != nil {
			return err
		}
		j.Status, j.FinishedAt, j.ErrorCode, j.ErrorMessage, j.ProofID, j.Progress, j.HeartbeatAt =
			f.Status, &now, f.ErrorCode, f.ErrorMessage, proofID, progress, &now
		out = j
		if err := s.settleParent(ctx, q, j); err != nil {
			return err
		}
		return s.settleModel(ctx, q, j)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RequeueJob hands a running job back to the queue.
func (s *Store) RequeueJob(ctx context.Context, id string, attempt int, reason string) error {
	n, err := s.c.Exec(ctx, `UPDATE jobs SET status = 'queued', error_message = $3, stage = '', progress = 0
		WHERE id = $1 AND status = 'running' AND attempt = $2`, id, attempt, reason)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrConflict
	}
	return nil
}

// ReclaimJob takes a running job with an expired lease back from attempt.
func (s *Store) ReclaimJob(ctx context.Context, id string, attempt int, giveUp bool) (*store.Job, error) {
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		j, err := s.getJob(ctx, q, id, true)
		if err != nil {
			return err
		}
		now := s.now()
		if j.Status != store.JobRunning || j.Attempt != attempt || j.LeaseUntil == nil || now.Before(*j.LeaseUntil) || j.Waiting() {
			return store.ErrConflict
		}
		switch {
		case j.CancelRequested:
			j.Status, j.ErrorCode, j.ErrorMessage, j.FinishedAt = store.JobCancelled, "cancelled", "cancelled by request", &now
		case giveUp:
			j.Status, j.ErrorCode, j.FinishedAt = store.JobFailed, "worker_lost", &now
			j.ErrorMessage = fmt.Sprintf("the worker of attempt %d stopped renewing its lease at %s, and no attempts are left",
				attempt, j.LeaseUntil.Format(time.RFC3339))
		default:
			j.Status, j.Reclaims, j.Stage, j.Progress = store.JobQueued, j.Reclaims+1, "", 0
			j.ErrorMessage = fmt.Sprintf("the worker of attempt %d stopped renewing its lease; retrying", attempt)
		}
		_, err = q.Exec(ctx, `UPDATE jobs SET status = $2, error_code = $3, error_message = $4, finished_at = $5,
			reclaims = $6, stage = $7, progress = $8 WHERE id = $1`,
			id, string(j.Status), j.ErrorCode, j.ErrorMessage, j.FinishedAt, j.Reclaims, j.Stage, j.Progress)
		if err != nil {
			return err
		}
		out = j
		if err := s.settleParent(ctx, q, j); err != nil {
			return err
		}
		return s.settleModel(ctx, q, j)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ownedJobTx runs fn in a transaction on owner's job id, locked for update, and
// returns the job as fn left it; ErrConflict from fn comes back with the job.
func (s *Store) ownedJobTx(ctx context.Context, owner, id string, fn func(q Querier, j *store.Job) error) (*store.Job, error) {
	var out *store.Job
	err := s.c.InTx(ctx, func(q Querier) error {
		j, err := scanJob(q.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+ownerClause(2)+s.forUpdate(), id, owner))
		if err != nil {
			return err
		}
		out = j
		return fn(q, j)
	})
	if errors.Is(err, store.ErrConflict) {
		return out, err
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CancelJob cancels a queued job or flags a running one.
func (s *Store) CancelJob(ctx context.Context, owner, id string) (*store.Job, error) {
	return s.ownedJobTx(ctx, owner, id, func(q Querier, j *store.Job) error {
		switch {
		case j.Status == store.JobQueued || j.Waiting():
			// A waiting parent has no worker to see the flag: it ends at once, with its
			// segment jobs.
			now := s.now()
			if _, err := q.Exec(ctx, `UPDATE jobs SET status = 'cancelled', cancel_requested = $2, finished_at = $3,
				error_code = 'cancelled', error_message = 'cancelled by request' WHERE id = $1`, id, true, now); err != nil {
				return err
			}
			j.Status, j.CancelRequested, j.FinishedAt = store.JobCancelled, true, &now
			j.ErrorCode, j.ErrorMessage = "cancelled", "cancelled by request"
			if err := s.cancelSegments(ctx, q, j.ID); err != nil {
				return err
			}
			if err := s.settleParent(ctx, q, j); err != nil {
				return err
			}
			return s.settleModel(ctx, q, j)
		case j.Status == store.JobRunning:
			if _, err := q.Exec(ctx, `UPDATE jobs SET cancel_requested = $2 WHERE id = $1`, id, true); err != nil {
				return err
			}
			j.CancelRequested = true
		default:
			return store.ErrConflict
		}
		return nil
	})
}

// CountJobs counts jobs per status.
func (s *Store) CountJobs(ctx context.Context) (map[store.JobStatus]int, error) {
	rows, err := s.c.Query(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[store.JobStatus]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[store.JobStatus(st)] = n
	}
	return out, rows.Err()
}

// RecordWebhook stores a delivery attempt and counts it on the job.
func (s *Store) RecordWebhook(ctx context.Context, d *store.WebhookDelivery) error {
	if d.At.IsZero() {
		d.At = s.now()
	}
	return s.c.InTx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE jobs SET webhook_attempts = webhook_attempts + 1,
			webhook_delivered = (webhook_delivered OR $2) WHERE id = $1`, d.JobID, d.Delivered)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err = q.Exec(ctx, `INSERT INTO webhook_deliveries (job_id, redelivery, attempt, at, status_code, error, delivered)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.JobID, d.Redelivery, d.Attempt, d.At, d.StatusCode, d.Error, d.Delivered)
		return err
	})
}

// WebhookDelivered reports whether the given delivery of the job's webhook succeeded.
func (s *Store) WebhookDelivered(ctx context.Context, id string, redelivery int) (bool, error) {
	var n int
	err := s.c.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE job_id = $1 AND redelivery = $2 AND delivered`,
		id, redelivery).Scan(&n)
	return n > 0, err
}

// RedeliverWebhook counts a manual redelivery request of a finished job's webhook.
func (s *Store) RedeliverWebhook(ctx context.Context, owner, id string) (*store.Job, error) {
	return s.ownedJobTx(ctx, owner, id, func(q Querier, j *store.Job) error {
		if j.WebhookURL == "" || !j.Status.Terminal() {
			return store.ErrConflict
		}
		j.WebhookRedeliveries++
		_, err := q.Exec(ctx, `UPDATE jobs SET webhook_redeliveries = $2 WHERE id = $1`, id, j.WebhookRedeliveries)
		return err
	})
}

// ---- proofs ----

// GetProof returns a proof of owner.
func (s *Store) GetProof(ctx context.Context, owner, id string) (*store.Proof, error) {
	var p store.Proof
	var pub, outs string
	var prov *string
	var created Time
	err := s.c.QueryRow(ctx, `SELECT id, job_id, owner, model_id, system, proof, public_inputs, outputs, calldata,
		prove_seconds, created_at, provenance, bundle FROM proofs WHERE id = $1`+ownerClause(2), id, owner).Scan(
		&p.ID, &p.JobID, &p.Owner, &p.ModelID, &p.System, &p.Proof, &pub, &outs, &p.Calldata, &p.ProveSeconds, &created, &prov, &p.Bundle)
	if err != nil {
		return nil, err
	}
	if prov != nil {
		p.Provenance = json.RawMessage(*prov)
	}
	if err := json.Unmarshal([]byte(pub), &p.PublicInputs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(outs), &p.Outputs); err != nil {
		return nil, err
	}
	p.CreatedAt = created.T
	return &p, nil
}
