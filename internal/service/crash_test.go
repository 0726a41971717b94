package service_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/service"
)

// TestHelperWorkerProcess is not a test: TestCrashRecovery runs the test binary with
// ZKML_HELPER_WORKER=1 to get a worker process whose proofs never finish, and kills it.
func TestHelperWorkerProcess(t *testing.T) {
	if os.Getenv("ZKML_HELPER_WORKER") != "1" {
		t.Skip("helper process for TestCrashRecovery")
	}
	cfg, err := service.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine = &apitest.Engine{Block: true}
	cfg.Logger = testLogger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := service.Work(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// testLease is the lease of the crash tests: ZKML_TEST_LEASE (to measure the
// recovery time at other settings; the service default is 15s), else 2s.
func testLease(t *testing.T) time.Duration {
	if v := os.Getenv("ZKML_TEST_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return 2 * time.Second
}

// doomedProof sets up a model with an in-process worker, then starts a proof on a
// worker process (TestHelperWorkerProcess) and kills it with SIGKILL while the
// proof runs. Job timeouts are an hour, so River's own rescue (after the longest
// timeout) plays no part in what follows. It returns the env (API only), the key,
// the job and the time of the kill.
func doomedProof(t *testing.T, b backend, lease time.Duration) (*env, string, api.JobView, time.Time) {
	cfg := fastConfig(b.cfg(t), &apitest.Engine{})
	cfg.Timeouts = jobs.Timeouts{Compile: time.Hour, Setup: time.Hour, Prove: time.Hour}
	cfg.Lease = lease
	first := startApp(t, cfg, true)
	srv := httptest.NewServer(first.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, app: first, srv: srv, cfg: cfg}
	k := e.newKey("alice")
	m := e.readyModel(k.Key)
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.app = startApp(t, cfg, false)
	srv.Config.Handler = e.app.Handler()

	child := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.v")
	child.Env = append(os.Environ(),
		"ZKML_HELPER_WORKER=1",
		"ZKML_DATABASE_URL="+cfg.DatabaseURL,
		"ZKML_DATABASE_SCHEMA="+cfg.DatabaseSchema,
		"ZKML_DATA_DIR="+cfg.DataDir,
		"ZKML_POLL_INTERVAL=50ms", "ZKML_HEARTBEAT=100ms", "ZKML_RETRY_BASE=50ms", "ZKML_LEASE="+lease.String(),
		"ZKML_COMPILE_TIMEOUT=1h", "ZKML_SETUP_TIMEOUT=1h", "ZKML_PROVE_TIMEOUT=1h",
	)
	child.Stdout, child.Stderr = io.Discard, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill() })
	var j api.JobView
	e.want(e.prove(k.Key, m, goodInput), 202).json(t, &j)
	running := e.waitStatus(k.Key, j.ID, "running", 15*time.Second)
	if running.Attempt != 1 {
		t.Fatalf("child runs attempt %d", running.Attempt)
	}
	killed := time.Now()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	return e, k.Key, j, killed
}

// freshWorker starts another in-process worker on e's database, with its own fake
// engine (to count what it runs).
func (e *env) freshWorker() *apitest.Engine {
	eng := &apitest.Engine{}
	cfg := e.cfg
	cfg.Engine = eng
	startApp(e.t, cfg, true)
	return eng
}

// TestCrashRecovery kills -9 a worker in the middle of a proof and checks that the
// job's lease runs out, the reaper hands it to another worker within a bound, and
// that worker completes it exactly once.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes and waits for a lease to run out (~10s)")
	}
	lease := testLease(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Parallel()
		e, key, j, killed := doomedProof(t, b, lease)
		eng := e.freshWorker()
		bound := lease + lease/3 + 10*time.Second // lease, one reap interval, polling and a slow CI
		got := e.wait(key, j.ID, bound)
		t.Logf("kill -9 to completion on another worker: %s (lease %s)", time.Since(killed).Round(10*time.Millisecond), lease)
		if got.Status != "succeeded" || got.Attempt != 2 || got.ProofID == "" {
			t.Fatalf("rescued job = %+v", got)
		}
		time.Sleep(2 * lease) // no second run may follow
		if n := eng.Proves.Load(); n != 1 {
			t.Fatalf("rescuing worker proved %d times", n)
		}
		if again := e.job(key, j.ID); again.Attempt != 2 || again.Status != "succeeded" {
			t.Fatalf("job changed after completion: %+v", again)
		}
	})
}

// TestCancelLostJob: cancelling a job whose worker was killed (it reads running, and
// nobody will heartbeat again) makes it read cancelled once the lease runs out; it is
// not run again.
func TestCancelLostJob(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a worker process and waits for a lease to run out")
	}
	lease := testLease(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Parallel()
		e, key, j, _ := doomedProof(t, b, lease)
		e.want(e.do("POST", "/v1/jobs/"+j.ID+"/cancel", key, nil), 202)
		eng := e.freshWorker()
		got := e.wait(key, j.ID, lease+lease/3+10*time.Second)
		if got.Status != "cancelled" || got.Error == nil || got.Error.Code != "cancelled" {
			t.Fatalf("cancelled lost job = %+v", got)
		}
		if n := eng.Proves.Load(); n != 0 {
			t.Fatalf("a cancelled job was proved %d times", n)
		}
	})
}
