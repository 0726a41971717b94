package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/internal/store/postgres"
	"github.com/zkml/zkml/internal/store/storetest"
)

// multipartModel is a model upload whose name part holds name verbatim.
func multipartModel(name string) (body *bytes.Buffer, contentType string) {
	body = &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	fw, _ := mw.CreateFormFile("model", "model.onnx")
	fw.Write([]byte("onnx-tiny-model"))
	mw.WriteField("name", name)
	mw.Close()
	return body, mw.FormDataContentType()
}

// TestBadTextRejectedOnBothStores sends text PostgreSQL cannot store (NUL bytes,
// invalid UTF-8) in every field that reaches the database: both stores must answer
// the same clear 400 (or 404 for an ID in the path), never 500 on PostgreSQL and a
// success on SQLite.
func TestBadTextRejectedOnBothStores(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		k := e.newKey("alice")
		m := e.readyModel(k.Key)
		nulName, nulCT := multipartModel("a\x00b")
		badName, badCT := multipartModel("a\xffb")
		cases := []struct {
			name         string
			method, path string
			key          string
			body         io.Reader
			header       []string
			status       int
			code         string
		}{
			{"NUL in key name", "POST", "/v1/keys", adminKey, strings.NewReader(`{"name":"a\u0000b"}`), nil, 400, "invalid_text"},
			{"invalid UTF-8 in key name", "POST", "/v1/keys", adminKey, strings.NewReader("{\"name\":\"a\xffb\"}"), nil, 400, "invalid_text"},
			{"NUL in model name", "POST", "/v1/models", k.Key, strings.NewReader(`{"name":"a\u0000","onnx":"b25ueA=="}`), nil, 400, "invalid_text"},
			{"NUL in settings key", "POST", "/v1/models", k.Key, strings.NewReader(`{"onnx":"b25ueA==","settings":{"a\u0000":1}}`), nil, 400, "invalid_text"},
			{"NUL in settings value", "POST", "/v1/models", k.Key, strings.NewReader(`{"onnx":"b25ueA==","settings":{"a":["\u0000"]}}`), nil, 400, "invalid_text"},
			{"NUL in multipart name", "POST", "/v1/models", k.Key, nulName, []string{"Content-Type", nulCT}, 400, "invalid_text"},
			{"invalid UTF-8 in multipart name", "POST", "/v1/models", k.Key, badName, []string{"Content-Type", badCT}, 400, "invalid_text"},
			{"invalid UTF-8 in Idempotency-Key", "POST", "/v1/models/" + m + "/proofs", k.Key, strings.NewReader(goodInput), []string{"Idempotency-Key", "k\xff"}, 400, "invalid_text"},
			{"NUL in an input field", "POST", "/v1/models/" + m + "/proofs", k.Key, strings.NewReader(`{"input":{"input_data":[[0.5,1,-2,3]],"note":"\u0000"}}`), nil, 400, "invalid_text"},
			{"invalid UTF-8 in webhook URL", "POST", "/v1/models/" + m + "/proofs", k.Key, strings.NewReader("{\"input\":{\"input_data\":[[0.5,1,-2,3]]},\"webhook_url\":\"http://x/\xff\"}"), nil, 400, "invalid_text"},
			{"NUL in proof_id", "POST", "/v1/verify", k.Key, strings.NewReader(`{"proof_id":"prf\u0000"}`), nil, 400, "invalid_text"},
			{"NUL in model ID path", "GET", "/v1/models/mdl%00", k.Key, nil, nil, 404, "not_found"},
			{"invalid UTF-8 in job ID path", "GET", "/v1/jobs/job%FF", k.Key, nil, nil, 404, "not_found"},
			{"NUL in proof ID path", "GET", "/v1/proofs/prf%00", k.Key, nil, nil, 404, "not_found"},
			{"NUL in key ID path", "DELETE", "/v1/keys/key%00", adminKey, nil, nil, 404, "not_found"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.method, c.path, c.key, c.body, c.header...)
				if r.status != c.status || r.code(t) != c.code {
					t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
				}
			})
		}
	})
}

// proxy forwards TCP connections to target until Close, which also cuts every
// connection it carries: a database that goes away under a running service.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.Close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, u) {
				return
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

func (p *proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestDatabaseDown cuts the service off its PostgreSQL database: every request then
// answers 503 with Retry-After (not 500), and /readyz tells an unauthenticated caller
// only that the database is unavailable, nothing about where it is.
func TestDatabaseDown(t *testing.T) {
	dsn, schema := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	cfg := fastConfig(service.Config{DatabaseURL: u.String(), DatabaseSchema: schema, DataDir: t.TempDir()}, &apitest.Engine{})
	ctx := context.Background()
	a, err := service.Open(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, app: a, srv: srv, cfg: cfg}
	k := e.newKey("alice")
	m, _ := e.upload(k.Key, []byte("onnx-tiny-model"), "")
	e.want(e.do("GET", "/readyz", "", nil), 200)

	p.Close()
	host, port, _ := net.SplitHostPort(u.Host)
	for _, c := range []struct {
		name         string
		method, path string
		key          string
		body         string
	}{
		{"list models", "GET", "/v1/models", k.Key, ""},
		{"get model", "GET", "/v1/models/" + m, k.Key, ""},
		{"list models again", "GET", "/v1/models", k.Key, ""},
		{"prove", "POST", "/v1/models/" + m + "/proofs", k.Key, goodInput},
		{"create key", "POST", "/v1/keys", adminKey, `{"name":"bob"}`},
		{"list keys", "GET", "/v1/keys", adminKey, ""},
		{"readyz", "GET", "/readyz", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			start := time.Now()
			r := e.do(c.method, c.path, c.key, body)
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Fatalf("%d (Retry-After %q) %s, want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %s", d)
			}
			if c.path == "/readyz" {
				var v struct {
					Error api.ErrorView `json:"error"`
				}
				r.json(t, &v)
				if v.Error.Message != "database unavailable" || strings.Contains(string(r.body), port) || strings.Contains(string(r.body), host) {
					t.Fatalf("/readyz tells an unauthenticated caller %s", r.body)
				}
			}
		})
	}
	// The admin sees why.
	r := e.do("GET", "/readyz", adminKey, nil)
	if r.status != 503 || !strings.Contains(string(r.body), "database unavailable: ") {
		t.Fatalf("/readyz for the admin: %d %s", r.status, r.body)
	}
}

// slowBody is a request body that sends one byte and then nothing until ctx ends.
type slowBody struct {
	sent bool
	ctx  context.Context
}

func (s *slowBody) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		p[0] = '{'
		return 1, nil
	}
	<-s.ctx.Done()
	return 0, errors.New("client gave up")
}

// TestSlowBody: a client that trickles its body is answered 401 at once when it has
// no valid key (the body is never read), and 408 within the configured bound when it
// has one, so neither holds a connection for ever.
func TestSlowBody(t *testing.T) {
	cfg := fastConfig(service.Config{DataDir: t.TempDir()}, &apitest.Engine{})
	cfg.Limits.BodyTimeout = 500 * time.Millisecond
	e := newEnv(t, cfg)
	k := e.newKey("alice")
	m := e.readyModel(k.Key)
	for _, c := range []struct {
		name   string
		method string
		path   string
		ctype  string
		key    string
		status int
		within time.Duration
	}{
		{"no key, JSON", "POST", "/v1/models/" + m + "/proofs", "application/json", "", 401, 2 * time.Second},
		{"wrong key, upload", "POST", "/v1/models", "multipart/form-data; boundary=x", "zk_nope", 401, 2 * time.Second},
		{"valid key, JSON", "POST", "/v1/models/" + m + "/proofs", "application/json", k.Key, 408, 3 * time.Second},
		{"valid key, upload", "POST", "/v1/models", "multipart/form-data; boundary=x", k.Key, 408, 3 * time.Second},
		{"valid key, JSON upload", "POST", "/v1/models", "application/json", k.Key, 408, 3 * time.Second},
		{"valid key, a body nobody reads", "GET", "/v1/models", "application/json", k.Key, 200, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 6*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, c.method, e.srv.URL+c.path, &slowBody{ctx: ctx})
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", c.ctype)
			if c.key != "" {
				req.Header.Set("Authorization", "Bearer "+c.key)
			}
			start := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("after %s: %v", time.Since(start), err)
			}
			res.Body.Close()
			if d := time.Since(start); res.StatusCode != c.status || d > c.within {
				t.Fatalf("%d after %s, want %d within %s", res.StatusCode, d, c.status, c.within)
			}
		})
	}
}

// TestJobPaging pages through GET /v1/jobs with limit and cursor: every job once, in
// the order of the unpaged listing, with next_cursor on every page but the last.
func TestJobPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		k, other := e.newKey("alice"), e.newKey("bob")
		m := e.readyModel(k.Key) // a compile and a setup job
		for range 3 {
			var j api.JobView
			e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
			e.wait(k.Key, j.ID, 20*time.Second)
		}
		var theirs api.JobView
		_, theirs.ID = e.upload(other.Key, []byte("onnx-tiny-model"), "")

		list := func(query string) api.JobPage {
			t.Helper()
			var p api.JobPage
			e.want(e.do("GET", "/v1/jobs"+query, k.Key, nil), 200).json(t, &p)
			return p
		}
		var all []string
		for _, j := range list("").Jobs {
			all = append(all, j.ID)
		}
		if len(all) != 5 {
			t.Fatalf("%d jobs, want 5", len(all))
		}
		for _, c := range []struct {
			status string
			limit  int
			want   int
			pages  int
		}{
			{"", 2, 5, 3},
			{"", 5, 5, 1},
			{"", 1, 5, 5},
			{"succeeded", 2, 5, 3},
			{"failed", 2, 0, 1},
		} {
			var got []string
			cursor, pages := "", 0
			for {
				q := fmt.Sprintf("?limit=%d&status=%s&cursor=%s", c.limit, c.status, cursor)
				p := list(q)
				pages++
				if len(p.Jobs) > c.limit {
					t.Fatalf("%s: %d jobs on a page", q, len(p.Jobs))
				}
				for _, j := range p.Jobs {
					got = append(got, j.ID)
				}
				if p.NextCursor == "" {
					break
				}
				cursor = p.NextCursor
			}
			if len(got) != c.want || pages != c.pages || (c.want == len(all) && strings.Join(got, ",") != strings.Join(all, ",")) {
				t.Errorf("status %q limit %d: %d pages of %v, want %d pages of %d jobs %v", c.status, c.limit, pages, got, c.pages, c.want, all)
			}
		}
		for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?cursor=job_nope", "?cursor=" + theirs.ID, "?cursor=%00"} {
			if r := e.do("GET", "/v1/jobs"+q, k.Key, nil); r.status != 400 || r.code(t) != "bad_request" {
				t.Errorf("%s: %d %s, want 400 bad_request", q, r.status, r.body)
			}
		}
	})
}

// TestFailedCompileFailsModelAtOnce: a compile job and its model end together, so no
// reader sees the job failed while its model still reads compiling (this made
// TestBadRequests/postgres/invalid_onnx_fails_compile flaky). The test holds a lock on
// the model's row while a worker fails the compile: the job may read running or
// failed, but never failed next to a compiling model.
func TestFailedCompileFailsModelAtOnce(t *testing.T) {
	dsn, schema := storetest.PostgresDSN(t)
	cfg := fastConfig(service.Config{DatabaseURL: dsn, DatabaseSchema: schema, DataDir: t.TempDir()}, &apitest.Engine{})
	a := startApp(t, cfg, false)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, app: a, srv: srv, cfg: cfg}
	k := e.newKey("alice")
	m, j := e.upload(k.Key, []byte("bad onnx"), "")

	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM models WHERE id = $1 FOR UPDATE`, m); err != nil {
		t.Fatal(err)
	}
	startApp(t, cfg, true) // a worker: it fails the compile while the model is locked

	consistent := func() (jobStatus string) {
		t.Helper()
		var mv api.ModelView
		jv := e.job(k.Key, j)
		e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 200).json(t, &mv)
		if jv.Status == "failed" && mv.Status != "failed" {
			t.Fatalf("job %s is failed while its model is %s", j, mv.Status)
		}
		return jv.Status
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		consistent()
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); consistent() != "failed"; {
		if time.Now().After(deadline) {
			t.Fatal("compile job never failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
