// Package client is a typed Go client for the zkml proving service's HTTP API
// (api/openapi.json): API keys, model upload, setup and proof jobs, polling with
// backoff, proofs with their EVM calldata, verification, the Solidity verifier, job
// paging, and webhook signature checks.
//
// The response types are the server's own views (package api), so client and server
// cannot drift apart. Every non-2xx answer is an *Error carrying the API's stable
// error code; branch on it with IsCode.
//
//	c := client.New("http://127.0.0.1:8080", key)
//	created, _ := c.UploadModel(ctx, client.ModelUpload{Name: "cnn", ONNX: onnx})
//	_, _ = c.WaitJob(ctx, created.Job.ID, nil)
//	job, _ := c.Setup(ctx, created.Model.ID, client.SetupRequest{System: "groth16"})
//	_, _ = c.WaitJob(ctx, job.ID, nil)
//	proof, _ := c.ProveAndWait(ctx, created.Model.ID, client.ProofRequest{Input: input}, nil)
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zkml/zkml/api"
)

// The API's views, as the server writes them.
type (
	// Job is a compile, setup or prove job.
	Job = api.JobView
	// JobPage is one page of ListJobs.
	JobPage = api.JobPage
	// Model is an uploaded model.
	Model = api.ModelView
	// Proof is a finished proof with its calldata.
	Proof = api.ProofView
	// Key is an API key; Key.Key and Key.WebhookSecret are set only by CreateKey.
	Key = api.KeyView
)

// Job statuses (api/openapi.json JobStatus).
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Client calls one zkml service with one API key. The zero HTTP uses
// http.DefaultClient. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the service's root, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// Key is the bearer key: a tenant key, or the admin key for key management.
	Key string
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
}

// New returns a client of the service at baseURL authenticating with key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key}
}

// WithKey returns a copy of c that authenticates with key (e.g. a tenant key created
// with the admin client).
func (c *Client) WithKey(key string) *Client {
	d := *c
	d.Key = key
	return &d
}

// Error is a non-2xx answer of the API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's stable error code (e.g. "not_found", "model_not_ready"); see
	// the Error schema of api/openapi.json.
	Code string
	// Message is for humans.
	Message string
	// RetryAfter is the server's Retry-After (set on 503 unavailable).
	RetryAfter time.Duration
	// Method and Path name the request.
	Method, Path string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// IsCode reports whether err is (or wraps) an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// JobError is the error WaitJob returns for a job that failed or was cancelled.
type JobError struct {
	Job Job
}

func (e *JobError) Error() string {
	msg := fmt.Sprintf("%s job %s %s", e.Job.Kind, e.Job.ID, e.Job.Status)
	if e.Job.Error != nil {
		msg += ": " + e.Job.Error.Code + ": " + e.Job.Error.Message
	}
	return msg
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         any // JSON-encoded when non-nil
	header       [][2]string
	out          any     // JSON-decoded from a 2xx answer when non-nil
	raw          *[]byte // the raw 2xx body when non-nil
}

func (c *Client) do(ctx context.Context, r request) error {
	u := c.BaseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", r.method, r.path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range r.header {
		if h[1] != "" {
			req.Header.Set(h[0], h[1])
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode >= 300 {
		return apiError(r.method, r.path, resp, b)
	}
	if r.raw != nil {
		*r.raw = b
	}
	if r.out != nil {
		if err := json.Unmarshal(b, r.out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.path, err)
		}
	}
	return nil
}

// apiError reads the API's error body {"error": {"code", "message"}}; an answer
// without one (a proxy's page, say) keeps its status and text.
func apiError(method, path string, resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Method: method, Path: path}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(body))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// ---- health ----

// Healthy checks GET /healthz (the process is up).
func (c *Client) Healthy(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz"})
}

// Ready checks GET /readyz (the service can serve requests: its store answers).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz"})
}

// WaitReady polls Ready until it succeeds or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	b := Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		err := c.Ready(ctx)
		if err == nil {
			return nil
		}
		if werr := b.wait(ctx, nil); werr != nil {
			return fmt.Errorf("waiting for the service: %w (last: %v)", werr, err)
		}
	}
}

// OpenAPI returns the service's OpenAPI document (GET /v1/openapi.json).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/openapi.json", raw: &b})
	return b, err
}

// ---- keys (admin key) ----

// CreateKey creates a tenant API key; the answer holds the key and its webhook secret,
// which the service never shows again.
func (c *Client) CreateKey(ctx context.Context, name string) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/keys", body: map[string]string{"name": name}, out: &k})
	return k, err
}

// ListKeys lists the API keys (without their secrets).
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/keys", out: &out})
	return out.Keys, err
}

// RevokeKey revokes an API key.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/keys/" + url.PathEscape(id)})
}

// ---- models ----

// ModelUpload is the body of UploadModel.
type ModelUpload struct {
	Name string
	// ONNX is the model file.
	ONNX []byte
	// Settings is a JSON object of compile settings (see `zkml compile --help`); nil
	// means the defaults.
	Settings json.RawMessage
	// WebhookURL, when set, receives the compile job when it ends.
	WebhookURL string
}

// CreatedModel is the answer of UploadModel: the model and its compile job.
type CreatedModel struct {
	Model Model `json:"model"`
	Job   Job   `json:"job"`
}

// UploadModel uploads a model (POST /v1/models), which queues its compile job.
func (c *Client) UploadModel(ctx context.Context, m ModelUpload) (CreatedModel, error) {
	body := struct {
		Name       string          `json:"name,omitempty"`
		ONNX       string          `json:"onnx"`
		Settings   json.RawMessage `json:"settings,omitempty"`
		WebhookURL string          `json:"webhook_url,omitempty"`
	}{m.Name, base64.StdEncoding.EncodeToString(m.ONNX), m.Settings, m.WebhookURL}
	var out CreatedModel
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/models", body: body, out: &out})
	return out, err
}

// GetModel returns one model.
func (c *Client) GetModel(ctx context.Context, id string) (Model, error) {
	var m Model
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/models/" + url.PathEscape(id), out: &m})
	return m, err
}

// ListModels lists the caller's models.
func (c *Client) ListModels(ctx context.Context) ([]Model, error) {
	var out struct {
		Models []Model `json:"models"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/models", out: &out})
	return out.Models, err
}

// DeleteModel deletes a model; its proofs stay readable.
func (c *Client) DeleteModel(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/models/" + url.PathEscape(id)})
}

// SetupRequest is the body of Setup.
type SetupRequest struct {
	// System is "groth16" (the default when empty) or "plonk".
	System     string `json:"system,omitempty"`
	WebhookURL string `json:"webhook_url,omitempty"`
	// IdempotencyKey, when set, makes a retried request return the first one's job.
	IdempotencyKey string `json:"-"`
}

// Setup queues the key generation of a compiled model for one proving system.
func (c *Client) Setup(ctx context.Context, modelID string, r SetupRequest) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/models/" + url.PathEscape(modelID) + "/setup",
		body: r, header: [][2]string{{"Idempotency-Key", r.IdempotencyKey}}, out: &j})
	return j, err
}

// VerifierSolidity downloads the Solidity verifier of a model's keys
// (GET /v1/models/{id}/verifier.sol).
func (c *Client) VerifierSolidity(ctx context.Context, modelID, system string) ([]byte, error) {
	var b []byte
	q := url.Values{}
	if system != "" {
		q.Set("system", system)
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/models/" + url.PathEscape(modelID) + "/verifier.sol", query: q, raw: &b})
	return b, err
}

// ---- proofs ----

// ProofRequest is the body of Prove.
type ProofRequest struct {
	// System is "groth16" (the default when empty) or "plonk".
	System string `json:"system,omitempty"`
	// Input is an input.json document: {"input_data": [[...flat row-major floats...]]}.
	Input      json.RawMessage `json:"input"`
	WebhookURL string          `json:"webhook_url,omitempty"`
	// IdempotencyKey, when set, makes a retried request return the first one's job.
	IdempotencyKey string `json:"-"`
}

// InputData builds a ProofRequest.Input from one flat row-major list per model input.
func InputData(rows ...[]float64) json.RawMessage {
	b, err := json.Marshal(map[string][][]float64{"input_data": rows})
	if err != nil {
		// Only NaN or an infinity fails to encode; the service rejects those anyway,
		// so send a body it answers with invalid input.
		return json.RawMessage(`{"input_data": null}`)
	}
	return b
}

// Prove queues a proof of one inference of a set-up model.
func (c *Client) Prove(ctx context.Context, modelID string, r ProofRequest) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/models/" + url.PathEscape(modelID) + "/proofs",
		body: r, header: [][2]string{{"Idempotency-Key", r.IdempotencyKey}}, out: &j})
	return j, err
}

// GetProof returns a finished proof.
func (c *Client) GetProof(ctx context.Context, id string) (Proof, error) {
	var p Proof
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/proofs/" + url.PathEscape(id), out: &p})
	return p, err
}

// ProveAndWait queues a proof, waits for its job (see WaitJob) and returns the proof.
func (c *Client) ProveAndWait(ctx context.Context, modelID string, r ProofRequest, b *Backoff) (Proof, error) {
	j, err := c.Prove(ctx, modelID, r)
	if err != nil {
		return Proof{}, err
	}
	if j, err = c.WaitJob(ctx, j.ID, b); err != nil {
		return Proof{}, err
	}
	return c.GetProof(ctx, j.ProofID)
}

// Calldata decodes the proof's calldata: the ABI-encoded call of the verifier
// contract's verifyProof, ready to send as a transaction's data.
func Calldata(p Proof) ([]byte, error) {
	return decodeHex("calldata", p.Calldata)
}

// ProofBytes decodes the proof's bytes.
func ProofBytes(p Proof) ([]byte, error) {
	return decodeHex("proof", p.Proof)
}

func decodeHex(what, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, fmt.Errorf("%s is not 0x-prefixed hex: %w", what, err)
	}
	return b, nil
}

// VerifyRequest is the body of Verify: either ProofID (a stored proof), or ModelID,
// System, Proof and PublicInputs (a proof from anywhere), or for a sharded model
// ModelID, System and Bundle (as Proof.Bundle).
type VerifyRequest struct {
	ProofID string `json:"proof_id,omitempty"`
	ModelID string `json:"model_id,omitempty"`
	System  string `json:"system,omitempty"`
	// Proof is 0x-prefixed hex, as Proof.Proof.
	Proof string `json:"proof,omitempty"`
	// PublicInputs are decimal field elements, as Proof.PublicInputs.
	PublicInputs []string `json:"public_inputs,omitempty"`
	// Bundle is a sharded model's proof, as Proof.Bundle.
	Bundle json.RawMessage `json:"bundle,omitempty"`
}

// VerifyResult is the answer of Verify; Reason says why an invalid proof is invalid.
type VerifyResult struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// Verify checks a proof with the service (POST /v1/verify). An invalid proof is not
// an error: it answers Valid false with a Reason.
func (c *Client) Verify(ctx context.Context, r VerifyRequest) (VerifyResult, error) {
	var v VerifyResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/verify", body: r, out: &v})
	return v, err
}

// ---- jobs ----

// GetJob returns one job.
func (c *Client) GetJob(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/jobs/" + url.PathEscape(id), out: &j})
	return j, err
}

// CancelJob asks for a job to be cancelled.
func (c *Client) CancelJob(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/jobs/" + url.PathEscape(id) + "/cancel", out: &j})
	return j, err
}

// RedeliverWebhook asks the service to deliver a finished job's webhook again (POST
// /v1/jobs/{id}/webhook), for a receiver that was down past the retry window or lost
// the event. The job's webhook.deliveries list every attempt.
func (c *Client) RedeliverWebhook(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/jobs/" + url.PathEscape(id) + "/webhook", out: &j})
	return j, err
}

// JobFilter selects the jobs of ListJobs and Jobs.
type JobFilter struct {
	// Status is one job status, or "" for all.
	Status string
	// Limit is the page size (the service's default when 0; at most api.MaxPageSize).
	Limit int
	// Cursor is a previous page's NextCursor ("" for the first page).
	Cursor string
}

// ListJobs returns one page of the caller's jobs, oldest first.
func (c *Client) ListJobs(ctx context.Context, f JobFilter) (JobPage, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	var p JobPage
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/jobs", query: q, out: &p})
	return p, err
}

// Jobs iterates over all the caller's jobs matching f, page by page from f.Cursor; it
// stops at the first error, which it yields.
func (c *Client) Jobs(ctx context.Context, f JobFilter) iter.Seq2[Job, error] {
	return func(yield func(Job, error) bool) {
		for {
			p, err := c.ListJobs(ctx, f)
			if err != nil {
				yield(Job{}, err)
				return
			}
			for _, j := range p.Jobs {
				if !yield(j, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			f.Cursor = p.NextCursor
		}
	}
}

// Backoff paces WaitJob's polling: the first wait is Initial, each next one Factor
// times longer up to Max. OnUpdate, when set, sees every job view polled (its Stage
// and Progress report how far a running job is).
type Backoff struct {
	Initial, Max time.Duration
	Factor       float64
	OnUpdate     func(Job)

	next time.Duration
}

// DefaultBackoff is WaitJob's pacing when given nil: 100ms, growing by half up to 2s.
func DefaultBackoff() *Backoff {
	return &Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Factor: 1.5}
}

// wait sleeps for the next interval, or for the server's Retry-After when err is a
// 503 that carries one.
func (b *Backoff) wait(ctx context.Context, err error) error {
	if b.next == 0 {
		b.next = b.Initial
	}
	d := b.next
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > d {
		d = e.RetryAfter
	}
	f := b.Factor
	if f < 1 {
		f = 1.5
	}
	b.next = min(time.Duration(float64(b.next)*f), max(b.Max, b.Initial))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WaitJob polls a job until it ends, with backoff b (DefaultBackoff when nil). It
// returns the succeeded job (with ProofID for a prove job), a *JobError for a job
// that failed or was cancelled, or ctx's error. A 503 unavailable answer (the
// service's database is down for a while) is waited out, honouring Retry-After.
func (c *Client) WaitJob(ctx context.Context, id string, b *Backoff) (Job, error) {
	if b == nil {
		b = DefaultBackoff()
	}
	pace := *b // each wait starts again from Initial
	pace.next = 0
	for {
		j, err := c.GetJob(ctx, id)
		var e *Error
		switch {
		case err == nil:
			if b.OnUpdate != nil {
				b.OnUpdate(j)
			}
			switch j.Status {
			case StatusSucceeded:
				return j, nil
			case StatusFailed, StatusCancelled:
				return j, &JobError{Job: j}
			}
		case errors.As(err, &e) && e.Status == http.StatusServiceUnavailable:
		default:
			return Job{}, err
		}
		if werr := pace.wait(ctx, err); werr != nil {
			return j, fmt.Errorf("waiting for job %s: %w", id, werr)
		}
	}
}

// ---- webhooks ----

// SignatureHeader is the header that carries a webhook's signature.
const SignatureHeader = api.SignatureHeader

// WebhookEvent is the body the service POSTs to a job's webhook_url when the job ends.
type WebhookEvent struct {
	// Type is "job.succeeded", "job.failed" or "job.cancelled".
	Type string `json:"type"`
	Job  Job    `json:"job"`
}

// DefaultWebhookTolerance is how old (or how far in the future) a webhook's signature
// time may be for ParseWebhook.
const DefaultWebhookTolerance = 5 * time.Minute

// VerifyWebhook checks a webhook's signature header against its raw body with the
// key's webhook secret, rejecting signatures older than tolerance (replays). It is the
// server's own check (api.VerifyWebhook).
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	return api.VerifyWebhook(secret, header, body, now, tolerance)
}

// ParseWebhook reads a webhook request (at most 1 MiB), checks its signature with
// secret (DefaultWebhookTolerance) and decodes the event. Use it in the receiving
// handler; answer 2xx only when it succeeds, or the service retries.
func ParseWebhook(r *http.Request, secret string) (WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("webhook: reading the body: %w", err)
	}
	if err := VerifyWebhook(secret, r.Header.Get(SignatureHeader), body, time.Now(), DefaultWebhookTolerance); err != nil {
		return WebhookEvent{}, err
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("webhook: decoding the event: %w", err)
	}
	return ev, nil
}
