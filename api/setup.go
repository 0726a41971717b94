package api

import (
	"net/http"

	"github.com/zkml/zkml/internal/store"
)

// existingSetup answers a setup request while a setup of the same model and system is
// queued or running: 200 with that job (keys are made once; a second setup would
// replace them under a verifier deployed from the first).
func existingSetup(w http.ResponseWriter, j *store.Job) error {
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	return writeJSON(w, http.StatusOK, NewJobView(j))
}
