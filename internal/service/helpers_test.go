package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/internal/store/storetest"
)

const adminKey = "admin-secret-for-tests"

// backend is one database configuration the end-to-end tests run against.
type backend struct {
	name string
	cfg  func(t *testing.T) service.Config // DatabaseURL/Schema/DataDir filled
}

func backends(t *testing.T) []backend {
	return []backend{
		{"sqlite", func(t *testing.T) service.Config {
			return service.Config{DataDir: t.TempDir()}
		}},
		{"postgres", func(t *testing.T) service.Config {
			dsn, schema := storetest.PostgresDSN(t)
			return service.Config{DatabaseURL: dsn, DatabaseSchema: schema, DataDir: t.TempDir()}
		}},
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" && testing.Short() {
				t.Skip("needs PostgreSQL; skipped with -short")
			}
			f(t, b)
		})
	}
}

// fastConfig tunes cfg for tests: quick polling, retries and heartbeats.
func fastConfig(cfg service.Config, eng api.Engine) service.Config {
	cfg.Engine = eng
	cfg.AdminKey = adminKey
	cfg.PollInterval = 50 * time.Millisecond
	cfg.RetryBase = 50 * time.Millisecond
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.SweepEvery = 500 * time.Millisecond
	cfg.Workers = 2
	cfg.WebhookAllowPrivate = true // the test receivers listen on loopback
	cfg.ShutdownGrace = 5 * time.Second
	if cfg.Timeouts == (jobs.Timeouts{}) {
		cfg.Timeouts = jobs.Timeouts{Compile: 20 * time.Second, Setup: 20 * time.Second, Prove: 20 * time.Second}
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = time.Minute
	}
	cfg.Logger = testLogger()
	return cfg
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ZKML_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// env is a running service (API plus in-process workers) behind an httptest server.
type env struct {
	t   *testing.T
	app *service.App
	srv *httptest.Server
	cfg service.Config
}

func startApp(t *testing.T, cfg service.Config, worker bool) *service.App {
	t.Helper()
	ctx := context.Background()
	a, err := service.Open(ctx, cfg, worker)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return a
}

func newEnv(t *testing.T, cfg service.Config) *env {
	t.Helper()
	a := startApp(t, cfg, true)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, app: a, srv: srv, cfg: cfg}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) code(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	r.json(t, &e)
	return e.Error.Code
}

func (e *env) do(method, path, key string, body io.Reader, header ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := e.srv.Client()
	if client == nil { // a URL-only server: the real entry points listen themselves
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) want(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// newKey creates a tenant key through the admin API.
func (e *env) newKey(name string) api.KeyView {
	e.t.Helper()
	var k api.KeyView
	e.want(e.do("POST", "/v1/keys", adminKey, jsonBody(map[string]string{"name": name})), 201).json(e.t, &k)
	return k
}

// upload posts onnx as multipart and returns the model and compile job IDs.
func (e *env) upload(key string, onnx []byte, settings string) (model, job string) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("model", "model.onnx")
	fw.Write(onnx)
	if settings != "" {
		mw.WriteField("settings", settings)
	}
	mw.WriteField("name", "tiny")
	mw.Close()
	r := e.do("POST", "/v1/models", key, &buf, "Content-Type", mw.FormDataContentType())
	var out struct {
		Model api.ModelView `json:"model"`
		Job   api.JobView   `json:"job"`
	}
	e.want(r, 202).json(e.t, &out)
	return out.Model.ID, out.Job.ID
}

func (e *env) job(key, id string) api.JobView {
	e.t.Helper()
	var j api.JobView
	e.want(e.do("GET", "/v1/jobs/"+id, key, nil), 200).json(e.t, &j)
	return j
}

// wait polls a job until it reaches a terminal status and returns it.
func (e *env) wait(key, id string, timeout time.Duration) api.JobView {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := e.job(key, id)
		switch j.Status {
		case "succeeded", "failed", "cancelled":
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s still %s after %s", id, j.Status, timeout)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (e *env) waitStatus(key, id, status string, timeout time.Duration) api.JobView {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := e.job(key, id)
		if j.Status == status {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s is %s, want %s", id, j.Status, status)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// readyModel uploads, compiles and sets up a model for groth16.
func (e *env) readyModel(key string) string {
	e.t.Helper()
	m, j := e.upload(key, []byte("onnx-tiny-model"), `{"scale":7}`)
	if got := e.wait(key, j, 20*time.Second); got.Status != "succeeded" {
		e.t.Fatalf("compile: %+v", got)
	}
	var sj api.JobView
	e.want(e.do("POST", "/v1/models/"+m+"/setup", key, strings.NewReader(`{"system":"groth16"}`)), 202).json(e.t, &sj)
	if got := e.wait(key, sj.ID, 20*time.Second); got.Status != "succeeded" {
		e.t.Fatalf("setup: %+v", got)
	}
	return m
}

const goodInput = `{"input":{"input_data":[[0.5,1,-2,3]]}}`

func (e *env) prove(key, model, body string, header ...string) resp {
	e.t.Helper()
	return e.do("POST", "/v1/models/"+model+"/proofs", key, strings.NewReader(body), header...)
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
