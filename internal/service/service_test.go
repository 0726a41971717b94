package service_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/service"
)

func TestEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{Delay: 20 * time.Millisecond}
		e := newEnv(t, fastConfig(b.cfg(t), eng))

		// Webhooks land on a loopback server; we check their signatures.
		var hooks sync.Map
		hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			hooks.Store(r.Header.Get("Zkml-Event-Id"), [2]string{r.Header.Get(api.SignatureHeader), string(body)})
		}))
		defer hookSrv.Close()

		k := e.newKey("alice")
		m := e.readyModel(k.Key)

		var model api.ModelView
		e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 200).json(t, &model)
		if model.Status != "compiled" || model.Constraints["groth16"] == 0 || len(model.Stats) == 0 ||
			fmt.Sprint(model.Systems) != "[groth16]" || fmt.Sprint(model.Inputs) != "[[1 4]]" {
			t.Fatalf("model = %+v", model)
		}

		body := `{"input":{"input_data":[[0.5,1,-2,3]]},"webhook_url":"` + hookSrv.URL + `"}`
		var j1, j2 api.JobView
		r := e.want(e.prove(k.Key, m, body, "Idempotency-Key", "req-1"), 202)
		r.json(t, &j1)
		if r.header.Get("Location") != "/v1/jobs/"+j1.ID {
			t.Errorf("Location = %q", r.header.Get("Location"))
		}
		r = e.want(e.prove(k.Key, m, body, "Idempotency-Key", "req-1"), 202)
		r.json(t, &j2)
		if j2.ID != j1.ID || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replayed request made job %s (replayed=%q), want %s", j2.ID, r.header.Get("Idempotent-Replayed"), j1.ID)
		}
		if c := e.want(e.prove(k.Key, m, goodInput, "Idempotency-Key", "req-1"), 422).code(t); c != "idempotency_key_reused" {
			t.Fatalf("reused key code %q", c)
		}

		done := e.wait(k.Key, j1.ID, 20*time.Second)
		if done.Status != "succeeded" || done.ProofID == "" || done.Progress != 1 || done.RunSeconds == nil || done.QueuedSeconds == nil {
			t.Fatalf("prove job = %+v", done)
		}
		var p api.ProofView
		e.want(e.do("GET", "/v1/proofs/"+done.ProofID, k.Key, nil), 200).json(t, &p)
		if !strings.HasPrefix(p.Proof, "0x") || !strings.HasPrefix(p.Calldata, "0xdeadbeef") ||
			fmt.Sprint(p.PublicInputs) != "[64 128 256 384]" || fmt.Sprint(p.Outputs) != "[[2.5 -2.5]]" {
			t.Fatalf("proof = %+v", p)
		}
		if eng.Proves.Load() != 1 {
			t.Errorf("engine proved %d times, want 1", eng.Proves.Load())
		}

		var v struct{ Valid bool }
		e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(map[string]string{"proof_id": p.ID})), 200).json(t, &v)
		if !v.Valid {
			t.Fatal("stored proof does not verify")
		}
		tampered := map[string]any{"model_id": m, "system": "groth16", "proof": p.Proof, "public_inputs": []string{"64", "128", "256", "385"}}
		e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(tampered)), 200).json(t, &v)
		if v.Valid {
			t.Fatal("tampered public inputs verify")
		}
		tampered["public_inputs"] = p.PublicInputs
		tampered["proof"] = "0x00" + p.Proof[4:]
		e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(tampered)), 200).json(t, &v)
		if v.Valid {
			t.Fatal("tampered proof verifies")
		}

		sol := e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k.Key, nil), 200)
		if !bytes.Contains(sol.body, []byte("contract Verifier")) {
			t.Fatalf("verifier.sol = %s", sol.body)
		}
		var list struct{ Models []api.ModelView }
		e.want(e.do("GET", "/v1/models", k.Key, nil), 200).json(t, &list)
		if len(list.Models) != 1 {
			t.Fatalf("list = %+v", list)
		}

		// The webhook arrives signed with the key's secret.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if v, ok := hooks.Load(j1.ID); ok {
				h := v.([2]string)
				if err := api.VerifyWebhook(k.WebhookSecret, h[0], []byte(h[1]), time.Now(), time.Minute); err != nil {
					t.Fatalf("webhook signature: %v", err)
				}
				if !strings.Contains(h[1], `"type":"job.succeeded"`) || !strings.Contains(h[1], done.ProofID) {
					t.Fatalf("webhook body %s", h[1])
				}
				if api.VerifyWebhook("whsec_wrong", h[0], []byte(h[1]), time.Now(), time.Minute) == nil {
					t.Fatal("webhook verifies under a wrong secret")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("webhook never delivered")
			}
			time.Sleep(30 * time.Millisecond)
		}

		// The receiver may see the webhook before the worker counts it: poll.
		for _, want := range []string{`zkml_jobs{status="succeeded"} 3`, `zkml_prove_seconds_bucket{system="groth16",`, "zkml_job_duration_seconds",
			"zkml_http_requests_total", `zkml_webhook_deliveries_total{result="delivered"} 1`} {
			deadline := time.Now().Add(5 * time.Second)
			for !bytes.Contains(e.want(e.do("GET", "/metrics", "", nil), 200).body, []byte(want)) {
				if time.Now().After(deadline) {
					t.Errorf("/metrics lacks %q", want)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		e.want(e.do("GET", "/healthz", "", nil), 200)
		e.want(e.do("GET", "/readyz", "", nil), 200)

		e.want(e.do("DELETE", "/v1/models/"+m, k.Key, nil), 204)
		e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 404)
		// The proof and its job outlive the model.
		e.want(e.do("GET", "/v1/proofs/"+p.ID, k.Key, nil), 200)
	})
}

func TestTenantIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		alice, bob := e.newKey("alice"), e.newKey("bob")
		m := e.readyModel(alice.Key)
		var j api.JobView
		e.want(e.prove(alice.Key, m, goodInput), 202).json(t, &j)
		done := e.wait(alice.Key, j.ID, 20*time.Second)

		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/models/" + m, ""},
			{"DELETE", "/v1/models/" + m, ""},
			{"POST", "/v1/models/" + m + "/setup", `{"system":"plonk"}`},
			{"POST", "/v1/models/" + m + "/proofs", goodInput},
			{"GET", "/v1/models/" + m + "/verifier.sol", ""},
			{"GET", "/v1/jobs/" + j.ID, ""},
			{"POST", "/v1/jobs/" + j.ID + "/cancel", ""},
			{"GET", "/v1/proofs/" + done.ProofID, ""},
			{"POST", "/v1/verify", `{"proof_id":"` + done.ProofID + `"}`},
		} {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			if r := e.do(c.method, c.path, bob.Key, body); r.status != 404 || r.code(t) != "not_found" {
				t.Errorf("bob %s %s: %d %s, want 404 not_found", c.method, c.path, r.status, r.body)
			}
		}
		var models struct{ Models []api.ModelView }
		e.want(e.do("GET", "/v1/models", bob.Key, nil), 200).json(t, &models)
		var jl struct{ Jobs []api.JobView }
		e.want(e.do("GET", "/v1/jobs", bob.Key, nil), 200).json(t, &jl)
		if len(models.Models) != 0 || len(jl.Jobs) != 0 {
			t.Fatalf("bob lists %d models and %d jobs of alice", len(models.Models), len(jl.Jobs))
		}
		// Alice still sees everything.
		e.want(e.do("GET", "/v1/models/"+m, alice.Key, nil), 200)
		e.want(e.do("GET", "/v1/proofs/"+done.ProofID, alice.Key, nil), 200)
	})
}

func TestBadRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		cfg.Limits = api.Limits{MaxModelBytes: 1 << 10, MaxBodyBytes: 1 << 10}
		e := newEnv(t, cfg)
		k := e.newKey("alice")
		revoked := e.newKey("old")
		e.want(e.do("DELETE", "/v1/keys/"+revoked.ID, adminKey, nil), 204)
		m := e.readyModel(k.Key)

		big := strings.Repeat("x", 2<<10)
		cases := []struct {
			name         string
			method, path string
			key          string
			body         string
			header       []string
			status       int
			code         string
		}{
			{"no key", "GET", "/v1/models", "", "", nil, 401, "unauthorized"},
			{"wrong key", "GET", "/v1/models", "zk_nope", "", nil, 401, "unauthorized"},
			{"revoked key", "GET", "/v1/models", revoked.Key, "", nil, 401, "unauthorized"},
			{"admin on tenant route", "GET", "/v1/models", adminKey, "", nil, 403, "forbidden"},
			{"tenant on admin route", "GET", "/v1/keys", k.Key, "", nil, 403, "forbidden"},
			{"unknown model", "GET", "/v1/models/mdl_nope", k.Key, "", nil, 404, "not_found"},
			{"unknown job", "GET", "/v1/jobs/job_nope", k.Key, "", nil, 404, "not_found"},
			{"unknown proof", "GET", "/v1/proofs/prf_nope", k.Key, "", nil, 404, "not_found"},
			{"unknown key", "DELETE", "/v1/keys/key_nope", adminKey, "", nil, 404, "not_found"},
			{"unknown route", "GET", "/v1/nope", k.Key, "", nil, 404, "not_found"},
			{"prove on unknown model", "POST", "/v1/models/mdl_nope/proofs", k.Key, goodInput, nil, 404, "not_found"},
			{"malformed json", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":`, nil, 400, "malformed_json"},
			{"unknown field", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"inptu":{}}`, nil, 400, "malformed_json"},
			{"missing input", "POST", "/v1/models/" + m + "/proofs", k.Key, `{}`, nil, 400, "bad_request"},
			{"non-numeric input", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[["a"]]}}`, nil, 400, "bad_request"},
			{"bad system", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"system":"stark","input":{"input_data":[[1]]}}`, nil, 400, "bad_request"},
			{"bad webhook", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[[1]]},"webhook_url":"ftp://x"}`, nil, 400, "bad_request"},
			{"no plonk keys", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"system":"plonk","input":{"input_data":[[1]]}}`, nil, 409, "model_not_ready"},
			{"setup twice", "POST", "/v1/models/" + m + "/setup", k.Key, `{"system":"groth16"}`, nil, 409, "already_set_up"},
			{"oversized body", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[[1]]},"webhook_url":"http://x/` + big + `"}`, nil, 413, "too_large"},
			{"oversized model", "POST", "/v1/models", k.Key, `{"onnx":"` + big + `"}`, nil, 413, "too_large"},
			{"bad base64", "POST", "/v1/models", k.Key, `{"onnx":"!!"}`, nil, 400, "bad_request"},
			{"bad content type", "POST", "/v1/models", k.Key, `x`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
			{"verify bad hex", "POST", "/v1/verify", k.Key, `{"model_id":"` + m + `","proof":"0xzz"}`, nil, 400, "bad_request"},
			{"verify bad public input", "POST", "/v1/verify", k.Key, `{"model_id":"` + m + `","proof":"0x00","public_inputs":["-1"]}`, nil, 400, "bad_request"},
			{"verify unknown proof", "POST", "/v1/verify", k.Key, `{"proof_id":"prf_nope"}`, nil, 404, "not_found"},
			{"wrong method", "PUT", "/v1/models/" + m, k.Key, "", nil, 405, "method_not_allowed"},
			{"wrong input type", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[[0.5,1,-2,3]]},"system":7}`, nil, 400, "malformed_json"},
			{"wrong input shape", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[[1,2]]}}`, nil, 400, "invalid_input"},
			{"too many input rows", "POST", "/v1/models/" + m + "/proofs", k.Key, `{"input":{"input_data":[[0.5,1,-2,3],[1]]}}`, nil, 400, "invalid_input"},
			{"invalid settings", "POST", "/v1/models", k.Key, `{"onnx":"b25ueA==","settings":{"invalid":true}}`, nil, 400, "invalid_settings"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				r := e.do(c.method, c.path, c.key, body, c.header...)
				if r.status != c.status || r.code(t) != c.code {
					t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
				}
				// Messages speak JSON, not Go, and say each thing once.
				for _, bad := range []string{"Go struct", "Go value", "float64", "string into", "invalid model: invalid model"} {
					if strings.Contains(string(r.body), bad) {
						t.Errorf("message %s contains %q", r.body, bad)
					}
				}
			})
		}

		t.Run("wrong method says what is allowed", func(t *testing.T) {
			r := e.want(e.do("POST", "/v1/models/"+m, k.Key, nil), 405)
			if got := r.header.Get("Allow"); got != "GET, DELETE" {
				t.Fatalf("Allow = %q, want \"GET, DELETE\"", got)
			}
		})

		t.Run("invalid proof verifies false", func(t *testing.T) {
			var v struct{ Valid *bool }
			e.want(e.do("POST", "/v1/verify", k.Key, strings.NewReader(`{"model_id":"`+m+`","proof":"0x0102","public_inputs":["1"]}`)), 200).json(t, &v)
			if v.Valid == nil || *v.Valid {
				t.Fatalf("valid = %v, want false", v.Valid)
			}
		})
		t.Run("invalid onnx fails compile", func(t *testing.T) {
			bad, j := e.upload(k.Key, []byte("bad onnx"), "")
			got := e.wait(k.Key, j, 20*time.Second)
			if got.Status != "failed" || got.Error.Code != "invalid_model" {
				t.Fatalf("compile job = %+v", got)
			}
			var mv api.ModelView
			e.want(e.do("GET", "/v1/models/"+bad, k.Key, nil), 200).json(t, &mv)
			if mv.Status != "failed" || mv.Error == "" {
				t.Fatalf("model = %+v", mv)
			}
			if strings.Count(mv.Error, "invalid model") != 1 {
				t.Errorf("model error repeats itself: %q", mv.Error)
			}
			var jv api.JobView
			e.want(e.do("GET", "/v1/jobs/"+j, k.Key, nil), 200).json(t, &jv)
			if strings.Count(jv.Error.Message, "invalid model") != 1 {
				t.Errorf("job error repeats itself: %q", jv.Error.Message)
			}
			// Setup and prove say that the compile failed, not "run setup first".
			for _, r := range []resp{
				e.do("POST", "/v1/models/"+bad+"/setup", k.Key, nil),
				e.prove(k.Key, bad, goodInput),
			} {
				if r.status != 409 || r.code(t) != "model_failed" || !strings.Contains(string(r.body), "failed to compile") {
					t.Fatalf("setup or prove of a failed model: %d %s", r.status, r.body)
				}
			}
		})
		t.Run("proof of a deleted model", func(t *testing.T) {
			m2 := e.readyModel(k.Key)
			var j api.JobView
			e.want(e.prove(k.Key, m2, goodInput), 202).json(t, &j)
			done := e.wait(k.Key, j.ID, 20*time.Second)
			e.want(e.do("DELETE", "/v1/models/"+m2, k.Key, nil), 204)
			e.want(e.do("GET", "/v1/proofs/"+done.ProofID, k.Key, nil), 200)
			r := e.do("POST", "/v1/verify", k.Key, strings.NewReader(`{"proof_id":"`+done.ProofID+`"}`))
			if r.status != 410 || r.code(t) != "model_deleted" {
				t.Fatalf("verify: %d %s, want 410 model_deleted", r.status, r.body)
			}
		})
		t.Run("cancel finished job", func(t *testing.T) {
			var j api.JobView
			e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
			e.wait(k.Key, j.ID, 20*time.Second)
			if c := e.want(e.do("POST", "/v1/jobs/"+j.ID+"/cancel", k.Key, nil), 409).code(t); c != "job_finished" {
				t.Fatalf("code %s", c)
			}
		})
	})
}

func TestConcurrentClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{Delay: 2 * time.Millisecond}
		cfg := fastConfig(b.cfg(t), eng)
		e := newEnv(t, cfg)
		startApp(t, cfg, true) // a second worker process on the same database
		k := e.newKey("alice")
		m := e.readyModel(k.Key)

		const clients, perClient = 8, 5
		var mu sync.Mutex
		ids := map[string]int{}
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perClient {
					// Every request is sent twice with one Idempotency-Key, as a retrying client would.
					key := fmt.Sprintf("c%d-r%d", c, i)
					body := fmt.Sprintf(`{"input":{"input_data":[[%d,%d,1,1]]}}`, c, i)
					for range 2 {
						var j api.JobView
						r := e.prove(k.Key, m, body, "Idempotency-Key", key)
						if r.status != 202 {
							t.Errorf("status %d: %s", r.status, r.body)
							return
						}
						r.json(t, &j)
						mu.Lock()
						ids[j.ID]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(ids) != clients*perClient {
			t.Fatalf("%d distinct jobs, want %d", len(ids), clients*perClient)
		}
		proofs := map[string]bool{}
		for id := range ids {
			j := e.wait(k.Key, id, 60*time.Second)
			if j.Status != "succeeded" || j.Attempt != 1 {
				t.Fatalf("job %+v", j)
			}
			proofs[j.ProofID] = true
		}
		if len(proofs) != clients*perClient {
			t.Fatalf("%d proofs, want %d", len(proofs), clients*perClient)
		}
		if n := eng.Proves.Load(); n != clients*perClient {
			t.Fatalf("engine ran %d proofs for %d jobs", n, clients*perClient)
		}
	})
}

func TestCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		eng.Block = true // proofs now run until cancelled

		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		e.waitStatus(k.Key, j.ID, "running", 10*time.Second)
		var c api.JobView
		e.want(e.do("POST", "/v1/jobs/"+j.ID+"/cancel", k.Key, nil), 202).json(t, &c)
		if !c.CancelRequested {
			t.Fatalf("cancel response %+v", c)
		}
		got := e.wait(k.Key, j.ID, 10*time.Second)
		if got.Status != "cancelled" || got.Error == nil || got.Error.Code != "cancelled" {
			t.Fatalf("job = %+v", got)
		}
	})
}

func TestTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{}
		cfg := fastConfig(b.cfg(t), eng)
		cfg.Timeouts = jobs.Timeouts{Compile: 10 * time.Second, Setup: 10 * time.Second, Prove: 300 * time.Millisecond}
		e := newEnv(t, cfg)
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		eng.Block = true
		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		got := e.wait(k.Key, j.ID, 10*time.Second)
		if got.Status != "failed" || got.Error == nil || got.Error.Code != "timeout" {
			t.Fatalf("job = %+v", got)
		}
	})
}

func TestRetryTransientFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{FailProve: 1}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		got := e.wait(k.Key, j.ID, 20*time.Second)
		if got.Status != "succeeded" || got.Attempt != 2 {
			t.Fatalf("job = %+v, want succeeded on attempt 2", got)
		}
	})
}

func TestWebhookRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var calls atomic.Int32
		got := make(chan [2]string, 1)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= 2 {
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			body, _ := io.ReadAll(r.Body)
			got <- [2]string{r.Header.Get(api.SignatureHeader), string(body)}
		}))
		defer hook.Close()
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		var pj api.JobView
		e.want(e.prove(k.Key, m, `{"input":{"input_data":[[1,2,3,4]]},"webhook_url":"`+hook.URL+`/hook"}`), 202).json(t, &pj)
		select {
		case h := <-got:
			if err := api.VerifyWebhook(k.WebhookSecret, h[0], []byte(h[1]), time.Now(), time.Minute); err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("webhook not delivered after %d calls", calls.Load())
		}
		if n := calls.Load(); n != 3 {
			t.Fatalf("%d webhook calls, want 3", n)
		}
	})
}

func TestGracefulShutdownFinishesRunningJob(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		eng.Delay = 300 * time.Millisecond
		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		e.waitStatus(k.Key, j.ID, "running", 10*time.Second)
		if err := e.app.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Read the job straight from a fresh app: the running job was allowed to finish.
		cfg := e.cfg
		cfg.Logger = testLogger()
		other := startApp(t, cfg, false)
		got, err := other.Store.GetJob(t.Context(), "", j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "succeeded" {
			t.Fatalf("job after graceful shutdown: %s", got.Status)
		}
	})
}

func TestShutdownRequeuesJobForAnotherWorker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{}
		cfg := fastConfig(b.cfg(t), eng)
		cfg.ShutdownGrace = 200 * time.Millisecond
		e := newEnv(t, cfg)
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		eng.Block = true
		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		e.waitStatus(k.Key, j.ID, "running", 10*time.Second)
		ctx, cancel := contextWithTimeout(t, cfg.ShutdownGrace)
		defer cancel()
		e.app.Shutdown(ctx) // the proof outlives the grace period: cancelled and re-queued

		eng2 := &apitest.Engine{}
		cfg2 := cfg
		cfg2.Engine = eng2
		other := startApp(t, cfg2, true)
		srv := httptest.NewServer(other.Handler())
		defer srv.Close()
		e2 := &env{t: t, app: other, srv: srv, cfg: cfg2}
		got := e2.wait(k.Key, j.ID, 20*time.Second)
		if got.Status != "succeeded" || got.Attempt != 2 || eng2.Proves.Load() != 1 {
			t.Fatalf("job = %+v (second engine proved %d)", got, eng2.Proves.Load())
		}
	})
}

// TestWorkspaceRestoredFromArtifacts drops the local workspace cache (as on a fresh
// worker machine): proving and verifying rebuild it from the artifact store.
func TestWorkspaceRestoredFromArtifacts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		if err := os.RemoveAll(filepath.Join(e.cfg.DataDir, "work")); err != nil {
			t.Fatal(err)
		}
		var j api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
		done := e.wait(k.Key, j.ID, 20*time.Second)
		if done.Status != "succeeded" {
			t.Fatalf("job = %+v", done)
		}
		if err := os.RemoveAll(filepath.Join(e.cfg.DataDir, "work")); err != nil {
			t.Fatal(err)
		}
		var v struct{ Valid bool }
		e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(map[string]string{"proof_id": done.ProofID})), 200).json(t, &v)
		if !v.Valid {
			t.Fatal("proof does not verify after the workspace was rebuilt")
		}
	})
}

// TestConcurrentStartup opens several processes' worth of services at once on a fresh
// database, as when serve and workers start together: migrations must not race.
func TestConcurrentStartup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := service.Open(t.Context(), cfg, true)
				if err != nil {
					t.Error(err)
					return
				}
				a.Shutdown(t.Context())
			}()
		}
		wg.Wait()
	})
}

func TestCancelQueuedCompileFailsModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		a := startApp(t, cfg, false) // no workers yet: the compile job stays queued
		srv := httptest.NewServer(a.Handler())
		defer srv.Close()
		e := &env{t: t, app: a, srv: srv, cfg: cfg}
		k := e.newKey("alice")
		m, j := e.upload(k.Key, []byte("onnx"), "")
		var c api.JobView
		e.want(e.do("POST", "/v1/jobs/"+j+"/cancel", k.Key, nil), 202).json(t, &c)
		if c.Status != "cancelled" {
			t.Fatalf("cancel of a queued job: %+v", c)
		}
		// The model fails with its job, in the same transaction: no worker needed.
		var now api.ModelView
		if e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 200).json(t, &now); now.Status != "failed" {
			t.Fatalf("model is %s right after its compile job was cancelled", now.Status)
		}
		startApp(t, cfg, true)
		deadline := time.Now().Add(10 * time.Second)
		for {
			var mv api.ModelView
			e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 200).json(t, &mv)
			if mv.Status == "failed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("model still %s after its compile job was cancelled", mv.Status)
			}
			time.Sleep(30 * time.Millisecond)
		}
	})
}
