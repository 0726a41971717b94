package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
)

// countingEngine is the real engine, counting the sharded steps and recording how
// many segment proofs run at once.
type countingEngine struct {
	engine.Engine
	prepares, segments, assembles atomic.Int32
	running, maxRunning           atomic.Int32
	// overlap, when set, makes each segment proof wait (up to that long) for another
	// one to start, so that workers that can run segments at once do.
	overlap time.Duration
}

func (c *countingEngine) PrepareSegments(ctx context.Context, dir, system string, input []byte) ([]byte, int, error) {
	c.prepares.Add(1)
	return c.Engine.PrepareSegments(ctx, dir, system, input)
}

func (c *countingEngine) ProveSegment(ctx context.Context, dir, system string, acts []byte, i int) ([]byte, error) {
	c.segments.Add(1)
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		if m := c.maxRunning.Load(); n <= m || c.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	for deadline := time.Now().Add(c.overlap); c.maxRunning.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return c.Engine.ProveSegment(ctx, dir, system, acts, i)
}

func (c *countingEngine) AssembleBundle(ctx context.Context, dir, system string, acts []byte, segs [][]byte) (api.ProofResult, error) {
	c.assembles.Add(1)
	return c.Engine.AssembleBundle(ctx, dir, system, acts, segs)
}

// TestShardedProof runs a sharded model through the HTTP API with the real pipeline:
// the repository's ReLU model cut into 2 segments, setup (once), a proof whose two
// segment jobs run in parallel on PostgreSQL's River (two workers; one after another
// would also do on the embedded store), the bundle in the proof view, and its
// verification: valid as proved, invalid (never an error) when tampered with.
func TestShardedProof(t *testing.T) {
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &countingEngine{overlap: 3 * time.Second}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("dapp").Key
		var hooks atomic.Int32
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ev struct {
				Job api.JobView `json:"job"`
			}
			body, _ := io.ReadAll(r.Body)
			if json.Unmarshal(body, &ev) == nil && ev.Job.Kind == "prove" {
				hooks.Add(1)
			}
		}))
		t.Cleanup(hook.Close)

		m, cj := e.upload(k, onnx, `{"shard":{"cuts":[1]}}`)
		if got := e.wait(k, cj, 30*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		var mv api.ModelView
		e.want(e.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
		var st struct {
			Sharded struct {
				PlanID   string            `json:"plan_id"`
				Segments []json.RawMessage `json:"segments"`
			} `json:"sharded"`
		}
		if err := json.Unmarshal(mv.Stats, &st); err != nil || len(st.Sharded.Segments) != 2 || st.Sharded.PlanID == "" {
			t.Fatalf("model stats: %s (%v)", mv.Stats, err)
		}
		var sj api.JobView
		e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"groth16"}`)), 202).json(t, &sj)
		if got := e.wait(k, sj.ID, 30*time.Second); got.Status != "succeeded" {
			t.Fatalf("setup: %+v", got)
		}
		if c := e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"groth16"}`)), 409).code(t); c != "already_set_up" {
			t.Fatalf("second setup: %s", c)
		}

		input, err := os.ReadFile("../../model/testdata/relu/input.json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(input), "webhook_url": hook.URL})
		var pj api.JobView
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		got := e.wait(k, pj.ID, 60*time.Second)
		if got.Status != "succeeded" || got.ProofID == "" || got.Segments == nil || *got.Segments != (api.SegmentsView{Done: 2, Total: 2}) {
			t.Fatalf("sharded prove job = %+v (segments %+v)", got, got.Segments)
		}
		if n := eng.prepares.Load(); n != 1 {
			t.Fatalf("activations computed %d times", n)
		}
		if n, a := eng.segments.Load(), eng.assembles.Load(); n != 2 || a != 1 {
			t.Fatalf("%d segment proofs, %d assemblies; want 2 and 1", n, a)
		}
		if b.name == "postgres" && eng.maxRunning.Load() != 2 {
			t.Fatalf("segment proofs ran %d at a time on two workers, want 2", eng.maxRunning.Load())
		}
		var page api.JobPage
		e.want(e.do("GET", "/v1/jobs?limit=100", k, nil), 200).json(t, &page)
		seen := map[int]bool{}
		for _, j := range page.Jobs {
			if j.Kind == "segment" {
				if j.ParentID != pj.ID || j.Segment == nil || j.Status != "succeeded" || j.Attempt != 1 || seen[*j.Segment] {
					t.Fatalf("segment job %+v", j)
				}
				seen[*j.Segment] = true
			}
		}
		if len(seen) != 2 {
			t.Fatalf("segment jobs of segments %v, want 0 and 1", seen)
		}

		var pv api.ProofView
		e.want(e.do("GET", "/v1/proofs/"+got.ProofID, k, nil), 200).json(t, &pv)
		var bundle struct {
			PlanID     string            `json:"plan_id"`
			Segments   []json.RawMessage `json:"segments"`
			IntOutputs [][]int64         `json:"int_outputs"`
		}
		if err := json.Unmarshal(pv.Bundle, &bundle); err != nil || bundle.PlanID != st.Sharded.PlanID || len(bundle.Segments) != 2 || len(pv.Outputs) != 1 {
			t.Fatalf("proof view: %+v (%v)", pv, err)
		}
		if !strings.HasPrefix(pv.Calldata, "0x") || len(pv.Calldata) < 10 {
			t.Fatalf("bundle calldata %q", pv.Calldata)
		}
		// The contracts: the bundle verifier, and each segment's verifier.
		sol := e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k, nil), 200)
		if !strings.Contains(string(sol.body), "contract ZKMLBundleVerifier") || !strings.Contains(string(sol.body), st.Sharded.PlanID) {
			t.Fatalf("bundle verifier source:\n%.600s", sol.body)
		}
		for i := range 2 {
			seg := e.want(e.do("GET", fmt.Sprintf("/v1/models/%s/verifier.sol?system=groth16&segment=%d", m, i), k, nil), 200)
			if !strings.Contains(string(seg.body), "contract ZKMLVerifier") {
				t.Fatalf("segment %d verifier source:\n%.600s", i, seg.body)
			}
		}
		e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16&segment=2", k, nil), 422)
		e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16&segment=x", k, nil), 400)
		verify := func(req any) api.Verdict {
			t.Helper()
			var v struct {
				Valid  bool   `json:"valid"`
				Reason string `json:"reason"`
			}
			e.want(e.do("POST", "/v1/verify", k, jsonBody(req)), 200).json(t, &v)
			return api.Verdict{Valid: v.Valid, Reason: v.Reason}
		}
		if v := verify(map[string]any{"proof_id": pv.ID}); !v.Valid {
			t.Fatalf("stored bundle: %+v", v)
		}
		if v := verify(map[string]any{"model_id": m, "system": "groth16", "bundle": pv.Bundle}); !v.Valid {
			t.Fatalf("bundle given in full: %+v", v)
		}
		// Tampered bundles, and things that are no bundle, are invalid, not errors.
		var raw map[string]any
		if err := json.Unmarshal(pv.Bundle, &raw); err != nil {
			t.Fatal(err)
		}
		tamper := func(f func(map[string]any)) map[string]any {
			var c map[string]any
			json.Unmarshal(pv.Bundle, &c)
			f(c)
			return c
		}
		outs := raw["int_outputs"].([]any)[0].([]any)
		cases := map[string]any{
			"wrong output": tamper(func(c map[string]any) {
				o := c["int_outputs"].([]any)[0].([]any)
				o[len(o)-1] = outs[len(outs)-1].(float64) + 1
			}),
			"segments swapped": tamper(func(c map[string]any) {
				s := c["segments"].([]any)
				s[0], s[1] = s[1], s[0]
			}),
			"segment dropped": tamper(func(c map[string]any) { c["segments"] = c["segments"].([]any)[:1] }),
			"other plan":      tamper(func(c map[string]any) { c["plan_id"] = strings.Repeat("0", 64) }),
			"garbage proof": tamper(func(c map[string]any) {
				c["segments"].([]any)[1].(map[string]any)["proof"] = "AAAA"
			}),
			"not a bundle": map[string]any{"segments": 5},
			"empty":        map[string]any{},
		}
		for name, bad := range cases {
			if v := verify(map[string]any{"model_id": m, "system": "groth16", "bundle": bad}); v.Valid || v.Reason == "" {
				t.Fatalf("%s: %+v", name, v)
			}
		}
		// A single proof against the sharded model is invalid too.
		if v := verify(map[string]any{"model_id": m, "system": "groth16", "proof": "0x00", "public_inputs": []string{"1"}}); v.Valid {
			t.Fatalf("single proof of a sharded model: %+v", v)
		}
		time.Sleep(500 * time.Millisecond)
		if n := hooks.Load(); n != 1 {
			t.Fatalf("the prove job's webhook fired %d times", n)
		}
	})
}

// shardFake is a fake sharded engine (apitest.Engine for the rest): every model has
// two segments, whose proofs are their index; with block, segment 0's first proof
// never ends (its worker is killed).
type shardFake struct {
	apitest.Engine
	block           bool
	segs, assembles atomic.Int32
	mu              sync.Mutex
	proved          map[int]int
	// fail makes segment fail-1's proof fail as the user's fault (0: none).
	fail int
	// running and maxRunning, when set, count segment proofs running at once (shared
	// by the engines of several workers); each waits up to overlap for another.
	running, maxRunning *atomic.Int32
	overlap             time.Duration
}

var _ api.ShardEngine = (*shardFake)(nil)

func (f *shardFake) Segments(ctx context.Context, dir string) (int, error) { return 2, nil }

func (f *shardFake) SegmentVerifier(ctx context.Context, dir, system string, i int) ([]byte, error) {
	return []byte(fmt.Sprintf("contract Segment%d {}", i)), nil
}

func (f *shardFake) PrepareSegments(ctx context.Context, dir, system string, input []byte) ([]byte, int, error) {
	return []byte("acts"), 2, nil
}

func (f *shardFake) ProveSegment(ctx context.Context, dir, system string, acts []byte, i int) ([]byte, error) {
	f.segs.Add(1)
	if f.running != nil {
		n := f.running.Add(1)
		defer f.running.Add(-1)
		for {
			if m := f.maxRunning.Load(); n <= m || f.maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		for deadline := time.Now().Add(f.overlap); f.maxRunning.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if f.fail == i+1 {
		return nil, fmt.Errorf("%w: segment %d's boundary is out of range", api.ErrInvalidInput, i)
	}
	if f.block && i == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	if f.proved == nil {
		f.proved = map[int]int{}
	}
	f.proved[i]++
	f.mu.Unlock()
	return []byte(fmt.Sprint(i)), nil
}

func (f *shardFake) AssembleBundle(ctx context.Context, dir, system string, acts []byte, segs [][]byte) (api.ProofResult, error) {
	f.assembles.Add(1)
	if string(acts) != "acts" || len(segs) != 2 || string(segs[0]) != "0" || string(segs[1]) != "1" {
		return api.ProofResult{}, fmt.Errorf("fake: assemble from %q, %q", acts, segs)
	}
	return api.ProofResult{Proof: []byte(`{"segments":["0","1"]}`), Outputs: [][]float64{{1}}}, nil
}

func (f *shardFake) VerifyBundle(ctx context.Context, dir, system string, bundle []byte) (api.Verdict, error) {
	return api.Verdict{Valid: string(bundle) == `{"segments":["0","1"]}`}, nil
}

// TestHelperShardWorkerProcess is not a test: TestShardSegmentWorkerLost runs the
// test binary with ZKML_HELPER_WORKER=shard to get a worker whose first proof of
// segment 0 never ends, and kills it.
func TestHelperShardWorkerProcess(t *testing.T) {
	if os.Getenv("ZKML_HELPER_WORKER") != "shard" {
		t.Skip("helper process for TestShardSegmentWorkerLost")
	}
	cfg, err := service.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine = &shardFake{block: true}
	cfg.Logger = testLogger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := service.Work(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestShardSegmentWorkerLost kills -9 the worker proving a segment: the segment job's
// lease runs out, the reaper hands it to another worker, and the parent completes
// exactly once with both segments; it is never stranded.
func TestShardSegmentWorkerLost(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a worker process and waits for a lease to run out")
	}
	lease := testLease(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Parallel()
		cfg := fastConfig(b.cfg(t), &shardFake{})
		cfg.Lease = lease
		cfg.Workers = 1
		first := startApp(t, cfg, true)
		srv := httptest.NewServer(first.Handler())
		t.Cleanup(srv.Close)
		e := &env{t: t, app: first, srv: srv, cfg: cfg}
		k := e.newKey("alice").Key
		m := e.readyModel(k)
		if err := first.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.app = startApp(t, cfg, false)
		srv.Config.Handler = e.app.Handler()

		child := exec.Command(os.Args[0], "-test.run=^TestHelperShardWorkerProcess$", "-test.v")
		child.Env = append(os.Environ(),
			"ZKML_HELPER_WORKER=shard",
			"ZKML_DATABASE_URL="+cfg.DatabaseURL,
			"ZKML_DATABASE_SCHEMA="+cfg.DatabaseSchema,
			"ZKML_DATA_DIR="+cfg.DataDir,
			"ZKML_POLL_INTERVAL=50ms", "ZKML_HEARTBEAT=100ms", "ZKML_RETRY_BASE=50ms", "ZKML_LEASE="+lease.String(),
			"ZKML_WORKERS=1",
		)
		child.Stdout, child.Stderr = io.Discard, os.Stderr
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { child.Process.Kill() })
		var pj api.JobView
		e.want(e.prove(k, m, goodInput), 202).json(t, &pj)
		// The child spawns the segments and blocks in segment 0 (it has one worker).
		var seg0 string
		deadline := time.Now().Add(20 * time.Second)
		for seg0 == "" {
			var page api.JobPage
			e.want(e.do("GET", "/v1/jobs?status=running", k, nil), 200).json(t, &page)
			for _, j := range page.Jobs {
				if j.Kind == "segment" && j.Segment != nil && *j.Segment == 0 {
					seg0 = j.ID
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("segment 0 never ran")
			}
			time.Sleep(30 * time.Millisecond)
		}
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.Wait()
		eng := &shardFake{}
		wcfg := e.cfg
		wcfg.Engine = eng
		startApp(t, wcfg, true)
		got := e.wait(k, pj.ID, 2*lease+20*time.Second)
		if got.Status != "succeeded" || got.ProofID == "" || *got.Segments != (api.SegmentsView{Done: 2, Total: 2}) {
			t.Fatalf("parent = %+v", got)
		}
		if s := e.job(k, seg0); s.Status != "succeeded" || s.Attempt != 2 {
			t.Fatalf("rescued segment job = %+v", s)
		}
		time.Sleep(2 * lease)
		if a := eng.assembles.Load(); a != 1 {
			t.Fatalf("bundle assembled %d times", a)
		}
		eng.mu.Lock()
		defer eng.mu.Unlock()
		if eng.proved[0] != 1 {
			t.Fatalf("rescuing worker proved segment 0 %d times", eng.proved[0])
		}
		var v struct{ Valid bool }
		e.want(e.do("POST", "/v1/verify", k, jsonBody(map[string]string{"proof_id": got.ProofID})), 200).json(t, &v)
		if !v.Valid {
			t.Fatal("stored bundle does not verify")
		}
	})
}

// hookCounter is a webhook receiver counting the deliveries of prove jobs.
func hookCounter(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Job api.JobView `json:"job"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &ev) == nil && ev.Job.Kind == "prove" {
			n.Add(1)
		}
	}))
	t.Cleanup(hook.Close)
	return hook, &n
}

// TestShardSegmentsTwoWorkers: on PostgreSQL, two worker processes (apps) of one
// worker each prove the two segments of a proof at the same time, one each, and the
// parent completes exactly once (one assembly, one webhook).
func TestShardSegmentsTwoWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if b.name != "postgres" {
			t.Skip("the embedded store is one process")
		}
		var running, maxRunning atomic.Int32
		cfg := fastConfig(b.cfg(t), &shardFake{})
		cfg.Workers = 1
		first := startApp(t, cfg, true)
		srv := httptest.NewServer(first.Handler())
		t.Cleanup(srv.Close)
		e := &env{t: t, app: first, srv: srv, cfg: cfg}
		k := e.newKey("alice").Key
		m := e.readyModel(k)
		if err := first.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.app = startApp(t, cfg, false)
		srv.Config.Handler = e.app.Handler()
		var engs []*shardFake
		for range 2 {
			eng := &shardFake{running: &running, maxRunning: &maxRunning, overlap: 5 * time.Second}
			wcfg := cfg
			wcfg.Engine = eng
			startApp(t, wcfg, true)
			engs = append(engs, eng)
		}
		hook, hooks := hookCounter(t)
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(`{"input_data":[[0.5,1,-2,3]]}`), "webhook_url": hook.URL})
		var pj api.JobView
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		got := e.wait(k, pj.ID, 30*time.Second)
		if got.Status != "succeeded" || got.ProofID == "" {
			t.Fatalf("parent = %+v", got)
		}
		if maxRunning.Load() != 2 || engs[0].segs.Load() != 1 || engs[1].segs.Load() != 1 {
			t.Fatalf("segments ran %d at a time, %d and %d per worker; want 2, 1 and 1", maxRunning.Load(), engs[0].segs.Load(), engs[1].segs.Load())
		}
		time.Sleep(time.Second)
		if a := engs[0].assembles.Load() + engs[1].assembles.Load(); a != 1 {
			t.Fatalf("bundle assembled %d times", a)
		}
		if n := hooks.Load(); n != 1 {
			t.Fatalf("webhook fired %d times", n)
		}
	})
}

// TestShardSegmentFails: a segment that fails fails its prove job with the segment's
// error code and a message naming the segment, and the prove job's webhook fires
// once.
func TestShardSegmentFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &shardFake{fail: 2}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("alice").Key
		m := e.readyModel(k)
		hook, hooks := hookCounter(t)
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(`{"input_data":[[0.5,1,-2,3]]}`), "webhook_url": hook.URL})
		var pj api.JobView
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		got := e.wait(k, pj.ID, 30*time.Second)
		if got.Status != "failed" || got.Error == nil || got.Error.Code != "invalid_input" ||
			!strings.Contains(got.Error.Message, "segment 1 of 2") || !strings.Contains(got.Error.Message, "out of range") {
			t.Fatalf("parent = %+v (error %+v)", got, got.Error)
		}
		time.Sleep(time.Second)
		if eng.assembles.Load() != 0 {
			t.Fatal("a failed proof was assembled")
		}
		if n := hooks.Load(); n != 1 {
			t.Fatalf("webhook fired %d times", n)
		}
	})
}

// TestShardCancelWaitingParent: cancelling a prove job whose segments are running
// ends it at once, stops its segments, and fires its webhook once.
func TestShardCancelWaitingParent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &shardFake{block: true}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("alice").Key
		m := e.readyModel(k)
		hook, hooks := hookCounter(t)
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(`{"input_data":[[0.5,1,-2,3]]}`), "webhook_url": hook.URL})
		var pj api.JobView
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		deadline := time.Now().Add(20 * time.Second)
		for eng.segs.Load() == 0 || e.job(k, pj.ID).Segments == nil {
			if time.Now().After(deadline) {
				t.Fatal("no segment started")
			}
			time.Sleep(30 * time.Millisecond)
		}
		e.want(e.do("POST", "/v1/jobs/"+pj.ID+"/cancel", k, nil), 202)
		if got := e.job(k, pj.ID); got.Status != "cancelled" {
			t.Fatalf("cancelled parent = %+v", got)
		}
		var page api.JobPage
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			e.want(e.do("GET", "/v1/jobs?limit=100", k, nil), 200).json(t, &page)
			open := 0
			for _, j := range page.Jobs {
				if j.Kind == "segment" && (j.Status == "queued" || j.Status == "running") {
					open++
				}
			}
			if open == 0 && hooks.Load() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d segment jobs still open, %d webhooks", open, hooks.Load())
			}
		}
		time.Sleep(time.Second)
		if n := hooks.Load(); n != 1 {
			t.Fatalf("webhook fired %d times", n)
		}
	})
}
