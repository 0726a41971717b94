package service_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/engine"
)

// TestShardSegmentChildDies: the real engine with child processes, on both stores.
// While a doom file exists, the child proving segment 1 dies like a Go runtime out of
// memory (message, then SIGKILL): the segment job fails once with resource_limit (not
// retried, as any job whose child dies), the prove job fails naming the segment, and
// the worker, which ran the segment in a child, lives on: with the doom file gone, the
// next proof of the same model on the same workers succeeds with a verified bundle.
func TestShardSegmentChildDies(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile("../../model/testdata/relu/input.json")
	if err != nil {
		t.Fatal(err)
	}
	self := childCommand(t)[0]
	doom := filepath.Join(t.TempDir(), "doom")
	t.Setenv("DOOM", doom)
	t.Setenv("SELF", self)
	script := `if [ -e "$DOOM" ]; then case " $* " in *" --op prove-segment "*" --segment 1 "*) ` +
		`echo 'fatal error: runtime: out of memory' >&2; kill -9 $$;; esac; fi; exec "$SELF" "$@"`
	eng := &engine.Engine{ChildCommand: []string{"/bin/sh", "-c", script, "sh"}}
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("dapp").Key
		m, cj := e.upload(k, onnx, `{"shard":{"cuts":[1]}}`)
		if got := e.wait(k, cj, 30*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		var sj api.JobView
		e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"groth16"}`)), 202).json(t, &sj)
		if got := e.wait(k, sj.ID, 30*time.Second); got.Status != "succeeded" {
			t.Fatalf("setup: %+v", got)
		}
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(input)})

		if err := os.WriteFile(doom, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var pj api.JobView
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		got := e.wait(k, pj.ID, 60*time.Second)
		if got.Status != "failed" || got.Error == nil || got.Error.Code != "resource_limit" ||
			!strings.Contains(got.Error.Message, "segment 1 of 2") || !strings.Contains(got.Error.Message, "out of memory") {
			t.Fatalf("prove job whose segment's child died = %+v (error %+v)", got, got.Error)
		}
		var page api.JobPage
		e.want(e.do("GET", "/v1/jobs?limit=100", k, nil), 200).json(t, &page)
		var dead int
		for _, j := range page.Jobs {
			if j.Kind == "segment" && j.ParentID == pj.ID && j.Segment != nil && *j.Segment == 1 {
				dead++
				if j.Status != "failed" || j.Attempt != 1 || j.Error == nil || j.Error.Code != "resource_limit" {
					t.Fatalf("segment job whose child died = %+v (error %+v)", j, j.Error)
				}
			}
		}
		if dead != 1 {
			t.Fatalf("%d jobs of segment 1", dead)
		}
		e.want(e.do("GET", "/healthz", "", nil), 200)

		if err := os.Remove(doom); err != nil {
			t.Fatal(err)
		}
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		if got = e.wait(k, pj.ID, 60*time.Second); got.Status != "succeeded" || got.ProofID == "" {
			t.Fatalf("proof after a segment's child died = %+v (error %+v)", got, got.Error)
		}
		var pv api.ProofView
		e.want(e.do("GET", "/v1/proofs/"+got.ProofID, k, nil), 200).json(t, &pv)
		var v struct {
			Valid bool `json:"valid"`
		}
		e.want(e.do("POST", "/v1/verify", k, jsonBody(map[string]any{"proof_id": pv.ID})), 200).json(t, &v)
		if !v.Valid {
			t.Fatalf("bundle proved in children does not verify")
		}
	})
}
