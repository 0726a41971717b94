package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/client"
	"github.com/zkml/zkml/client/clienttest"
	"github.com/zkml/zkml/internal/onnxtest"
)

// TestClientFlow drives the whole dApp flow through the client against the real
// service: key, upload, compile, setup, proof (with a signed webhook), calldata,
// verification of the proof and of a forged one, the Solidity verifier, job paging,
// and the API's error codes.
func TestClientFlow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := clienttest.Start(t)
	if err := admin.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := admin.OpenAPI(ctx)
	if err != nil || !json.Valid(doc) {
		t.Fatalf("openapi: %v (valid JSON %v)", err, json.Valid(doc))
	}

	key, err := admin.CreateKey(ctx, "dapp")
	if err != nil {
		t.Fatal(err)
	}
	if key.Key == "" || key.WebhookSecret == "" {
		t.Fatalf("created key lacks its secrets: %+v", key)
	}
	c := admin.WithKey(key.Key)
	if _, err := c.ListKeys(ctx); !client.IsCode(err, "forbidden") {
		t.Fatalf("tenant ListKeys: %v, want forbidden", err)
	}

	// Webhook receiver: checks every delivery with the key's secret.
	events := make(chan client.WebhookEvent, 8)
	var rejected atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := client.ParseWebhook(r, key.WebhookSecret)
		if err != nil {
			rejected.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events <- ev
	}))
	defer hook.Close()

	created, err := c.UploadModel(ctx, client.ModelUpload{Name: "tiny", ONNX: onnxtest.TinyGemm(1)})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	b := &client.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2,
		OnUpdate: func(j client.Job) { seen = append(seen, j.Status) }}
	if _, err := c.WaitJob(ctx, created.Job.ID, b); err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 || seen[len(seen)-1] != client.StatusSucceeded {
		t.Fatalf("OnUpdate saw %v", seen)
	}
	m, err := c.GetModel(ctx, created.Model.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "compiled" || m.EngineModelID == "" || m.Constraints["groth16"] == 0 {
		t.Fatalf("model after compile: %+v", m)
	}
	input := client.InputData([]float64{1, -0.5, 0.25, 2})
	if _, err := c.Prove(ctx, m.ID, client.ProofRequest{Input: input}); !client.IsCode(err, "model_not_ready") {
		t.Fatalf("prove before setup: %v, want model_not_ready", err)
	}
	setup, err := c.Setup(ctx, m.ID, client.SetupRequest{System: "groth16", IdempotencyKey: "setup-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Setup(ctx, m.ID, client.SetupRequest{System: "groth16", IdempotencyKey: "setup-1"})
	if err != nil || again.ID != setup.ID {
		t.Fatalf("replayed setup: job %q, err %v; want job %q", again.ID, err, setup.ID)
	}
	if _, err := c.WaitJob(ctx, setup.ID, nil); err != nil {
		t.Fatal(err)
	}

	proof, err := c.ProveAndWait(ctx, m.ID, client.ProofRequest{Input: input, WebhookURL: hook.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if proof.ModelID != m.ID || proof.System != "groth16" || len(proof.Outputs) != 1 || len(proof.Outputs[0]) != 3 {
		t.Fatalf("proof: %+v", proof)
	}
	calldata, err := client.Calldata(proof)
	if err != nil || len(calldata) < 4+8*32 {
		t.Fatalf("calldata: %d bytes, %v", len(calldata), err)
	}
	if pb, err := client.ProofBytes(proof); err != nil || len(pb) == 0 {
		t.Fatalf("proof bytes: %d, %v", len(pb), err)
	}
	select {
	case ev := <-events:
		if ev.Type != "job.succeeded" || ev.Job.ProofID != proof.ID {
			t.Fatalf("webhook event %+v, want job.succeeded of proof %s", ev, proof.ID)
		}
	case <-ctx.Done():
		t.Fatal("no webhook delivered")
	}
	// A manual redelivery sends the same event again, signed.
	if _, err := c.RedeliverWebhook(ctx, proof.JobID); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	select {
	case ev := <-events:
		if ev.Type != "job.succeeded" || ev.Job.ProofID != proof.ID {
			t.Fatalf("redelivered event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no webhook redelivered")
	}
	if n := rejected.Load(); n != 0 {
		t.Fatalf("%d webhook deliveries failed the signature check", n)
	}

	v, err := c.Verify(ctx, client.VerifyRequest{ProofID: proof.ID})
	if err != nil || !v.Valid {
		t.Fatalf("verify stored proof: %+v, %v", v, err)
	}
	forged := append([]string(nil), proof.PublicInputs...)
	forged[len(forged)-1] = "1"
	v, err = c.Verify(ctx, client.VerifyRequest{ModelID: m.ID, System: "groth16", Proof: proof.Proof, PublicInputs: forged})
	if err != nil || v.Valid || v.Reason == "" {
		t.Fatalf("verify forged proof: %+v, %v; want invalid with a reason", v, err)
	}
	sol, err := c.VerifierSolidity(ctx, m.ID, "groth16")
	if err != nil || !strings.Contains(string(sol), "contract ZKMLVerifier") {
		t.Fatalf("verifier.sol: %d bytes, %v", len(sol), err)
	}

	// Paging: three jobs, one per page.
	var kinds []string
	for j, err := range c.Jobs(ctx, client.JobFilter{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, j.Kind)
	}
	if strings.Join(kinds, ",") != "compile,setup,prove" {
		t.Fatalf("jobs %v, want compile,setup,prove", kinds)
	}
	page, err := c.ListJobs(ctx, client.JobFilter{Status: client.StatusSucceeded, Limit: 2})
	if err != nil || len(page.Jobs) != 2 || page.NextCursor == "" {
		t.Fatalf("first page of 2: %+v, %v", page, err)
	}
	models, err := c.ListModels(ctx)
	if err != nil || len(models) != 1 || models[0].ID != m.ID {
		t.Fatalf("models %+v, %v", models, err)
	}

	// Errors carry the API's code and status.
	_, err = c.GetModel(ctx, "mdl_missing")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "not_found" || apiErr.Status != http.StatusNotFound {
		t.Fatalf("missing model: %v, want a 404 not_found *client.Error", err)
	}
	if _, err := c.CancelJob(ctx, setup.ID); !client.IsCode(err, "job_finished") {
		t.Fatalf("cancel finished job: %v, want job_finished", err)
	}
	if _, err := c.ListJobs(ctx, client.JobFilter{Cursor: "job_nope"}); !client.IsCode(err, "bad_request") {
		t.Fatalf("bad cursor: %v, want bad_request", err)
	}
	if err := c.DeleteModel(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, client.VerifyRequest{ProofID: proof.ID}); !client.IsCode(err, "model_deleted") {
		t.Fatalf("verify after delete: %v, want model_deleted", err)
	}
	if err := admin.RevokeKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListModels(ctx); !client.IsCode(err, "unauthorized") {
		t.Fatalf("revoked key: %v, want unauthorized", err)
	}
}

// TestWaitJob covers the polling outcomes against a scripted server: a 503 with
// Retry-After is waited out, a failed job is a *JobError with the job's error code,
// and a cancelled context ends the wait.
func TestWaitJob(t *testing.T) {
	tests := []struct {
		name    string
		answers []string // "503" or a job status
		check   func(t *testing.T, j client.Job, err error)
	}{
		{"unavailable then succeeded", []string{"503", "running", "succeeded"}, func(t *testing.T, j client.Job, err error) {
			if err != nil || j.Status != client.StatusSucceeded || j.ProofID != "prf_1" {
				t.Fatalf("got %+v, %v", j, err)
			}
		}},
		{"failed", []string{"queued", "failed"}, func(t *testing.T, j client.Job, err error) {
			var je *client.JobError
			if !errors.As(err, &je) || je.Job.Error == nil || je.Job.Error.Code != "invalid_input" {
				t.Fatalf("got %v, want a *JobError with code invalid_input", err)
			}
		}},
		{"not found", []string{"404"}, func(t *testing.T, j client.Job, err error) {
			if !client.IsCode(err, "not_found") {
				t.Fatalf("got %v, want not_found", err)
			}
		}},
		{"never ends", []string{"running"}, func(t *testing.T, j client.Job, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want the context's deadline", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(calls.Add(1)) - 1
				a := tc.answers[min(i, len(tc.answers)-1)]
				switch a {
				case "503":
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"error":{"code":"unavailable","message":"database unavailable; retry later"}}`))
					return
				case "404":
					w.WriteHeader(http.StatusNotFound)
					w.Write([]byte(`{"error":{"code":"not_found","message":"not found"}}`))
					return
				}
				j := api.JobView{ID: "job_1", Kind: "prove", Status: a}
				if a == client.StatusSucceeded {
					j.ProofID = "prf_1"
				}
				if a == client.StatusFailed {
					j.Error = &api.ErrorView{Code: "invalid_input", Message: "bad"}
				}
				json.NewEncoder(w).Encode(j)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			j, err := client.New(srv.URL, "k").WaitJob(ctx, "job_1", &client.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond})
			tc.check(t, j, err)
		})
	}
}

// TestVerifyWebhook checks that the client accepts the server's signature and
// rejects a wrong secret, a changed body and a stale timestamp.
func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"job.succeeded"}`)
	sig := api.SignWebhook("s3cret", now, body)
	tests := []struct {
		name, secret string
		body         []byte
		at           time.Time
		ok           bool
	}{
		{"valid", "s3cret", body, now, true},
		{"wrong secret", "other", body, now, false},
		{"changed body", "s3cret", []byte(`{"type":"job.failed"}`), now, false},
		{"replayed later", "s3cret", body, now.Add(time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := client.VerifyWebhook(tc.secret, sig, tc.body, tc.at, client.DefaultWebhookTolerance)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
