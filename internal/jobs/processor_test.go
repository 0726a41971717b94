package jobs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/sqlite"
)

type recordingQueue struct {
	mu    sync.Mutex
	tasks []jobs.Task
}

func (q *recordingQueue) Enqueue(ctx context.Context, t jobs.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, t)
	return nil
}
func (q *recordingQueue) Start(context.Context) error { return nil }
func (q *recordingQueue) Stop(context.Context) error  { return nil }

func TestSweepAndReap(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := &store.APIKey{ID: "key_1", Name: "a", Hash: "h", WebhookSecret: "s"}
	m := &store.Model{ID: "mdl_1", Owner: k.ID, Name: "m", Status: store.ModelCompiled, ONNXDigest: "d"}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	newJob := func(id string) {
		if _, _, err := st.CreateJob(ctx, &store.Job{ID: id, Owner: k.ID, ModelID: m.ID, Kind: store.KindProve, WebhookURL: "http://127.0.0.1:1/h"}); err != nil {
			t.Fatal(err)
		}
	}
	newJob("job_orphan")
	newJob("job_lost")
	newJob("job_lost_last")
	newJob("job_live")
	for _, id := range []string{"job_lost", "job_lost_last"} {
		if _, err := st.StartJob(ctx, id, 0); err != nil { // a lease that has already run out
			t.Fatal(err)
		}
	}
	if _, err := st.StartJob(ctx, "job_live", time.Hour); err != nil {
		t.Fatal(err)
	}
	// job_lost_last has used its last attempt.
	if _, err := st.ReclaimJob(ctx, "job_lost_last", 1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartJob(ctx, "job_lost_last", 0); err != nil {
		t.Fatal(err)
	}
	q := &recordingQueue{}
	p := &jobs.Processor{Store: st, Queue: q, Timeouts: jobs.Timeouts{Prove: time.Minute}}

	time.Sleep(50 * time.Millisecond)
	if n, err := p.Sweep(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("Sweep of fresh jobs = %d, %v", n, err)
	}
	if n, err := p.Sweep(ctx, 10*time.Millisecond); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if n, err := p.Reap(ctx, 2); err != nil || n != 2 {
		t.Fatalf("Reap = %d, %v; want 2", n, err)
	}
	want := []jobs.Task{
		{Kind: jobs.TaskRun, JobID: "job_orphan", Timeout: time.Minute},
		{Kind: jobs.TaskRun, JobID: "job_lost", Timeout: time.Minute, Gen: 1},
		{Kind: jobs.TaskWebhook, JobID: "job_lost_last"},
	}
	if len(q.tasks) != len(want) {
		t.Fatalf("enqueued %+v", q.tasks)
	}
	for i := range want {
		if q.tasks[i] != want[i] {
			t.Fatalf("task %d = %+v, want %+v", i, q.tasks[i], want[i])
		}
	}
	for id, status := range map[string]store.JobStatus{"job_lost": store.JobQueued, "job_lost_last": store.JobFailed, "job_live": store.JobRunning} {
		j, err := st.GetJob(ctx, "", id)
		if err != nil || j.Status != status {
			t.Fatalf("%s = %+v, %v; want %s", id, j, err, status)
		}
	}
	if n, err := p.Reap(ctx, 2); err != nil || n != 0 {
		t.Fatalf("second Reap = %d, %v; want 0", n, err)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: time.Minute} {
		if got := jobs.Backoff(n, time.Second, time.Minute); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestWebhookRefusesPrivateAddresses(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateAPIKey(ctx, &store.APIKey{ID: "key_1", Name: "a", Hash: "h", WebhookSecret: "s"}))
	must(st.CreateModel(ctx, &store.Model{ID: "mdl_1", Owner: "key_1", Name: "m", Status: store.ModelCompiled, ONNXDigest: "d"}))
	_, _, err = st.CreateJob(ctx, &store.Job{ID: "job_1", Owner: "key_1", ModelID: "mdl_1", Kind: store.KindProve, WebhookURL: srv.URL})
	must(err)
	_, err = st.StartJob(ctx, "job_1", time.Minute)
	must(err)
	_, err = st.FinishJob(ctx, "job_1", 1, store.Finish{Status: store.JobFailed, ErrorCode: "x"})
	must(err)

	task := jobs.Task{Kind: jobs.TaskWebhook, JobID: "job_1"}
	p := &jobs.Processor{Store: st}
	err = p.Handle(ctx, task, jobs.Attempt{N: 1, Max: 1})
	if !jobs.IsPermanent(err) || !strings.Contains(err.Error(), "not allowed") || hits.Load() != 0 {
		t.Fatalf("delivery to loopback: err = %v, hits = %d", err, hits.Load())
	}
	p = &jobs.Processor{Store: st, AllowPrivateWebhooks: true}
	if err := p.Handle(ctx, task, jobs.Attempt{N: 1, Max: 1}); err != nil || hits.Load() != 1 {
		t.Fatalf("allowed delivery: err = %v, hits = %d", err, hits.Load())
	}
	j, err := st.GetJob(ctx, "", "job_1")
	must(err)
	if j.WebhookAttempts != 2 || !j.WebhookDelivered {
		t.Fatalf("job webhook state %+v", j)
	}
}

// TestWebhookAttempts: the default retry window (24h, delays doubling from 1s up to
// 1h) takes 36 attempts, where the former fixed 8 gave up after about two minutes.
func TestWebhookAttempts(t *testing.T) {
	for _, c := range []struct {
		base, max, window time.Duration
		want              int
	}{
		{time.Second, time.Hour, 24 * time.Hour, 36},
		{time.Second, time.Hour, time.Hour, 13},
		{time.Second, 5 * time.Minute, 2 * time.Minute, 8},
		{time.Second, time.Hour, time.Second, 2},
	} {
		n := jobs.WebhookAttempts(c.base, c.max, c.window)
		var spent time.Duration
		for i := 1; i < n; i++ {
			spent += jobs.Backoff(i, c.base, c.max)
		}
		if n != c.want || spent < c.window || spent-jobs.Backoff(n-1, c.base, c.max) >= c.window {
			t.Errorf("WebhookAttempts(%s, %s, %s) = %d covering %s; want %d", c.base, c.max, c.window, n, spent, c.want)
		}
	}
}
