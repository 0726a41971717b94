package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/store"
)

// Ceremonies runs Groth16 phase-2 ceremonies in model working directories, on the Powers
// of Tau file the service is configured with. Implementations wrap ErrCeremonyRejected
// when a contribution, a transcript or a request is refused for cause.
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
	// Seal verifies the transcript, applies the beacon (hex) and writes the Groth16 keys.
	Seal(ctx context.Context, dir, beacon string) (CeremonyView, error)
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

// ceremonyLocks serializes the changes to one model's ceremony in this process:
// contributions are verified and appended one at a time, in order (each must build on
// the state the previous one left, so a concurrent upload made from the same state is
// refused rather than lost).
var ceremonyLocks sync.Map // model ID -> *sync.Mutex

func lockCeremony(id string) func() {
	mu, _ := ceremonyLocks.LoadOrStore(id, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
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

// ceremonyError maps a refusal to 422 with code ceremony_rejected.
func ceremonyError(err error) error {
	if errors.Is(err, ErrCeremonyRejected) {
		return &Error{Kind: KindUnprocessable, Code: "ceremony_rejected", Message: err.Error(), Err: err}
	}
	return err
}

// persist snapshots the model's working directory (with its ceremony files) into the
// blob store and the model's manifest, so other nodes see the same transcript.
func (s *Server) persist(ctx context.Context, m *store.Model, dir string) error {
	if s.blobs == nil {
		return nil
	}
	man, err := artifact.Snapshot(ctx, s.blobs, dir)
	if err != nil {
		return err
	}
	files := make(map[string]string, len(man))
	for p, d := range man {
		files[p] = string(d)
	}
	return s.store.MergeModelFiles(ctx, m.ID, files)
}

func (s *Server) openCeremony(w http.ResponseWriter, r *http.Request) error {
	m, dir, err := s.ceremonyModel(r)
	if err != nil {
		return err
	}
	if m.HasSystem("groth16") {
		return errorf(KindConflict, "already_set_up", "model %s already has groth16 keys", m.ID)
	}
	defer lockCeremony(m.ID)()
	v, err := s.ceremony.Open(r.Context(), dir)
	if err != nil {
		return ceremonyError(err)
	}
	if err := s.persist(r.Context(), m, dir); err != nil {
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
// it in memory), then verifies and appends it; a refused or failed upload changes nothing.
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
	defer lockCeremony(m.ID)()
	c, err := s.ceremony.Contribute(r.Context(), dir, tmp.Name(), name)
	if err != nil {
		return ceremonyError(err)
	}
	if err := s.persist(r.Context(), m, dir); err != nil {
		return fmt.Errorf("contribution %d accepted but not persisted: %w", c.Index, err)
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
	defer lockCeremony(m.ID)()
	v, err := s.ceremony.Seal(r.Context(), dir, req.Beacon)
	if err != nil {
		return ceremonyError(err)
	}
	if err := s.persist(r.Context(), m, dir); err != nil {
		return err
	}
	if err := s.store.AddModelSystem(r.Context(), m.ID, "groth16"); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
