package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/zkml/zkml/internal/store"
)

// ---- keys (admin) ----

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	name, err := DecodeCreateKeyRequest(body)
	if err != nil {
		return err
	}
	key := NewKey()
	k := &store.APIKey{ID: store.NewID("key"), Name: name, Hash: HashKey(key), WebhookSecret: newWebhookSecret()}
	if err := s.store.CreateAPIKey(r.Context(), k); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, KeyView{ID: k.ID, Name: k.Name, Key: key, WebhookSecret: k.WebhookSecret, CreatedAt: k.CreatedAt})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.store.ListAPIKeys(r.Context())
	if err != nil {
		return err
	}
	out := make([]KeyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyView{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.store.RevokeAPIKey(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- models ----

func (s *Server) createModel(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	// The body may carry the model base64-encoded (4/3 of its size) plus the other
	// fields and multipart framing, which get MaxBodyBytes; the decoded model itself is
	// held to MaxModelBytes below.
	r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxModelBytes/3*4+4+s.limits.MaxBodyBytes)
	req, err := decodeModelRequest(r, s.limits.MaxModelBytes)
	if err != nil {
		return err
	}
	if int64(len(req.ONNX)) > s.limits.MaxModelBytes {
		return &http.MaxBytesError{Limit: s.limits.MaxModelBytes}
	}
	if c, ok := s.engine.(SettingsChecker); ok {
		if err := c.CheckSettings(req.Settings); err != nil {
			return &Error{Kind: KindBadRequest, Code: CodeInvalidSettings, Message: EngineErrorMessage(err), Err: err}
		}
	}
	if err := s.admit(r.Context(), req.ONNX, req.Settings); err != nil {
		return err
	}
	if err := s.checkWebhookTarget(r.Context(), req.WebhookURL); err != nil {
		return err
	}
	digest, size, err := s.blobs.Put(r.Context(), bytes.NewReader(req.ONNX))
	if err != nil {
		return err
	}
	m := &store.Model{ID: store.NewID("mdl"), Owner: p.keyID, Name: req.Name, Status: store.ModelCompiling,
		ONNXDigest: string(digest), ONNXSize: size, Settings: req.Settings}
	// The model and its compile job are recorded one after the other: a client that
	// hangs up in between must not leave a model compiling with no job to compile it.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	if err := s.store.CreateModel(r.Context(), m); err != nil {
		return err
	}
	j, _, err := s.newJob(r, &store.Job{Owner: p.keyID, ModelID: m.ID, Kind: store.KindCompile, WebhookURL: req.WebhookURL})
	if err != nil {
		// Nothing will compile the model: record it failed rather than compiling
		// forever (the client, told the upload failed, uploads it again).
		m.Status, m.Error = store.ModelFailed, "its compile job could not be recorded: "+err.Error()
		if ferr := s.store.SetModelCompiled(r.Context(), m); ferr != nil {
			s.log.ErrorContext(r.Context(), "model recorded without its compile job, and marking it failed failed too", "model", m.ID, "err", ferr)
		}
		return err
	}
	w.Header().Set("Location", "/v1/models/"+m.ID)
	return writeJSON(w, http.StatusAccepted, map[string]any{"model": newModelView(m), "job": NewJobView(j)})
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.ListModels(r.Context(), principalFrom(r.Context()).keyID)
	if err != nil {
		return err
	}
	out := make([]ModelView, 0, len(ms))
	for _, m := range ms {
		out = append(out, newModelView(m))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

func (s *Server) model(r *http.Request) (*store.Model, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	return s.store.GetModel(r.Context(), principalFrom(r.Context()).keyID, id)
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	m, err := s.model(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newModelView(m))
}

func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteModel(r.Context(), principalFrom(r.Context()).keyID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func notReady(format string, args ...any) *Error {
	return errorf(KindConflict, "model_not_ready", format, args...)
}

// compiled checks that m can be set up or proven: a model still compiling is not ready
// yet (409 model_not_ready), one whose compile failed never will be (409
// model_failed, with the compile error).
func compiled(m *store.Model) error {
	switch m.Status {
	case store.ModelCompiled:
		return nil
	case store.ModelFailed:
		return errorf(KindConflict, "model_failed", "model %s failed to compile (%s); upload a corrected model", m.ID, m.Error)
	}
	return notReady("model %s is %s; wait until it is compiled", m.ID, m.Status)
}

func (s *Server) setupModel(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeSetupRequest(body)
	if err != nil {
		return err
	}
	m, err := s.model(r)
	if err != nil {
		return err
	}
	if err := compiled(m); err != nil {
		return err
	}
	if m.HasSystem(req.System) {
		return errorf(KindConflict, "already_set_up", "model %s already has %s keys", m.ID, req.System)
	}
	return s.submit(w, r, body, &store.Job{Owner: m.Owner, ModelID: m.ID, Kind: store.KindSetup, System: req.System,
		WebhookURL: req.WebhookURL})
}

func (s *Server) createProof(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeProofRequest(body)
	if err != nil {
		return err
	}
	m, err := s.model(r)
	if err != nil {
		return err
	}
	if err := compiled(m); err != nil {
		return err
	}
	if !m.HasSystem(req.System) {
		return notReady("model %s has no %s keys yet; run setup first", m.ID, req.System)
	}
	if err := CheckInputShapes(req.Input, m.Inputs); err != nil {
		return err
	}
	return s.submit(w, r, body, &store.Job{Owner: m.Owner, ModelID: m.ID, Kind: store.KindProve, System: req.System,
		Input: req.Input, WebhookURL: req.WebhookURL})
}

// submit creates the job, honouring Idempotency-Key: a repeated key with the same
// request returns the original job; with a different request it is rejected.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, body []byte, j *store.Job) error {
	if err := s.checkWebhookTarget(r.Context(), j.WebhookURL); err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return badRequest("Idempotency-Key is longer than 255 bytes")
	}
	if err := checkText("Idempotency-Key", key); err != nil {
		return err
	}
	if key != "" {
		h := sha256.New()
		h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
		h.Write(body)
		j.IdempotencyKey, j.RequestHash = key, hex.EncodeToString(h.Sum(nil))
	}
	got, created, err := s.newJob(r, j)
	if err != nil {
		return err
	}
	if !created && (key == "" || got.IdempotencyKey != key) {
		// The store returned the setup of this model and system already in flight.
		return existingSetup(w, got)
	}
	if !created {
		if got.RequestHash != j.RequestHash {
			return errorf(KindUnprocessable, "idempotency_key_reused", "Idempotency-Key %q was used for a different request", key)
		}
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/jobs/"+got.ID)
	return writeJSON(w, http.StatusAccepted, NewJobView(got))
}

// newJob records j and enqueues it. If enqueueing fails the job stays queued in the
// store and the workers' sweeper enqueues it later, so the request still succeeds.
func (s *Server) newJob(r *http.Request, j *store.Job) (*store.Job, bool, error) {
	j.ID = store.NewID("job")
	got, created, err := s.store.CreateJob(r.Context(), j)
	if err != nil {
		return nil, false, err
	}
	if created {
		if err := s.queue.Enqueue(r.Context(), got); err != nil {
			s.log.WarnContext(r.Context(), "enqueue failed; the sweeper will retry", "job", got.ID, "err", err)
		}
	}
	return got, created, nil
}

// TrustHeader carries the trust level of the keys behind a downloaded verifier.
const TrustHeader = "Zkml-Setup-Trust"

func (s *Server) verifierSol(w http.ResponseWriter, r *http.Request) error {
	m, err := s.model(r)
	if err != nil {
		return err
	}
	sys, err := checkSystem(r.URL.Query().Get("system"))
	if err != nil {
		return err
	}
	if !m.HasSystem(sys) {
		return notReady("model %s has no %s keys yet; run setup first", m.ID, sys)
	}
	dir, err := s.ws.Dir(r.Context(), m)
	if err != nil {
		return err
	}
	var src []byte
	if seg := r.URL.Query().Get("segment"); seg != "" {
		// One segment's verifier of a sharded model.
		i, perr := strconv.Atoi(seg)
		se, ok := s.engine.(ShardEngine)
		switch {
		case perr != nil || i < 0:
			return badRequest("segment must be a segment index")
		case !ok:
			return errorf(KindUnprocessable, "not_supported", "this service does not run sharded models")
		}
		src, err = se.SegmentVerifier(r.Context(), dir, sys, i)
	} else {
		src, err = s.engine.SolidityVerifier(r.Context(), dir, sys)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID+`_`+sys+`_verifier.sol"`)
	prov := decodeProvenance(m.Provenance[sys])
	w.Header().Set(TrustHeader, prov.Trust)
	if prov.Development() {
		// Said in the response too, not only in the source's banner: a client that
		// deploys the file unread still sees it.
		w.Header().Set("Warning", `299 zkml "`+sys+` keys of model `+m.ID+` are `+strings.ToUpper(prov.Trust)+
			` keys: whoever ran their setup can forge proofs this verifier accepts; do not deploy it in production"`)
	}
	w.Write(src)
	return nil
}

// ---- jobs ----

// JobPager is a store that lists jobs by pages (ours do: see sqldb.ListJobsAfter).
type JobPager interface {
	// ListJobsAfter returns up to limit jobs of owner in status (all when empty) after
	// the job with ID after (from the first when empty), oldest first; an after that is
	// not one of owner's jobs yields store.ErrNotFound.
	ListJobsAfter(ctx context.Context, owner string, status store.JobStatus, after string, limit int) ([]*store.Job, error)
}

// Page sizes of GET /v1/jobs.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// listJobs answers one page of the caller's jobs, oldest first. A page that is not the
// last carries next_cursor, which the next request passes as cursor.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	status := store.JobStatus(q.Get("status"))
	switch status {
	case "", store.JobQueued, store.JobRunning, store.JobSucceeded, store.JobFailed, store.JobCancelled:
	default:
		return badRequest("unknown status %q", status)
	}
	limit := DefaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return badRequest("limit must be an integer from 1 to %d", MaxPageSize)
		}
		limit = n
	}
	cursor := q.Get("cursor")
	owner := principalFrom(r.Context()).keyID
	var js []*store.Job
	var err error
	if pager, ok := s.store.(JobPager); ok {
		if checkText("cursor", cursor) != nil {
			return badRequest("cursor %q is not one this listing returned", cursor)
		}
		js, err = pager.ListJobsAfter(r.Context(), owner, status, cursor, limit+1)
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("cursor %q is not one this listing returned", cursor)
		}
	} else {
		if cursor != "" {
			return badRequest("this store does not page job listings")
		}
		js, err = s.store.ListJobs(r.Context(), owner, status, limit)
	}
	if err != nil {
		return err
	}
	page := JobPage{Jobs: make([]JobView, 0, min(len(js), limit))}
	for i, j := range js {
		if i == limit {
			page.NextCursor = js[i-1].ID
			break
		}
		page.Jobs = append(page.Jobs, NewJobView(j))
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := s.store.GetJob(r.Context(), principalFrom(r.Context()).keyID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, NewJobView(j))
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := s.store.CancelJob(r.Context(), principalFrom(r.Context()).keyID, id)
	if errors.Is(err, store.ErrConflict) {
		return errorf(KindConflict, "job_finished", "job %s already %s", j.ID, j.Status)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, NewJobView(j))
}

// ---- proofs ----

func (s *Server) getProof(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p, err := s.store.GetProof(r.Context(), principalFrom(r.Context()).keyID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newProofView(p))
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	owner := principalFrom(r.Context()).keyID
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeVerifyRequest(body)
	if err != nil {
		return err
	}
	if req.ProofID != "" {
		p, err := s.store.GetProof(r.Context(), owner, req.ProofID)
		if err != nil {
			return err
		}
		req.ModelID, req.System, req.Proof, req.PublicInputs = p.ModelID, p.System, p.Proof, p.PublicInputs
		if p.Bundle {
			req.Proof, req.PublicInputs, req.Bundle = nil, nil, p.Proof
		}
	}
	m, err := s.store.GetModel(r.Context(), owner, req.ModelID)
	if req.ProofID != "" && errors.Is(err, store.ErrNotFound) {
		// The proof exists and stays readable, so its model existed: it was deleted,
		// and its verifying key went with it. Say so rather than "not found".
		return errorf(KindGone, "model_deleted", "proof %s is of model %s, which was deleted: the service no longer verifies its proofs (a verifier contract deployed from it still does)", req.ProofID, req.ModelID)
	}
	if err != nil {
		return err
	}
	if !m.HasSystem(req.System) {
		return notReady("model %s has no %s keys", m.ID, req.System)
	}
	dir, err := s.ws.Dir(r.Context(), m)
	if err != nil {
		return err
	}
	var v Verdict
	if req.Bundle != nil {
		se, ok := s.engine.(ShardEngine)
		if !ok {
			return errorf(KindUnprocessable, "not_supported", "this service does not verify bundles of sharded models")
		}
		v, err = se.VerifyBundle(r.Context(), dir, req.System, req.Bundle)
	} else {
		v, err = s.engine.Verify(r.Context(), dir, req.System, req.Proof, req.PublicInputs)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, verifyView(v))
}
