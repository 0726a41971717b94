package service_test

import (
	"bytes"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/engine"
)

// TestAdmissionRefusesCrashModel is issue 13's regression test at the API: the
// 262144-element Mul -> Relu model (which once killed the server in PLONK's compile)
// is refused on upload with 422 over_budget naming the limit, no job is queued, and
// the server keeps serving.
func TestAdmissionRefusesCrashModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &engine.Engine{Limits: bench.Limits{MaxConstraints: 1 << 23, MaxMemoryBytes: 16 << 30}}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("tenant")
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("model", "crash.onnx")
		fw.Write(bench.Elementwise("mul_relu", 262144))
		mw.Close()
		r := e.want(e.do("POST", "/v1/models", k.Key, &buf, "Content-Type", mw.FormDataContentType()), 422)
		if code := r.code(t); code != "over_budget" || !bytes.Contains(r.body, []byte("ZKML_MAX_")) {
			t.Fatalf("refusal %s", r.body)
		}
		e.want(e.do("GET", "/healthz", "", nil), 200)
		var list struct {
			Jobs []any `json:"jobs"`
		}
		e.want(e.do("GET", "/v1/jobs", k.Key, nil), 200).json(t, &list)
		if len(list.Jobs) != 0 {
			t.Fatalf("jobs queued for a refused model: %v", list.Jobs)
		}
	})
}

// TestCrashingJobFailsAlone: a compile whose child process dies (here a stand-in
// that prints Go's stack-overflow message and is killed) fails that job with
// resource_limit, once, and its model; the server keeps serving.
func TestCrashingJobFailsAlone(t *testing.T) {
	eng := &engine.Engine{ChildCommand: []string{"/bin/sh", "-c", "echo 'fatal error: stack overflow' >&2; kill -9 $$", "sh"}}
	e := newEnv(t, fastConfig(backends(t)[0].cfg(t), eng))
	k := e.newKey("tenant")
	m, j := e.upload(k.Key, bench.Elementwise("Relu", 4), "")
	got := e.wait(k.Key, j, 20*time.Second)
	if got.Status != "failed" || got.Error == nil || got.Error.Code != "resource_limit" ||
		!strings.Contains(got.Error.Message, "stack overflow") || got.Attempt != 1 {
		t.Fatalf("crashed compile job = %+v", got)
	}
	var mv api.ModelView
	e.want(e.do("GET", "/v1/models/"+m, k.Key, nil), 200).json(t, &mv)
	if mv.Status != "failed" {
		t.Fatalf("model of the crashed compile = %+v", mv)
	}
	e.want(e.do("GET", "/healthz", "", nil), 200)
}
