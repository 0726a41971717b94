package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

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
	KindMethodNotAllowed
	KindTimeout
	KindGone
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
	KindMethodNotAllowed: http.StatusMethodNotAllowed,
	KindTimeout:          http.StatusRequestTimeout,
	KindGone:             http.StatusGone,
}

// RetryAfterSeconds is the Retry-After of every 503: how long a client should wait
// before trying again while the database is unreachable.
const RetryAfterSeconds = 5

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

// errorClasses is the one table from the kinds of error raised below the API (request
// bodies, the store, the network, the engine) to what a client sees. AsError uses the
// first row that matches.
var errorClasses = []struct {
	match   func(error) bool
	kind    Kind
	code    string
	message func(error) string
}{
	{isTooBig, KindTooLarge, "too_large", func(err error) string {
		var tooBig *http.MaxBytesError
		errors.As(err, &tooBig)
		return fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)
	}},
	{func(err error) bool { return errors.Is(err, store.ErrNotFound) }, KindNotFound, "not_found", fixed("not found")},
	{Unavailable, KindUnavailable, "unavailable", fixed("database unavailable; retry later")},
}

func fixed(msg string) func(error) string { return func(error) string { return msg } }

func isTooBig(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.As(err, &tooBig)
}

// Unavailable reports whether err says that the database (or another service a request
// needs) cannot be reached now: a refused, reset or cut connection, a connection-class
// SQLSTATE (08xxx), a server shutting down or refusing connections (57P01-57P03,
// 53300), or a deadline passed while waiting for it (context.DeadlineExceeded is a
// net.Error). The same request may succeed later, so it answers 503 with Retry-After,
// never 500. The API does not import a driver: SQLSTATEs are read through the
// SQLState method that pgx's errors have.
func Unavailable(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch c := st.SQLState(); {
		case strings.HasPrefix(c, "08"), c == "57P01", c == "57P02", c == "57P03", c == "53300":
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// AsError classifies any error as an *Error: the code and status a client sees.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, c := range errorClasses {
		if c.match(err) {
			return &Error{Kind: c.kind, Code: c.code, Message: c.message(err), Err: err}
		}
	}
	if code := EngineErrorCode(err); code != "" {
		return &Error{Kind: KindUnprocessable, Code: code, Message: EngineErrorMessage(err), Err: err}
	}
	return &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
}

// EngineErrorMessage is the message of a user-fault engine error without the repeated
// "invalid model: invalid model: ..." prefixes that wrapping through the layers adds.
func EngineErrorMessage(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{ErrInvalidInput, ErrInvalidModel, ErrInvalidSettings} {
		p := sentinel.Error() + ": "
		for strings.Contains(msg, p+p) {
			msg = strings.ReplaceAll(msg, p+p, p)
		}
	}
	return msg
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
	switch e.Kind {
	case KindUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		if e.Err != nil {
			s.log.WarnContext(r.Context(), "request failed: unavailable", "method", r.Method, "path", r.URL.Path, "err", e.Err)
		}
	case KindMethodNotAllowed:
		w.Header().Set("Allow", strings.Join(s.allowed(r), ", "))
	}
	if bodyUnread(r) {
		// Tell the client, and net/http, that the connection ends here: otherwise the
		// server would try to drain the unread body first, which a slow or hostile
		// client can make last for ever.
		w.Header().Set("Connection", "close")
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
