package api

import (
	"encoding/json"
	"time"

	"github.com/zkml/zkml/internal/store"
)

// JobView is the JSON form of a job, returned by the job endpoints and sent as the
// webhook payload.
type JobView struct {
	ID              string     `json:"id"`
	ModelID         string     `json:"model_id"`
	Kind            string     `json:"kind"`
	System          string     `json:"system,omitempty"`
	Status          string     `json:"status"`
	Stage           string     `json:"stage,omitempty"`
	Progress        float64    `json:"progress"`
	Attempt         int        `json:"attempt"`
	CancelRequested bool       `json:"cancel_requested"`
	Error           *ErrorView `json:"error,omitempty"`
	ProofID         string     `json:"proof_id,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	QueuedSeconds   *float64   `json:"queued_seconds,omitempty"`
	RunSeconds      *float64   `json:"run_seconds,omitempty"`
	// Webhook is the job's webhook and its delivery attempts (none without webhook_url).
	Webhook *WebhookView `json:"webhook,omitempty"`
	// Segments: a prove job of a sharded model, once its segment jobs are spawned.
	Segments *SegmentsView `json:"segments,omitempty"`
	// ParentID and Segment: a segment job's prove job and segment index.
	ParentID string `json:"parent_id,omitempty"`
	Segment  *int   `json:"segment,omitempty"`
}

// SegmentsView is the progress of a sharded proof: segment proofs done of total.
type SegmentsView struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// JobPage is one page of GET /v1/jobs; NextCursor, absent on the last page, is the
// cursor of the next.
type JobPage struct {
	Jobs       []JobView `json:"jobs"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ErrorView is a job's failure.
type ErrorView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewJobView renders j.
func NewJobView(j *store.Job) JobView {
	v := JobView{
		ID: j.ID, ModelID: j.ModelID, Kind: string(j.Kind), System: j.System, Status: string(j.Status),
		Stage: j.Stage, Progress: j.Progress, Attempt: j.Attempt, CancelRequested: j.CancelRequested,
		ProofID: j.ProofID, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Webhook: newWebhookView(j),
	}
	if j.SegmentsTotal > 0 {
		v.Segments = &SegmentsView{Done: j.SegmentsDone, Total: j.SegmentsTotal}
	}
	if j.ParentID != "" {
		v.ParentID = j.ParentID
		seg := j.Segment
		v.Segment = &seg
	}
	if j.Status.Terminal() && j.ErrorCode != "" {
		v.Error = &ErrorView{Code: j.ErrorCode, Message: j.ErrorMessage}
	}
	if j.StartedAt != nil {
		q := j.StartedAt.Sub(j.CreatedAt).Seconds()
		v.QueuedSeconds = &q
		if j.FinishedAt != nil {
			r := j.FinishedAt.Sub(*j.StartedAt).Seconds()
			v.RunSeconds = &r
		}
	}
	return v
}

// ModelView is the JSON form of a model.
type ModelView struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Status        string          `json:"status"`
	ONNXDigest    string          `json:"onnx_digest"`
	ONNXSize      int64           `json:"onnx_size"`
	Settings      json.RawMessage `json:"settings"`
	EngineModelID string          `json:"engine_model_id,omitempty"`
	Constraints   map[string]int  `json:"constraints"`
	Inputs        [][]int         `json:"inputs"`
	Outputs       [][]int         `json:"outputs"`
	Stats         json.RawMessage `json:"stats,omitempty"`
	Systems       []string        `json:"systems"`
	// Trust says, for each system in Systems, where its keys come from.
	Trust map[string]Provenance `json:"trust"`
	// Ceremony is the state of the model's Groth16 ceremony, when one was opened.
	Ceremony  *CeremonyHeadView `json:"ceremony,omitempty"`
	Error     string            `json:"error,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

func newModelView(m *store.Model) ModelView {
	v := ModelView{
		ID: m.ID, Name: m.Name, Status: string(m.Status), ONNXDigest: m.ONNXDigest, ONNXSize: m.ONNXSize,
		Settings: m.Settings, EngineModelID: m.EngineModelID, Constraints: m.Constraints, Inputs: m.Inputs,
		Outputs: m.Outputs, Stats: m.Stats, Systems: m.Systems, Error: m.Error, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if v.Constraints == nil {
		v.Constraints = map[string]int{}
	}
	if v.Inputs == nil {
		v.Inputs = [][]int{}
	}
	if v.Outputs == nil {
		v.Outputs = [][]int{}
	}
	if v.Systems == nil {
		v.Systems = []string{}
	}
	v.Trust = make(map[string]Provenance, len(v.Systems))
	for _, sys := range v.Systems {
		v.Trust[sys] = decodeProvenance(m.Provenance[sys])
	}
	if m.Ceremony.Hash != "" {
		v.Ceremony = &CeremonyHeadView{Contributions: m.Ceremony.Contributions, Head: m.Ceremony.Hash, Sealed: m.Ceremony.Sealed}
	}
	return v
}

// CeremonyHeadView is where a model's ceremony stands: the number of accepted
// contributions and the SHA-256 of the current state (the one the next contribution
// must build on).
type CeremonyHeadView struct {
	Contributions int    `json:"contributions"`
	Head          string `json:"head_sha256"`
	Sealed        bool   `json:"sealed"`
}

// ProofView is the JSON form of a proof; bytes are 0x-prefixed hex.
type ProofView struct {
	ID           string      `json:"id"`
	JobID        string      `json:"job_id"`
	ModelID      string      `json:"model_id"`
	System       string      `json:"system"`
	Proof        string      `json:"proof"`
	PublicInputs []string    `json:"public_inputs"`
	Outputs      [][]float64 `json:"outputs"`
	Calldata     string      `json:"calldata"`
	ProveSeconds float64     `json:"prove_seconds"`
	// Trust says where the keys the proof was made with come from.
	Trust Provenance `json:"trust"`
	// Bundle is a sharded model's proof: its segment proofs with their public inputs,
	// the plan ID and the claimed outputs (proof and public_inputs are then empty;
	// calldata calls the bundle verifier's verify(bytes[], uint256[][])). POST
	// /v1/verify checks it as a whole.
	Bundle    json.RawMessage `json:"bundle,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

func newProofView(p *store.Proof) ProofView {
	v := ProofView{ID: p.ID, JobID: p.JobID, ModelID: p.ModelID, System: p.System, Proof: hexString(p.Proof),
		PublicInputs: p.PublicInputs, Outputs: p.Outputs, Calldata: hexString(p.Calldata),
		ProveSeconds: p.ProveSeconds, Trust: decodeProvenance(p.Provenance), CreatedAt: p.CreatedAt}
	if p.Bundle {
		v.Proof, v.PublicInputs, v.Bundle = "", []string{}, json.RawMessage(p.Proof)
	}
	return v
}

// verifyView is the answer of POST /v1/verify.
type verifyView struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// KeyView is the JSON form of an API key; Key and WebhookSecret appear only on creation.
type KeyView struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Key           string     `json:"key,omitempty"`
	WebhookSecret string     `json:"webhook_secret,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
}
