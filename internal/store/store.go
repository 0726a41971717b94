// Package store is the persistence seam of the proving service: API keys, models, jobs
// and proofs. It declares one Store interface; the postgres and sqlite subpackages
// implement it over the same SQL (package sqldb), and storetest is the conformance suite
// both must pass. Store carries no driver imports so that api can depend on it.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by every Store implementation. Callers test them with errors.Is.
var (
	// ErrNotFound: no such row, or it belongs to another owner.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the row is not in a state that allows the change.
	ErrConflict = errors.New("store: conflict")
	// ErrLeased: the job is running under another worker's unexpired lease.
	ErrLeased = errors.New("store: job leased by a live worker")
)

// JobStatus is the externally visible state of a job.
type JobStatus string

// Job states. A job moves queued -> running -> one terminal state; a retried or
// re-queued job goes back from running to queued.
const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobSucceeded JobStatus = "succeeded"
	JobFailed    JobStatus = "failed"
	JobCancelled JobStatus = "cancelled"
)

// Terminal reports whether no further transition is possible.
func (s JobStatus) Terminal() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// JobKind says which pipeline step a job runs.
type JobKind string

// Job kinds.
const (
	KindCompile JobKind = "compile"
	KindSetup   JobKind = "setup"
	KindProve   JobKind = "prove"
	// KindSegment proves one segment of a sharded model's inference, for the prove
	// job ParentID (see Store.SpawnSegments).
	KindSegment JobKind = "segment"
)

// ModelStatus is the lifecycle of an uploaded model.
type ModelStatus string

// Model states.
const (
	ModelCompiling ModelStatus = "compiling"
	ModelCompiled  ModelStatus = "compiled"
	ModelFailed    ModelStatus = "failed"
)

// APIKey is a tenant credential. Only the SHA-256 of the secret is stored.
type APIKey struct {
	ID            string
	Name          string
	Hash          string // hex sha256 of the presented key
	WebhookSecret string // HMAC key for this tenant's webhooks
	CreatedAt     time.Time
	RevokedAt     *time.Time
}

// Model is an uploaded ONNX model and what compiling it produced.
type Model struct {
	ID            string
	Owner         string // APIKey.ID
	Name          string
	Status        ModelStatus
	ONNXDigest    string // artifact digest of the uploaded bytes
	ONNXSize      int64
	Settings      json.RawMessage
	EngineModelID string
	Constraints   map[string]int
	Inputs        [][]int
	Outputs       [][]int
	Stats         json.RawMessage
	Systems       []string          // proving systems whose keys exist
	Files         map[string]string // working-directory manifest: relative path -> artifact digest
	// Provenance says, per system in Systems, where its keys come from: the engine's
	// JSON record (trust level, Powers of Tau hash, ceremony contributions, beacon).
	// Keys set up before provenance was stored have none.
	Provenance map[string]json.RawMessage
	// Ceremony is the head of the model's Groth16 phase-2 ceremony (zero: none open).
	Ceremony  CeremonyHead
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// HasSystem reports whether keys for system have been set up.
func (m *Model) HasSystem(system string) bool {
	for _, s := range m.Systems {
		if s == system {
			return true
		}
	}
	return false
}

// CeremonyHead is the state a model's Groth16 phase-2 ceremony is in, the value a
// change of the ceremony is compared and swapped on.
type CeremonyHead struct {
	// Contributions is the number of accepted contributions.
	Contributions int
	// Hash is the SHA-256 (hex) of the current phase-2 state, the one the next
	// contribution must build on; "" while no ceremony is open.
	Hash string
	// Sealed: the beacon was applied and the keys made; no change is possible.
	Sealed bool
}

// CeremonyStep is one change of a ceremony (open, contribution, seal), recorded by
// AdvanceCeremony only if the ceremony is still at From.
type CeremonyStep struct {
	From, To CeremonyHead
	// Files (path -> digest) are merged into the model's manifest: the new state and
	// transcript, and the keys of a seal.
	Files map[string]string
	// System, when set (by the seal), is added to the model's systems with Provenance,
	// as AddModelSystem does.
	System     string
	Provenance json.RawMessage
	// MergeFiles, when set, decides what is merged into the manifest instead of Files:
	// it is called in the transaction, once the head has matched, with the manifest as
	// it is and Files, and returns the files to merge (a step's copy of a file that
	// other changes also write, merged with the recorded one).
	MergeFiles func(cur, files map[string]string) (map[string]string, error)
}

// Job is one unit of queued work and its observable progress.
type Job struct {
	ID               string
	Owner            string
	ModelID          string
	Kind             JobKind
	System           string
	Status           JobStatus
	Stage            string
	Progress         float64
	Attempt          int
	Input            json.RawMessage // prove: input.json body
	IdempotencyKey   string
	RequestHash      string // sha256 of the request that created it, for Idempotency-Key reuse checks
	WebhookURL       string
	CancelRequested  bool
	ErrorCode        string
	ErrorMessage     string
	ProofID          string
	WebhookAttempts  int
	WebhookDelivered bool
	CreatedAt        time.Time
	StartedAt        *time.Time
	FinishedAt       *time.Time
	HeartbeatAt      *time.Time
	// LeaseUntil: the running attempt owns the job until then; its worker renews the
	// lease with every heartbeat. A job whose lease ran out lost its worker.
	LeaseUntil *time.Time
	// Reclaims counts the times the job was taken back from a lost worker.
	Reclaims int
	// WebhookRedeliveries counts manual redeliveries requested.
	WebhookRedeliveries int
	// WebhookDeliveries are the delivery attempts of the job's webhook, oldest first
	// (filled by GetJob, at most the last 100).
	WebhookDeliveries []WebhookDelivery
	// ParentID and Segment: a segment job's prove job and segment index.
	ParentID string
	Segment  int
	// SegmentsTotal and SegmentsDone: a prove job of a sharded model that spawned its
	// segment jobs waits for SegmentsTotal of them (0: not spawned); SegmentsDone have
	// succeeded. Activations is the artifact digest of the boundary activations.
	SegmentsTotal int
	SegmentsDone  int
	Activations   string
}

// Waiting reports whether j is a prove job waiting for its segment jobs: running,
// without a lease (no worker holds it), until the last segment finishes.
func (j *Job) Waiting() bool {
	return j.Status == JobRunning && j.SegmentsTotal > 0 && j.SegmentsDone < j.SegmentsTotal
}

// WebhookDelivery is one attempt to deliver a job's webhook.
type WebhookDelivery struct {
	JobID string
	// Redelivery is 0 for the automatic delivery, n for the n-th manual redelivery.
	Redelivery int
	// Attempt numbers the tries of one delivery from 1.
	Attempt    int
	At         time.Time
	StatusCode int    // the receiver's HTTP status, 0 when none came back
	Error      string // why it failed ("" when delivered)
	Delivered  bool
}

// Proof is the result of a successful prove job.
type Proof struct {
	ID           string
	JobID        string
	Owner        string
	ModelID      string
	System       string
	Proof        []byte
	PublicInputs []string
	Outputs      [][]float64
	Calldata     []byte
	ProveSeconds float64
	// Provenance is the provenance of the keys the proof was made with (the model's
	// record for System when the proof was stored; nil when it had none).
	Provenance json.RawMessage
	// Bundle: Proof is a sharded model's bundle of segment proofs (JSON), and
	// PublicInputs and Calldata are empty.
	Bundle    bool
	CreatedAt time.Time
}

// Finish describes the terminal transition of a job run by attempt Attempt.
type Finish struct {
	Status       JobStatus // succeeded, failed or cancelled
	ErrorCode    string
	ErrorMessage string
	Proof        *Proof // stored in the same transaction when Status is succeeded
}

// Store is everything the API and the workers persist. Methods that take an owner
// return ErrNotFound for rows of other owners; an empty owner means "any" and is used
// only by workers. Implementations are safe for concurrent use.
type Store interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error

	CreateModel(ctx context.Context, m *Model) error
	GetModel(ctx context.Context, owner, id string) (*Model, error)
	ListModels(ctx context.Context, owner string) ([]*Model, error)
	// DeleteModel hides a model; its jobs and proofs stay readable.
	DeleteModel(ctx context.Context, owner, id string) error
	// SetModelCompiled records the result of compiling (status compiled or failed).
	SetModelCompiled(ctx context.Context, m *Model) error
	// AddModelSystem records that keys for system exist, and where they come from
	// (provenance: the engine's JSON record; nil records none).
	AddModelSystem(ctx context.Context, id, system string, provenance json.RawMessage) error
	// AdvanceCeremony records one change of the model's ceremony, atomically: only if
	// the ceremony's head is still step.From (ErrConflict otherwise: another change,
	// perhaps from another process, came first) it becomes step.To, step.Files are
	// merged into the manifest and step.System (if set) is added with its provenance.
	AdvanceCeremony(ctx context.Context, id string, step CeremonyStep) error
	// MergeModelFiles adds files (path -> digest) to the model's manifest, replacing
	// entries with the same path.
	MergeModelFiles(ctx context.Context, id string, files map[string]string) error
	// UpdateModelFiles is MergeModelFiles of the files fn returns, where fn gets the
	// model's manifest as it is and runs while no other change of the model can be
	// made (in the transaction, the model's row locked): a read-modify-write of the
	// manifest that no concurrent one, from this process or another, interleaves
	// with. If fn fails nothing changes.
	UpdateModelFiles(ctx context.Context, id string, fn func(cur map[string]string) (map[string]string, error)) error

	// CreateJob inserts j with status queued. If j.IdempotencyKey is set and the owner
	// already has a job with that key, the existing job is returned with created false.
	// Likewise for a setup job while a setup of the same model and system is queued or
	// running: keys are made once, so the one in flight is returned.
	CreateJob(ctx context.Context, j *Job) (job *Job, created bool, err error)
	GetJob(ctx context.Context, owner, id string) (*Job, error)
	// ListJobs returns jobs in status (all statuses when empty), oldest first.
	ListJobs(ctx context.Context, owner string, status JobStatus, limit int) ([]*Job, error)
	// StartJob moves a queued job, or a running one whose lease has expired, to running
	// under a new attempt number (the previous one plus one) with a lease of the given
	// length, and returns it; the run must present that number to Heartbeat, FinishJob
	// and RequeueJob, so a run that was superseded (its worker presumed dead) can no
	// longer change the job. A job in a terminal state yields ErrConflict; so does a
	// job with a cancel request, which becomes cancelled. A running job whose lease
	// has not expired yields ErrLeased.
	StartJob(ctx context.Context, id string, lease time.Duration) (*Job, error)
	// Heartbeat records progress of attempt, renews its lease for the given length and
	// reports whether cancellation was requested. It yields ErrConflict when attempt
	// no longer owns the job.
	Heartbeat(ctx context.Context, id string, attempt int, stage string, progress float64, lease time.Duration) (cancel bool, err error)
	// ReclaimJob takes a running job back from attempt when its lease has expired
	// (its worker died): cancelled if a cancel was requested, failed with error code
	// worker_lost when giveUp, else queued again with Reclaims incremented. It returns
	// the job after the change, and ErrConflict when attempt no longer runs it or its
	// lease is live (a late heartbeat won).
	ReclaimJob(ctx context.Context, id string, attempt int, giveUp bool) (*Job, error)
	// FinishJob ends attempt's run. It yields ErrConflict when the job is no longer
	// running under attempt, so a job completes at most once. Every transition that
	// ends a compile job without success (FinishJob, CancelJob, StartJob of a
	// cancelled job, ReclaimJob) marks its model failed in the same transaction.
	FinishJob(ctx context.Context, id string, attempt int, f Finish) (*Job, error)
	// RequeueJob moves attempt's running job back to queued (shutdown, retry).
	RequeueJob(ctx context.Context, id string, attempt int, reason string) error
	// CancelJob cancels a queued job at once and flags a running one; it returns the job
	// after the change and ErrConflict when it had already finished.
	CancelJob(ctx context.Context, owner, id string) (*Job, error)
	// CountJobs returns the number of jobs in each status.
	CountJobs(ctx context.Context) (map[JobStatus]int, error)
	// RecordWebhook stores one delivery attempt of a job's webhook and counts it on
	// the job.
	RecordWebhook(ctx context.Context, d *WebhookDelivery) error
	// WebhookDelivered reports whether a delivery (0: automatic, n: the n-th manual
	// redelivery) of the job's webhook succeeded.
	WebhookDelivered(ctx context.Context, id string, redelivery int) (bool, error)
	// RedeliverWebhook records a manual redelivery request of a finished job's webhook
	// and returns the job with WebhookRedeliveries counting it; ErrConflict when the
	// job has no webhook URL or has not finished.
	RedeliverWebhook(ctx context.Context, owner, id string) (*Job, error)

	// SpawnSegments fans the prove job parent, running under attempt, out into n
	// segment jobs (queued, kind segment, the parent's owner, model and system),
	// atomically: the parent records n and the activations digest and stays running
	// without a lease (Job.Waiting: StartJob answers ErrLeased, Reap passes it over)
	// until its segments are done. ErrConflict when attempt no longer runs the parent
	// or it has spawned already.
	SpawnSegments(ctx context.Context, parent string, attempt int, activations string, n int) ([]*Job, error)
	// FinishSegment ends attempt's run of a segment job with success, storing its
	// result, and counts it on the parent, in one transaction: the finisher of the
	// last segment moves the parent back to queued (to assemble the bundle), so
	// exactly one finisher sees the returned parent queued however many finish at
	// once. ErrConflict when attempt no longer runs the segment job. A segment job
	// that ends otherwise (FinishJob, ReclaimJob, CancelJob) fails its parent with the
	// segment's error and cancels the parent's other segments.
	FinishSegment(ctx context.Context, id string, attempt int, result []byte) (parent *Job, err error)
	// SegmentResults returns the results of parent's succeeded segment jobs, indexed
	// by segment (nil where none is stored).
	SegmentResults(ctx context.Context, parent string) ([][]byte, error)

	GetProof(ctx context.Context, owner, id string) (*Proof, error)

	Ping(ctx context.Context) error
	Close() error
}

// NewID returns a random identifier with a readable prefix, e.g. "job_3f2a...".
func NewID(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}
