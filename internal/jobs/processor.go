package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/prover"
)

// Workspaces keeps one working directory per model under Root, a local cache: after
// compile and setup the directory is snapshotted into Blobs (the model's Files
// manifest), and Dir restores missing or damaged files from there, checksum-verified.
// So workers and API nodes need to share only the blob store, not Root.
//
// The model directory's manifest.json (prover.Manifest) is never replaced wholesale
// by another copy: restores and snapshots hold the directory's lock (prover.LockDir,
// which every change of the manifest through the prover holds) and merge the stored
// and the local manifest (prover.MergeManifests), and a snapshot merges into the
// stored one in a transaction (store.UpdateModelFiles). So setups of one model that
// run at once, in one process or on machines with their own Root, keep each other's
// keys.
type Workspaces struct {
	Root  string
	Blobs artifact.Store
}

const manifestFile = "manifest.json"

// Dir implements api.Workspaces.
func (w Workspaces) Dir(ctx context.Context, m *store.Model) (string, error) {
	dir := filepath.Join(w.Root, "models", m.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("jobs: workspace: %w", err)
	}
	if len(m.Files) > 0 && w.Blobs != nil {
		if err := w.restore(ctx, m, dir); err != nil {
			return "", fmt.Errorf("jobs: workspace of %s: %w", m.ID, err)
		}
	}
	return dir, nil
}

// restore makes dir hold m's files, under dir's lock. Where dir has a manifest
// already, the stored one is merged into it: the files whose entry the stored one
// has newer are fetched, those dir has newer are kept (written here since the model
// was last snapshotted).
func (w Workspaces) restore(ctx context.Context, m *store.Model, dir string) error {
	unlock, err := prover.LockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeLeftovers(dir); err != nil {
		return err
	}
	man := artifact.Manifest{}
	for p, d := range m.Files {
		man[p] = artifact.Digest(d)
	}
	local, err := os.ReadFile(filepath.Join(dir, manifestFile))
	storedDigest, hasStored := man[manifestFile]
	if err != nil || !hasStored {
		return artifact.Materialize(ctx, w.Blobs, man, dir)
	}
	stored, err := artifact.ReadAll(ctx, w.Blobs, storedDigest)
	if err != nil {
		return err
	}
	merged, fromStored, err := prover.MergeManifests(stored, local)
	if err != nil {
		// dir's manifest is damaged (or another model's): the stored one replaces it.
		return artifact.Materialize(ctx, w.Blobs, man, dir)
	}
	// A file the merged manifest lists with another content than the stored blob's
	// was written here since the snapshot: it stays. The others are restored where
	// missing or damaged, as are files the manifest does not list (a ceremony's);
	// those whose stored entry won are fetched anew.
	listed, err := prover.ManifestFiles(merged)
	if err != nil {
		return err
	}
	delete(man, manifestFile)
	for _, name := range fromStored {
		delete(man, name)
	}
	for p, d := range man {
		if sum, ok := listed[p]; ok && artifact.Digest("sha256:"+sum) != d {
			delete(man, p)
		}
	}
	if err := fetchNewer(ctx, w.Blobs, dir, recorded(m.Files, listed, fromStored)); err != nil {
		return err
	}
	if err := artifact.Materialize(ctx, w.Blobs, man, dir); err != nil {
		return err
	}
	if bytes.Equal(merged, local) {
		return nil
	}
	return prover.ReplaceManifest(dir, merged)
}

// recorded returns the files of names (entries of a merged manifest, listed: name ->
// hex SHA-256, that came from the stored manifest) whose blob the model's files
// record: those a directory can fetch. (A stored manifest may list a file no snapshot
// stored, such as a proof a seal's copy of a directory listed.)
func recorded(files, listed map[string]string, names []string) artifact.Manifest {
	out := artifact.Manifest{}
	for _, name := range names {
		if d := "sha256:" + listed[name]; files[name] == d {
			out[name] = artifact.Digest(d)
		}
	}
	return out
}

// fetchNewer fetches the files fetch into dir, newer versions of files dir may hold:
// each local file is removed first (Materialize keeps a large file of the blob's size,
// and keys made again have it). The caller holds dir's lock; a reader that finds a
// file missing meanwhile reads again under the lock (prover.Model).
func fetchNewer(ctx context.Context, blobs artifact.Store, dir string, fetch artifact.Manifest) error {
	for name := range fetch {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return artifact.Materialize(ctx, blobs, fetch, dir)
}

// Remove removes the working directory of the model id.
func (w Workspaces) Remove(ctx context.Context, id string) error {
	if !filepath.IsLocal(id) || filepath.Base(id) != id {
		return fmt.Errorf("jobs: workspace: bad model ID %q", id)
	}
	return os.RemoveAll(filepath.Join(w.Root, "models", id))
}

// dropWorkspace removes a model's working directory where the Workspaces can.
func (p *Processor) dropWorkspace(ctx context.Context, modelID string) {
	r, ok := p.Workspaces.(interface {
		Remove(ctx context.Context, id string) error
	})
	if !ok {
		return
	}
	if err := r.Remove(ctx, modelID); err != nil {
		p.log().Warn("remove the working directory of a failed model", "model", modelID, "err", err)
	}
}

var _ api.StepMerger = Workspaces{}

// MergeStepFiles implements api.StepMerger: a ceremony step's manifest.json (a seal
// lists the keys it made) is merged with the recorded one, which a setup of another
// system may have changed since the step copied it.
func (w Workspaces) MergeStepFiles(ctx context.Context, cur, files map[string]string) (map[string]string, error) {
	step, ok := files[manifestFile]
	stored, ok2 := cur[manifestFile]
	if !ok || !ok2 || step == stored || w.Blobs == nil {
		return files, nil
	}
	sb, err := artifact.ReadAll(ctx, w.Blobs, artifact.Digest(stored))
	if err != nil {
		return nil, err
	}
	lb, err := artifact.ReadAll(ctx, w.Blobs, artifact.Digest(step))
	if err != nil {
		return nil, err
	}
	merged, _, err := prover.MergeManifests(sb, lb)
	if err != nil {
		return files, nil // the recorded manifest is damaged: the step's replaces it
	}
	d, _, err := w.Blobs.Put(ctx, bytes.NewReader(merged))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(files))
	for p, d := range files {
		out[p] = d
	}
	out[manifestFile] = string(d)
	return out, nil
}

// InstallStep implements api.StepMerger: under dir's lock, the step's files are
// renamed into dir and its manifest.json is merged with dir's.
func (w Workspaces) InstallStep(dir, scratch string, paths []string) error {
	unlock, err := prover.LockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	for _, p := range paths {
		src, dst := filepath.Join(scratch, p), filepath.Join(dir, p)
		if filepath.ToSlash(p) == prover.LockName {
			// The step made a lock file of its own (dir had none when it was mirrored):
			// renamed over dir's, it would split the lock its holders hold.
			continue
		}
		if filepath.ToSlash(p) == manifestFile {
			step, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			local, err := os.ReadFile(dst)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err == nil {
				if merged, _, err := prover.MergeManifests(local, step); err == nil {
					if err := prover.ReplaceManifest(dir, merged); err != nil {
						return err
					}
					continue
				}
				// dir's manifest is damaged: the step's replaces it.
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
	}
	return nil
}

// removeLeftovers removes from dir the temporary files of writes whose process died
// (prover's ".tmp-*", Materialize's ".fetch-*": a setup killed past its timeout leaves
// part of a proving key), which would otherwise be stored and fetched by every
// worker. The caller holds dir's lock, which every writer of those files holds while
// it writes.
func removeLeftovers(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if name := d.Name(); strings.HasPrefix(name, ".tmp-") || strings.HasPrefix(name, ".fetch-") {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// snapshot records the working directory's files in the model's manifest: under the
// directory's lock, so the files and the manifest are one consistent set, and merging
// the directory's manifest.json with the stored one in the store's transaction, so a
// snapshot of another machine's directory made at the same time (another setup of the
// model) keeps its entries.
func (p *Processor) snapshot(ctx context.Context, m *store.Model, dir string) error {
	unlock, err := prover.LockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeLeftovers(dir); err != nil {
		return err
	}
	man, err := artifact.Snapshot(ctx, p.Blobs, dir)
	if err != nil {
		return err
	}
	delete(man, prover.LockName)
	local, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var merged []byte
	var fetch artifact.Manifest
	err = p.Store.UpdateModelFiles(ctx, m.ID, func(cur map[string]string) (map[string]string, error) {
		files := make(map[string]string, len(man))
		for path, d := range man {
			files[path] = string(d)
		}
		merged, fetch = nil, nil
		stored, ok := cur[manifestFile]
		if !ok || local == nil || stored == files[manifestFile] {
			return files, nil
		}
		b, err := artifact.ReadAll(ctx, p.Blobs, artifact.Digest(stored))
		if err != nil {
			return nil, err
		}
		var fromStored []string
		if merged, fromStored, err = prover.MergeManifests(b, local); err != nil {
			merged = nil
			return files, nil // the stored manifest is damaged: this directory's replaces it
		}
		listed, err := prover.ManifestFiles(merged)
		if err != nil {
			return nil, err
		}
		d, _, err := p.Blobs.Put(ctx, bytes.NewReader(merged))
		if err != nil {
			return nil, err
		}
		files[manifestFile] = string(d)
		// A file whose stored entry is newer than this directory's keeps its recorded
		// blob (this directory's older copy is not recorded over it).
		fetch = recorded(cur, listed, fromStored)
		for _, name := range fromStored {
			delete(files, name)
		}
		return files, nil
	})
	if err != nil || merged == nil {
		return err
	}
	// Bring the directory up to the merged manifest: fetch the files that came from
	// the store, then list them.
	if err := fetchNewer(ctx, p.Blobs, dir, fetch); err != nil {
		return err
	}
	if bytes.Equal(merged, local) {
		return nil
	}
	return prover.ReplaceManifest(dir, merged)
}

// Timeouts per job kind; zero values take the defaults.
type Timeouts struct {
	Compile, Setup, Prove time.Duration
}

// For returns the timeout for a job kind (defaults 30m, 1h, 30m).
func (t Timeouts) For(k store.JobKind) time.Duration {
	switch k {
	case store.KindCompile:
		return cmpOr(t.Compile, 30*time.Minute)
	case store.KindSetup:
		return cmpOr(t.Setup, time.Hour)
	}
	return cmpOr(t.Prove, 30*time.Minute)
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Processor runs tasks: pipeline steps through the Engine and webhook deliveries.
type Processor struct {
	Store      store.Store
	Engine     api.Engine
	Blobs      artifact.Store
	Workspaces api.Workspaces
	// Queue receives webhook tasks and re-enqueued jobs (set after building the queue).
	Queue    Queue
	Timeouts Timeouts
	Metrics  *Metrics
	Log      *slog.Logger
	// Heartbeat is how often a running job renews its lease and checks for a cancel
	// request (default 1s).
	Heartbeat time.Duration
	// Lease is how long a job stays with its worker without a heartbeat (default
	// 15s, at least 3 heartbeats): when it runs out, Reap hands the job to another
	// worker, so a killed worker's job is retried within about Lease plus the reap
	// interval, not after River's rescue window (the longest job timeout).
	Lease time.Duration
	// HTTPClient delivers webhooks (default: 10s timeout, public addresses only unless
	// AllowPrivateWebhooks).
	HTTPClient *http.Client
	// AllowPrivateWebhooks permits webhook URLs on loopback and private networks.
	AllowPrivateWebhooks bool

	clientOnce sync.Once
}

// Enqueue queues the run task of a job recorded in the store, with its kind's
// timeout; it implements api.Queue. The task is told apart from those of earlier
// hand-overs of the job (Reclaims), whose dead workers' tasks River still holds.
func (p *Processor) Enqueue(ctx context.Context, j *store.Job) error {
	return p.Queue.Enqueue(ctx, Task{Kind: TaskRun, JobID: j.ID, Timeout: p.Timeouts.For(j.Kind), Gen: runGen(j)})
}

// runGen tells a job's run tasks apart: one per hand-over from a lost worker, and a
// prove job that spawned segment jobs runs again (to assemble its bundle) under a
// generation its first run's tasks never had: Reclaims only grows.
func runGen(j *store.Job) int {
	if j.SegmentsTotal > 0 {
		return j.Reclaims + 1
	}
	return j.Reclaims
}

func (p *Processor) lease() time.Duration {
	if p.Lease > 0 {
		return max(p.Lease, 3*p.heartbeat())
	}
	return max(15*time.Second, 3*p.heartbeat())
}

func (p *Processor) heartbeat() time.Duration {
	if p.Heartbeat > 0 {
		return p.Heartbeat
	}
	return time.Second
}

var _ api.Queue = (*Processor)(nil)

func (p *Processor) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// Handle is the queue Handler.
func (p *Processor) Handle(ctx context.Context, t Task, a Attempt) error {
	switch t.Kind {
	case TaskRun:
		return p.run(ctx, t, a)
	case TaskWebhook:
		return p.deliver(ctx, t, a)
	}
	return Permanent(fmt.Errorf("jobs: unknown task kind %q", t.Kind))
}

// Causes of a run's context ending early.
var (
	errCancelRequested = errors.New("cancelled by request")
	errSuperseded      = errors.New("attempt superseded by another worker")
)

func (p *Processor) run(ctx context.Context, t Task, a Attempt) error {
	log := p.log().With("job", t.JobID)
	j, err := p.Store.StartJob(ctx, t.JobID, p.lease())
	if errors.Is(err, store.ErrLeased) {
		// A live worker runs the job (this task is a stale or duplicate delivery).
		return nil
	}
	if errors.Is(err, store.ErrConflict) {
		// Already finished (a duplicate delivery, a job cancelled while queued, or this
		// process died after finishing): the store has settled the model; send the
		// webhook and complete the task.
		if j != nil && j.WebhookURL != "" {
			p.queueWebhook(ctx, j)
		}
		if j != nil && j.Kind == store.KindSegment {
			// A segment cancelled with its parent (or by itself, ending the parent):
			// the parent, waiting without a task of its own, sends its webhook here.
			p.parentEnded(ctx, j)
		}
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return Permanent(fmt.Errorf("job %s: %w", t.JobID, err))
	}
	if err != nil {
		return err // the store is unavailable; River retries
	}
	log = log.With("kind", j.Kind, "attempt", j.Attempt)
	log.Info("job started", "queue_attempt", a.N)
	start := time.Now()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.watch(runCtx, cancel, j)
	}()
	progress := p.progress(runCtx, j)

	out, runErr := p.step(runCtx, j, progress)
	proof := out.proof
	cause := context.Cause(runCtx)
	cancel(nil)
	wg.Wait()

	finish := func(f store.Finish) error {
		done, err := p.Store.FinishJob(context.WithoutCancel(ctx), j.ID, j.Attempt, f)
		if errors.Is(err, store.ErrConflict) {
			log.Warn("job was taken over by another attempt; dropping this result")
			return nil
		}
		if err != nil {
			return err
		}
		p.Metrics.jobDone(j.Kind, f.Status, time.Since(start))
		log.Info("job finished", "status", f.Status, "code", f.ErrorCode, "dur", time.Since(start))
		if done.WebhookURL != "" {
			p.queueWebhook(ctx, done)
		}
		if done.Kind == store.KindSegment {
			p.parentEnded(ctx, done)
		}
		if done.Kind == store.KindCompile && done.Status != store.JobSucceeded {
			// The model is failed for good (the store settled it with the job):
			// nothing uses the files its compile left in the working directory.
			p.dropWorkspace(context.WithoutCancel(ctx), done.ModelID)
		}
		return nil
	}

	switch {
	case runErr == nil && out.waiting:
		log.Info("segment jobs spawned; the last one to finish hands the job back", "dur", time.Since(start))
		return nil
	case runErr == nil && j.Kind == store.KindSegment:
		parent, err := p.Store.FinishSegment(context.WithoutCancel(ctx), j.ID, j.Attempt, out.segment)
		if errors.Is(err, store.ErrConflict) {
			log.Warn("segment job was taken over by another attempt; dropping this result")
			return nil
		}
		if err != nil {
			return err
		}
		p.Metrics.jobDone(j.Kind, store.JobSucceeded, time.Since(start))
		log.Info("segment finished", "parent", j.ParentID, "segment", j.Segment, "dur", time.Since(start))
		if parent.Status == store.JobQueued {
			// This was the last segment (the store decided, once): assemble the bundle.
			if err := p.Enqueue(context.WithoutCancel(ctx), parent); err != nil {
				log.Error("enqueue the parent's assembly; Sweep will", "parent", parent.ID, "err", err)
			}
		}
		return nil
	case runErr == nil:
		if proof != nil {
			p.Metrics.proved(j.System, proof.ProveSeconds)
		}
		if err := finish(store.Finish{Status: store.JobSucceeded, Proof: proof}); err != nil {
			return err
		}
		return nil
	case errors.Is(cause, errCancelRequested):
		// If recording fails, the retry finds the cancel request in StartJob.
		return finish(store.Finish{Status: store.JobCancelled, ErrorCode: "cancelled", ErrorMessage: "cancelled by request"})
	case errors.Is(cause, errSuperseded), errors.Is(runErr, errSuperseded):
		log.Warn("job attempt superseded; abandoning")
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		if err := finish(store.Finish{Status: store.JobFailed, ErrorCode: "timeout",
			ErrorMessage: fmt.Sprintf("%s did not finish within %s", j.Kind, p.Timeouts.For(j.Kind))}); err != nil {
			return err
		}
		return Permanent(runErr)
	case ctx.Err() != nil:
		// Shutdown: hand the job back; River retries the task here or elsewhere.
		if err := p.Store.RequeueJob(context.WithoutCancel(ctx), j.ID, j.Attempt, "worker shut down; requeued"); err != nil && !errors.Is(err, store.ErrConflict) {
			log.Error("requeue failed", "err", err)
		}
		return ctx.Err()
	case api.EngineErrorCode(runErr) != "":
		if err := finish(store.Finish{Status: store.JobFailed, ErrorCode: api.EngineErrorCode(runErr), ErrorMessage: api.EngineErrorMessage(runErr)}); err != nil {
			return err
		}
		return Permanent(runErr)
	case a.Last():
		log.Error("job failed on its last attempt", "err", runErr)
		if err := finish(store.Finish{Status: store.JobFailed, ErrorCode: "internal", ErrorMessage: runErr.Error()}); err != nil {
			return err
		}
		return Permanent(runErr)
	default:
		log.Warn("job attempt failed; will retry", "err", runErr)
		if err := p.Store.RequeueJob(context.WithoutCancel(ctx), j.ID, j.Attempt, "retrying after: "+runErr.Error()); err != nil && !errors.Is(err, store.ErrConflict) {
			log.Error("requeue failed", "err", err)
		}
		return runErr
	}
}

// outcome is what a successful step produced.
type outcome struct {
	proof *store.Proof
	// segment is a segment job's segment proof.
	segment []byte
	// waiting: a prove job spawned its segment jobs and does not finish now.
	waiting bool
}

// step runs the pipeline step of j and records its effect on the model.
func (p *Processor) step(ctx context.Context, j *store.Job, progress func(string, float64)) (outcome, error) {
	m, err := p.Store.GetModel(ctx, "", j.ModelID)
	if errors.Is(err, store.ErrNotFound) {
		return outcome{}, fmt.Errorf("model %s was deleted: %w", j.ModelID, api.ErrInvalidModel)
	}
	if err != nil {
		return outcome{}, err
	}
	dir, err := p.Workspaces.Dir(ctx, m)
	if err != nil {
		return outcome{}, err
	}
	if j.Kind == store.KindSegment || j.Kind == store.KindProve {
		se, ok := p.Engine.(api.ShardEngine)
		if j.Kind == store.KindSegment && !ok {
			return outcome{}, fmt.Errorf("segment job %s: the engine does not run sharded models", j.ID)
		}
		if ok {
			n, err := se.Segments(ctx, dir)
			if err != nil {
				return outcome{}, err
			}
			if n > 0 || j.Kind == store.KindSegment {
				return p.stepSharded(ctx, se, j, dir, progress)
			}
		}
	}
	proof, err := p.stepModel(ctx, j, m, dir, progress)
	return outcome{proof: proof}, err
}

// stepModel runs compile, setup and the prove job of a model that is not sharded.
func (p *Processor) stepModel(ctx context.Context, j *store.Job, m *store.Model, dir string, progress func(string, float64)) (*store.Proof, error) {
	switch j.Kind {
	case store.KindCompile:
		progress("load", 0)
		onnx, err := artifact.ReadAll(ctx, p.Blobs, artifact.Digest(m.ONNXDigest))
		if err != nil {
			return nil, err
		}
		progress("compile", 0.1)
		info, err := p.Engine.Compile(ctx, dir, onnx, m.Settings)
		if err != nil {
			return nil, err
		}
		progress("snapshot", 0.9)
		if err := p.snapshot(ctx, m, dir); err != nil {
			return nil, err
		}
		m.Status, m.Error = store.ModelCompiled, ""
		m.EngineModelID, m.Constraints, m.Inputs, m.Outputs, m.Stats = info.ModelID, info.Constraints, info.Inputs, info.Outputs, info.Stats
		return nil, p.Store.SetModelCompiled(ctx, m)
	case store.KindSetup:
		if m.HasSystem(j.System) {
			// Keys are made once: a setup that finds them (a retry after its worker
			// died past this point, or a request that raced the first setup's end)
			// succeeds without replacing them under a deployed verifier.
			p.log().Info("keys already exist; setup skipped", "job", j.ID, "model", m.ID, "system", j.System)
			return nil, nil
		}
		progress("setup", 0)
		prov, err := p.Engine.Setup(ctx, dir, j.System)
		if err != nil {
			return nil, err
		}
		progress("snapshot", 0.9)
		if err := p.snapshot(ctx, m, dir); err != nil {
			return nil, err
		}
		rec, err := json.Marshal(prov)
		if err != nil {
			return nil, err
		}
		return nil, p.Store.AddModelSystem(ctx, m.ID, j.System, rec)
	case store.KindProve:
		res, err := p.Engine.Prove(ctx, dir, j.System, j.Input, progress)
		if err != nil {
			return nil, err
		}
		return &store.Proof{Proof: res.Proof, PublicInputs: res.PublicInputs, Outputs: res.Outputs,
			Calldata: res.Calldata, ProveSeconds: res.ProveSeconds}, nil
	}
	return nil, fmt.Errorf("unknown job kind %q: %w", j.Kind, api.ErrInvalidInput)
}

// stepSharded runs a prove job of a sharded model, in two runs: the first evaluates
// the model once, stores the boundary activations and spawns one segment job per
// segment; the last segment job to finish queues the prove job again, and its second
// run assembles the bundle from the segment proofs. A segment job proves its segment.
func (p *Processor) stepSharded(ctx context.Context, se api.ShardEngine, j *store.Job, dir string, progress func(string, float64)) (outcome, error) {
	switch {
	case j.Kind == store.KindSegment:
		parent, err := p.Store.GetJob(ctx, "", j.ParentID)
		if err != nil {
			return outcome{}, err
		}
		acts, err := artifact.ReadAll(ctx, p.Blobs, artifact.Digest(parent.Activations))
		if err != nil {
			return outcome{}, err
		}
		progress("prove", 0.1)
		sp, err := se.ProveSegment(ctx, dir, j.System, acts, j.Segment)
		return outcome{segment: sp}, err
	case j.SegmentsTotal > 0:
		progress("assemble", 0.9)
		acts, err := artifact.ReadAll(ctx, p.Blobs, artifact.Digest(j.Activations))
		if err != nil {
			return outcome{}, err
		}
		segs, err := p.Store.SegmentResults(ctx, j.ID)
		if err != nil {
			return outcome{}, err
		}
		for i, s := range segs {
			if s == nil {
				return outcome{}, fmt.Errorf("segment %d of %d has no proof", i, len(segs))
			}
		}
		res, err := se.AssembleBundle(ctx, dir, j.System, acts, segs)
		if err != nil {
			return outcome{}, err
		}
		return outcome{proof: &store.Proof{Proof: res.Proof, Outputs: res.Outputs, Calldata: res.Calldata,
			ProveSeconds: res.ProveSeconds, Bundle: true}}, nil
	}
	progress("evaluate", 0)
	acts, n, err := se.PrepareSegments(ctx, dir, j.System, j.Input)
	if err != nil {
		return outcome{}, err
	}
	digest, _, err := p.Blobs.Put(ctx, bytes.NewReader(acts))
	if err != nil {
		return outcome{}, err
	}
	segs, err := p.Store.SpawnSegments(ctx, j.ID, j.Attempt, string(digest), n)
	if errors.Is(err, store.ErrConflict) {
		return outcome{}, fmt.Errorf("spawn segment jobs: %w", errSuperseded)
	}
	if err != nil {
		return outcome{}, err
	}
	for _, s := range segs {
		if err := p.Enqueue(context.WithoutCancel(ctx), s); err != nil {
			p.log().Warn("enqueue segment job; Sweep will", "job", s.ID, "err", err)
		}
	}
	return outcome{waiting: true}, nil
}

// parentEnded queues the webhook of the prove job of segment job j when j's end
// ended it (the store failed or cancelled it with j).
func (p *Processor) parentEnded(ctx context.Context, j *store.Job) {
	parent, err := p.Store.GetJob(context.WithoutCancel(ctx), "", j.ParentID)
	if err != nil {
		p.log().Warn("read the parent of an ended segment job", "job", j.ID, "err", err)
		return
	}
	if parent.Status.Terminal() && parent.WebhookURL != "" {
		p.queueWebhook(ctx, parent)
	}
}

// watch heartbeats until ctx ends, cancelling the run when a cancel is requested or
// when another attempt has taken the job over.
func (p *Processor) watch(ctx context.Context, cancel context.CancelCauseFunc, j *store.Job) {
	every(ctx, p.heartbeat(), func() bool {
		stop, err := p.Store.Heartbeat(ctx, j.ID, j.Attempt, "", 0, p.lease())
		switch {
		case errors.Is(err, store.ErrConflict):
			cancel(errSuperseded)
			return false
		case err != nil:
			if ctx.Err() == nil {
				p.log().Warn("heartbeat failed", "job", j.ID, "err", err)
			}
		case stop:
			cancel(errCancelRequested)
			return false
		}
		return true
	})
}

// progress returns the engine's progress callback: stage changes are written at once,
// fraction updates at most every 250ms.
func (p *Processor) progress(ctx context.Context, j *store.Job) func(string, float64) {
	var mu sync.Mutex
	var lastStage string
	var lastWrite time.Time
	return func(stage string, frac float64) {
		mu.Lock()
		defer mu.Unlock()
		if stage == lastStage && time.Since(lastWrite) < 250*time.Millisecond {
			return
		}
		lastStage, lastWrite = stage, time.Now()
		if _, err := p.Store.Heartbeat(ctx, j.ID, j.Attempt, stage, min(max(frac, 0), 1), p.lease()); err != nil && ctx.Err() == nil {
			p.log().Debug("progress update failed", "job", j.ID, "err", err)
		}
	}
}

func (p *Processor) queueWebhook(ctx context.Context, j *store.Job) {
	if err := p.Queue.Enqueue(context.WithoutCancel(ctx), Task{Kind: TaskWebhook, JobID: j.ID}); err != nil {
		p.log().Error("queue webhook", "job", j.ID, "err", err)
	}
}

// RedeliverWebhook queues the n-th manual redelivery of a finished job's webhook
// (j.WebhookRedeliveries, as RedeliverWebhook in the store counted it); it
// implements api.WebhookQueue.
func (p *Processor) RedeliverWebhook(ctx context.Context, j *store.Job) error {
	return p.Queue.Enqueue(ctx, Task{Kind: TaskWebhook, JobID: j.ID, Gen: j.WebhookRedeliveries})
}

var _ api.WebhookQueue = (*Processor)(nil)

// WebhookEvent is the body POSTed to a job's webhook_url when it finishes.
type WebhookEvent struct {
	Type string      `json:"type"` // "job.succeeded", "job.failed" or "job.cancelled"
	Job  api.JobView `json:"job"`
}

// deliver POSTs the finished job, signed with the owner's webhook secret, and records
// the attempt on the job. Non-2xx answers and network errors are retried with
// backoff by the queue, over the configured retry window.
func (p *Processor) deliver(ctx context.Context, t Task, a Attempt) error {
	j, err := p.Store.GetJob(ctx, "", t.JobID)
	if errors.Is(err, store.ErrNotFound) {
		return Permanent(err)
	}
	if err != nil {
		return err
	}
	if j.WebhookURL == "" || !j.Status.Terminal() {
		return nil
	}
	if done, err := p.Store.WebhookDelivered(ctx, j.ID, t.Gen); err != nil {
		return err
	} else if done {
		return nil
	}
	key, err := p.Store.GetAPIKey(ctx, j.Owner)
	if err != nil {
		return err
	}
	view := api.NewJobView(j)
	view.Webhook = nil // the receiver gets the job, not the history of its deliveries
	body, err := json.Marshal(WebhookEvent{Type: "job." + string(j.Status), Job: view})
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "zkml-webhook/1")
	req.Header.Set("Zkml-Event-Id", j.ID)
	req.Header.Set(api.SignatureHeader, api.SignWebhook(key.WebhookSecret, time.Now(), body))
	p.clientOnce.Do(func() {
		if p.HTTPClient == nil {
			p.HTTPClient = webhookClient(p.AllowPrivateWebhooks)
		}
	})
	d := &store.WebhookDelivery{JobID: j.ID, Redelivery: t.Gen, Attempt: a.N}
	resp, err := p.HTTPClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		d.StatusCode = resp.StatusCode
		if resp.StatusCode >= 300 {
			err = fmt.Errorf("webhook %s answered %s", j.WebhookURL, resp.Status)
		}
	}
	d.Delivered = err == nil
	if err != nil {
		d.Error = err.Error()
	}
	if rerr := p.Store.RecordWebhook(context.WithoutCancel(ctx), d); rerr != nil {
		p.log().Warn("record webhook", "job", j.ID, "err", rerr)
	}
	if d.Delivered {
		p.Metrics.webhook("delivered")
		return nil
	}
	p.Metrics.webhook("failed")
	if a.Last() {
		p.log().Error("webhook abandoned", "job", j.ID, "attempts", a.N, "err", err)
		return Permanent(err)
	}
	return err
}

// Sweep enqueues jobs that have stayed queued longer than age: an API process
// recorded the job but died, or lost the database, before enqueueing it, or a reaper
// reclaimed it and died before enqueueing. Enqueue is unique per job and hand-over,
// so this is a no-op for jobs already queued. It returns how many jobs it enqueued.
func (p *Processor) Sweep(ctx context.Context, age time.Duration) (int, error) {
	n := 0
	queued, err := p.Store.ListJobs(ctx, "", store.JobQueued, 1000)
	if err != nil {
		return 0, err
	}
	for _, j := range queued {
		if time.Since(j.CreatedAt) < age {
			continue
		}
		if err := p.Enqueue(ctx, j); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Reap takes back running jobs whose lease has expired (their worker died or lost
// the database): each is queued again under a new task, exactly once however many
// workers reap at the same time (the store's conditional ReclaimJob decides), or
// failed with worker_lost after maxAttempts runs, or cancelled if that was requested.
// It returns how many jobs it took back. maxAttempts <= 0 means 3, the queue's default.
func (p *Processor) Reap(ctx context.Context, maxAttempts int) (int, error) {
	if maxAttempts <= 0 {
		maxAttempts = 3
	}
	running, err := p.Store.ListJobs(ctx, "", store.JobRunning, 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	now := time.Now()
	for _, j := range running {
		if j.LeaseUntil == nil || now.Before(*j.LeaseUntil) {
			continue
		}
		done, err := p.Store.ReclaimJob(ctx, j.ID, j.Attempt, j.Attempt >= maxAttempts)
		if errors.Is(err, store.ErrConflict) {
			continue // renewed meanwhile, or another reaper was first
		}
		if err != nil {
			return n, err
		}
		n++
		p.log().Warn("job's worker lost; job taken back", "job", j.ID, "attempt", j.Attempt, "status", done.Status)
		if done.Status == store.JobQueued {
			if err := p.Enqueue(ctx, done); err != nil {
				return n, err // Sweep enqueues it later
			}
			continue
		}
		p.Metrics.jobDone(done.Kind, done.Status, 0)
		if done.WebhookURL != "" {
			p.queueWebhook(ctx, done)
		}
		if done.Kind == store.KindSegment {
			p.parentEnded(ctx, done)
		}
	}
	return n, nil
}

// RunReaper calls Reap every third of the lease until ctx ends.
func (p *Processor) RunReaper(ctx context.Context, maxAttempts int) {
	every(ctx, p.lease()/3, func() bool {
		if _, err := p.Reap(ctx, maxAttempts); err != nil && ctx.Err() == nil {
			p.log().Warn("reap failed", "err", err)
		}
		return true
	})
}

// every calls fn every interval d until ctx ends or fn returns false.
func every(ctx context.Context, d time.Duration, fn func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}
