package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/store"
)

// Ceremonies runs Groth16 phase-2 ceremonies in model working directories, on the Powers
// of Tau file the service is configured with. Implementations wrap ErrCeremonyRejected
// when a contribution, a transcript or a request is refused for cause.
//
// The API calls Open, Contribute and Seal in a scratch mirror of the working directory
// whose files are symbolic links to the real ones: they must write only through new
// files renamed into place (never into an existing file), so that what they write is
// the step's output and the working directory stays as it was until the store has
// recorded the step (see Server.advance).
type Ceremonies interface {
	// Open starts the ceremony of the compiled model in dir.
	Open(ctx context.Context, dir string) (CeremonyView, error)
	// Get returns the public transcript.
	Get(ctx context.Context, dir string) (CeremonyView, error)
	// Current returns the path of the current state, the file the next contributor needs.
	Current(ctx context.Context, dir string) (string, error)
	// Contribute verifies the contribution in the file at upload against the current
	// state and appends it to the transcript.
	Contribute(ctx context.Context, dir, upload, name string) (ContributionView, error)
	// Seal verifies the transcript, applies the beacon (hex) and writes the Groth16
	// keys; it returns the transcript and the keys' provenance.
	Seal(ctx context.Context, dir, beacon string) (CeremonyView, Provenance, error)
}

// ErrCeremonyRejected is wrapped by a Ceremonies error that is the caller's fault: an
// invalid contribution or beacon, a sealed ceremony, no ceremony yet.
var ErrCeremonyRejected = errors.New("ceremony request rejected")

// CeremonyView is the public record of a ceremony.
type CeremonyView struct {
	ModelID       string             `json:"model_id"`
	Circuit       string             `json:"circuit_sha256"`
	PtauBLAKE2b   string             `json:"ptau_blake2b"`
	PtauPower     int                `json:"ptau_power"`
	Initial       string             `json:"initial_sha256"`
	Contributions []ContributionView `json:"contributions"`
	Beacon        string             `json:"beacon,omitempty"`
	Sealed        *time.Time         `json:"sealed,omitempty"`
}

// ContributionView is one accepted contribution.
type ContributionView struct {
	Index int       `json:"index"`
	Name  string    `json:"name"`
	Hash  string    `json:"sha256"`
	Time  time.Time `json:"time"`
}

func (s *Server) ceremonyRoutes(r interface {
	Get(string, http.HandlerFunc)
	Post(string, http.HandlerFunc)
}) {
	r.Post("/models/{id}/ceremony", s.tenant(s.openCeremony))
	r.Get("/models/{id}/ceremony", s.tenant(s.getCeremony))
	r.Get("/models/{id}/ceremony/state", s.tenant(s.ceremonyState))
	r.Post("/models/{id}/ceremony/contributions", s.tenant(s.contribute))
	r.Post("/models/{id}/ceremony/seal", s.tenant(s.sealCeremony))
}

// ceremonyModel loads the model and its working directory, for a service with
// ceremonies enabled.
func (s *Server) ceremonyModel(r *http.Request) (*store.Model, string, error) {
	if s.ceremony == nil {
		return nil, "", errorf(KindUnavailable, "ceremonies_disabled", "this service runs no ceremonies (it needs a Powers of Tau file: ZKML_PTAU)")
	}
	m, err := s.model(r)
	if err != nil {
		return nil, "", err
	}
	if m.Status != store.ModelCompiled {
		return nil, "", notReady("model %s is %s; a ceremony needs a compiled model", m.ID, m.Status)
	}
	dir, err := s.ws.Dir(r.Context(), m)
	return m, dir, err
}

// ErrCeremonyStale is wrapped by a Ceremonies error that refuses a contribution made
// from an earlier state of the ceremony (another one was accepted since it was
// downloaded).
var ErrCeremonyStale = errors.New("stale ceremony state")

// ceremonyError maps a refusal to 422 with code ceremony_rejected, and a contribution
// made from an earlier state to 409 stale_ceremony_state.
func ceremonyError(err error) error {
	if errors.Is(err, ErrCeremonyStale) {
		return &Error{Kind: KindConflict, Code: "stale_ceremony_state", Message: err.Error(), Err: err}
	}
	if errors.Is(err, ErrCeremonyRejected) {
		return &Error{Kind: KindUnprocessable, Code: "ceremony_rejected", Message: err.Error(), Err: err}
	}
	return err
}

// head is where the ceremony in v stands.
func head(v CeremonyView) store.CeremonyHead {
	h := store.CeremonyHead{Contributions: len(v.Contributions), Hash: v.Initial, Sealed: v.Sealed != nil}
	if n := len(v.Contributions); n > 0 {
		h.Hash = v.Contributions[n-1].Hash
	}
	return h
}

// errStale answers a step that lost the race with another one.
func errStale(m *store.Model) error {
	return errorf(KindConflict, "stale_ceremony_state", "the ceremony of model %s changed while this request was processed "+
		"(another contribution, possibly on another server, was accepted first); nothing of this request was kept: "+
		"download the current state (GET /v1/models/%s/ceremony/state) and contribute again", m.ID, m.ID)
}

// mirror makes a scratch directory next to dir holding symbolic links to dir's files.
// A ceremony step runs in it; what the step writes (new files renamed over links) are
// regular files, its output, while dir stays as other requests, and other processes
// sharing it, see it. The returned func removes the scratch directory.
func mirror(dir string) (string, func(), error) {
	scratch, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+"-step-")
	if err != nil {
		return "", nil, err
	}
	done := func() { os.RemoveAll(scratch) }
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") { // temporary files of writes in progress
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.Mkdir(filepath.Join(scratch, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		return os.Symlink(abs, filepath.Join(scratch, rel))
	})
	if err != nil {
		done()
		return "", nil, fmt.Errorf("ceremony scratch directory: %w", err)
	}
	return scratch, done, nil
}

// written returns the regular files under scratch (relative paths): what a step wrote.
func written(scratch string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(scratch, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(scratch, path)
		out = append(out, rel)
		return err
	})
	return out, err
}

// advance records a ceremony step run in scratch (a mirror of dir): the files it wrote
// go to the blob store, then the store compares the ceremony's head with from and, only
// if no other step came first, swaps in to and merges the files into the model's
// manifest, in one transaction (a step that loses gets errStale, and nothing of it is
// kept). Only then are the files moved into dir.
func (s *Server) advance(ctx context.Context, m *store.Model, dir, scratch string, step store.CeremonyStep) error {
	paths, err := written(scratch)
	if err != nil {
		return err
	}
	// created: the blobs this step added to the store (none of them was there before).
	var created []artifact.Digest
	if s.blobs != nil {
		step.Files = make(map[string]string, len(paths))
		for _, p := range paths {
			d, isNew, err := s.putStepFile(ctx, filepath.Join(scratch, p))
			if err != nil {
				return err
			}
			if isNew {
				created = append(created, d)
			}
			step.Files[filepath.ToSlash(p)] = string(d)
		}
	}
	merger, _ := s.ws.(StepMerger)
	if merger != nil && s.blobs != nil {
		step.MergeFiles = func(cur, files map[string]string) (map[string]string, error) {
			return merger.MergeStepFiles(ctx, cur, files)
		}
	}
	if err := s.store.AdvanceCeremony(ctx, m.ID, step); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.dropLosingBlobs(context.WithoutCancel(ctx), m.ID, created)
			return errStale(m)
		}
		return err
	}
	// Recorded: install the files in the working directory (the blob store has them for
	// every other one). Small files first would not matter: each rename is atomic, and
	// a reader that sees a new state.json before its phase file fails its hash check.
	if merger != nil {
		if err := merger.InstallStep(dir, scratch, paths); err != nil {
			return fmt.Errorf("ceremony step recorded, but installing it in the working directory: %w", err)
		}
		return nil
	}
	for _, p := range paths {
		dst := filepath.Join(dir, p)
		err := os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = os.Rename(filepath.Join(scratch, p), dst)
		}
		if err != nil {
			return fmt.Errorf("ceremony step recorded, but installing %s in the working directory: %w", p, err)
		}
	}
	return nil
}

// StepMerger is implemented by Workspaces whose directories hold a file that a
// ceremony step's copy must be merged with rather than replace it (jobs.Workspaces:
// the model's manifest, which a setup may change while a seal runs).
type StepMerger interface {
	// MergeStepFiles returns the files (path -> digest) to record for a step that
	// wrote files over the model's recorded ones, cur; it runs in the store's
	// transaction of the step.
	MergeStepFiles(ctx context.Context, cur, files map[string]string) (map[string]string, error)
	// InstallStep moves the files a recorded step wrote (paths relative to scratch)
	// into dir.
	InstallStep(dir, scratch string, paths []string) error
}

// blobChecker is a blob store that tells whether it holds a blob (artifact.Disk).
type blobChecker interface {
	Has(ctx context.Context, d artifact.Digest) (bool, error)
}

// putStepFile stores the file at path in the blob store and reports whether this
// stored it (the blob was not there before): only such a blob may be removed again
// when the step loses. A store that cannot tell never reports new.
func (s *Server) putStepFile(ctx context.Context, path string) (artifact.Digest, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	isNew := false
	if bc, ok := s.blobs.(blobChecker); ok {
		d, err := artifact.SumReader(f)
		if err != nil {
			return "", false, err
		}
		has, err := bc.Has(ctx, d)
		if err != nil {
			return "", false, err
		}
		isNew = !has
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", false, err
		}
	}
	d, _, err := s.blobs.Put(ctx, f)
	return d, isNew, err
}

// dropLosingBlobs removes the blobs a step that lost the compare-and-swap stored, so
// that a refused contribution leaves nothing behind. The step lost because another one
// was recorded first; a blob that step (or any other change of the model) references
// now is kept, as is any blob that was in the store before the losing step stored it
// (another model's, or an earlier accepted state's). A step from the same head that
// wrote the same bytes (a deterministic open or seal) made the same blobs, and the one
// that won references them. Failures are logged: a leftover blob is harmless.
func (s *Server) dropLosingBlobs(ctx context.Context, modelID string, created []artifact.Digest) {
	if len(created) == 0 {
		return
	}
	m, err := s.store.GetModel(ctx, "", modelID)
	if err != nil {
		s.log.WarnContext(ctx, "ceremony: read the model to clean up a losing step's blobs", "model", modelID, "err", err)
		return
	}
	ref := map[string]bool{m.ONNXDigest: true}
	for _, d := range m.Files {
		ref[d] = true
	}
	for _, d := range created {
		if ref[string(d)] {
			continue
		}
		if err := s.blobs.Delete(ctx, d); err != nil {
			s.log.WarnContext(ctx, "ceremony: remove a losing step's blob", "model", modelID, "blob", d, "err", err)
		}
	}
}

func (s *Server) openCeremony(w http.ResponseWriter, r *http.Request) error {
	m, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	if m.HasSystem("groth16") {
		return errorf(KindConflict, "already_set_up", "model %s already has groth16 keys", m.ID)
	}
	if m.Ceremony.Sealed || m.Ceremony.Contributions > 0 {
		return ceremonyError(fmt.Errorf("%w: the ceremony of model %s already has %d contribution(s)", ErrCeremonyRejected, m.ID, m.Ceremony.Contributions))
	}
	scratch, done, err := mirror(dir)
	if err != nil {
		return err
	}
	defer done()
	v, err := s.ceremony.Open(r.Context(), scratch)
	if err != nil {
		return ceremonyError(err)
	}
	if err := s.advance(r.Context(), m, dir, scratch, store.CeremonyStep{From: m.Ceremony, To: head(v)}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) getCeremony(w http.ResponseWriter, r *http.Request) error {
	_, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	v, err := s.ceremony.Get(r.Context(), dir)
	if err != nil {
		return ceremonyError(err)
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) ceremonyState(w http.ResponseWriter, r *http.Request) error {
	m, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	path, err := s.ceremony.Current(r.Context(), dir)
	if err != nil {
		return ceremonyError(err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID+`_phase2.bin"`)
	_, err = io.Copy(w, f)
	return err
}

// contribute streams the upload to a temporary file under the size limit (never holding
// it in memory), verifies it against the current state in a scratch mirror of the
// working directory and records it with a compare-and-swap on the ceremony's head: of
// two uploads made from the same state, on this server or on another one sharing the
// database, one is accepted and the other gets 409 stale_ceremony_state. A refused,
// failed or losing upload changes nothing.
func (s *Server) contribute(w http.ResponseWriter, r *http.Request) error {
	m, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 64 {
		return badRequest("query parameter name (1 to 64 characters) is required: it goes into the public transcript")
	}
	tmp, err := os.CreateTemp("", "zkml-contribution-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, http.MaxBytesReader(w, r.Body, s.limits.MaxModelBytes))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return badRequest("reading the contribution: %v", err)
	}
	scratch, done, err := mirror(dir)
	if err != nil {
		return err
	}
	defer done()
	before, err := s.ceremony.Get(r.Context(), scratch)
	if err != nil {
		return ceremonyError(err)
	}
	c, err := s.ceremony.Contribute(r.Context(), scratch, tmp.Name(), name)
	if err != nil {
		return ceremonyError(err)
	}
	from := head(before)
	if c.Index != from.Contributions+1 {
		// The transcript changed between the two reads: a step recorded meanwhile.
		return errStale(m)
	}
	if err := s.advance(r.Context(), m, dir, scratch, store.CeremonyStep{From: from, To: store.CeremonyHead{Contributions: c.Index, Hash: c.Hash}}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) sealCeremony(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req struct {
		Beacon string `json:"beacon"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	m, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	if m.HasSystem("groth16") {
		return errorf(KindConflict, "already_set_up", "model %s already has groth16 keys", m.ID)
	}
	scratch, done, err := mirror(dir)
	if err != nil {
		return err
	}
	defer done()
	before, err := s.ceremony.Get(r.Context(), scratch)
	if err != nil {
		return ceremonyError(err)
	}
	v, prov, err := s.ceremony.Seal(r.Context(), scratch, req.Beacon)
	if err != nil {
		return ceremonyError(err)
	}
	from := head(before)
	if to := head(v); to.Hash != from.Hash || to.Contributions != from.Contributions || !to.Sealed {
		return errStale(m)
	}
	rec, err := json.Marshal(prov)
	if err != nil {
		return err
	}
	to := from
	to.Sealed = true
	if err := s.advance(r.Context(), m, dir, scratch, store.CeremonyStep{From: from, To: to, System: "groth16", Provenance: rec}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
