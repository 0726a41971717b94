package service_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
)

// TestWebhookOutlastsReceiverDowntime: a receiver that fails longer than the former
// retry budget (8 attempts, about two minutes at production delays) still gets the
// event; every attempt, with its status, is on the job view; a manual redelivery
// sends it again and is recorded as redelivery 1.
func TestWebhookOutlastsReceiverDowntime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const down = 11
		var calls atomic.Int32
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= down {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			}
		}))
		defer hook.Close()
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		cfg.RetryBase, cfg.WebhookRetryMax, cfg.WebhookRetryWindow = 10*time.Millisecond, 40*time.Millisecond, 5*time.Second
		e := newEnv(t, cfg)
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		var pj api.JobView
		e.want(e.prove(k.Key, m, `{"input":{"input_data":[[1,2,3,4]]},"webhook_url":"`+hook.URL+`/hook"}`), 202).json(t, &pj)
		e.wait(k.Key, pj.ID, 20*time.Second)
		var j api.JobView
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			j = e.job(k.Key, pj.ID)
			if j.Webhook != nil && j.Webhook.Delivered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("webhook not delivered after %d calls: %+v", calls.Load(), j.Webhook)
			}
		}
		w := j.Webhook
		if w.URL != hook.URL+"/hook" || w.Attempts != down+1 || len(w.Deliveries) != down+1 {
			t.Fatalf("webhook view %+v", w)
		}
		for i, d := range w.Deliveries {
			failed := i < down
			if d.Attempt != i+1 || d.Redelivery != 0 || d.Delivered == failed || d.At.IsZero() ||
				(failed && (d.StatusCode != 503 || !strings.Contains(d.Error, "503"))) || (!failed && d.StatusCode != 200) {
				t.Fatalf("delivery %d = %+v", i, d)
			}
		}
		e.want(e.do("POST", "/v1/jobs/"+pj.ID+"/webhook", k.Key, nil), 202)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			j = e.job(k.Key, pj.ID)
			if n := len(j.Webhook.Deliveries); n == down+2 {
				if d := j.Webhook.Deliveries[n-1]; d.Redelivery != 1 || !d.Delivered || calls.Load() != down+2 {
					t.Fatalf("redelivery %+v after %d calls", d, calls.Load())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redelivery not made: %+v", j.Webhook)
			}
		}
		// A job without a webhook has nothing to redeliver; other tenants see nothing.
		var nj api.JobView
		e.want(e.prove(k.Key, m, goodInput), 202).json(t, &nj)
		e.wait(k.Key, nj.ID, 20*time.Second)
		if r := e.want(e.do("POST", "/v1/jobs/"+nj.ID+"/webhook", k.Key, nil), 409); r.code(t) != "no_webhook" {
			t.Fatalf("redeliver without webhook: %s", r.body)
		}
		other := e.newKey("mallory")
		e.want(e.do("POST", "/v1/jobs/"+pj.ID+"/webhook", other.Key, nil), 404)
	})
}

// TestWebhookURLMustBePublic: with private webhooks not allowed (the default), a
// webhook_url on a loopback or private address is refused at submit with 400, for
// proofs, setups and uploads; a public address is accepted.
func TestWebhookURLMustBePublic(t *testing.T) {
	cfg := fastConfig(backends(t)[0].cfg(t), &apitest.Engine{})
	cfg.WebhookAllowPrivate = false
	e := newEnv(t, cfg)
	k := e.newKey("alice")
	m := e.readyModel(k.Key)
	for _, u := range []string{"http://127.0.0.1:9/h", "http://localhost:8080/h", "https://api.localhost/h",
		"http://10.0.0.7/h", "http://[::1]/h", "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/h",
		"http://[::ffff:127.0.0.1]/h"} {
		r := e.want(e.prove(k.Key, m, `{"input":{"input_data":[[1,2,3,4]]},"webhook_url":"`+u+`"}`), 400)
		if !strings.Contains(string(r.body), "public") {
			t.Fatalf("%s: %s", u, r.body)
		}
	}
	e.want(e.do("POST", "/v1/models/"+m+"/setup", k.Key, strings.NewReader(`{"system":"plonk","webhook_url":"http://127.0.0.1/h"}`)), 400)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("model", "model.onnx")
	fw.Write([]byte("onnx-tiny-model"))
	mw.WriteField("webhook_url", "http://127.0.0.1:9/h")
	mw.Close()
	e.want(e.do("POST", "/v1/models", k.Key, &buf, "Content-Type", mw.FormDataContentType()), 400)
	e.want(e.prove(k.Key, m, `{"input":{"input_data":[[1,2,3,4]]},"webhook_url":"https://93.184.216.34/hook"}`), 202)
}
