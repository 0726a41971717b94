package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/zkml/zkml/internal/store"
)

// Kind classifies an error for the HTTP layer; statusOf is the single table from kind
// to status code.
type Kind int

// Error kinds.
const (
	KindInternal Kind = iota
	KindBadRequest
	KindUnauthorized
	KindForbidden
	KindNotFound
	KindConflict
	KindTooLarge
	KindUnsupportedMedia
	KindUnprocessable
	KindUnavailable
)

var statusOf = map[Kind]int{
	KindInternal:         http.StatusInternalServerError,
	KindBadRequest:       http.StatusBadRequest,
	KindUnauthorized:     http.StatusUnauthorized,
	KindForbidden:        http.StatusForbidden,
	KindNotFound:         http.StatusNotFound,
	KindConflict:         http.StatusConflict,
	KindTooLarge:         http.StatusRequestEntityTooLarge,
	KindUnsupportedMedia: http.StatusUnsupportedMediaType,
	KindUnprocessable:    http.StatusUnprocessableEntity,
	KindUnavailable:      http.StatusServiceUnavailable,
}

// Error is an error with a stable, documented code (e.g. "not_found"), which is what
// clients should branch on; Message is for humans.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status for e.
func (e *Error) Status() int { return statusOf[e.Kind] }

func errorf(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Codes of errors raised by other packages, shared with the job error codes.
const (
	CodeInvalidInput    = "invalid_input"
	CodeInvalidModel    = "invalid_model"
	CodeInvalidSettings = "invalid_settings"
)

// EngineErrorCode maps a user-fault engine error to its stable code, or "" when err is
// not the user's fault.
func EngineErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrInvalidInput):
		return CodeInvalidInput
	case errors.Is(err, ErrInvalidModel):
		return CodeInvalidModel
	case errors.Is(err, ErrInvalidSettings):
		return CodeInvalidSettings
	case errors.Is(err, ErrOverBudget):
		return CodeOverBudget
	case errors.Is(err, ErrResourceLimit):
		return CodeResourceLimit
	}
	return ""
}

// AsError classifies any error as an *Error: the code and status a client sees.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &Error{Kind: KindTooLarge, Code: "too_large", Message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit), Err: err}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Kind: KindNotFound, Code: "not_found", Message: "not found", Err: err}
	case EngineErrorCode(err) != "":
		return &Error{Kind: KindUnprocessable, Code: EngineErrorCode(err), Message: err.Error(), Err: err}
	}
	return &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// adapt is the one place that writes error responses.
func (s *Server) adapt(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e.Kind == KindInternal {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	writeJSON(w, e.Status(), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
