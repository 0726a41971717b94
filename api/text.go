package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/zkml/zkml/internal/store"
)

// Text rules. Every string the API stores must be valid UTF-8 without NUL bytes: that is
// what PostgreSQL's text and jsonb accept (it rejects the rest with SQLSTATE 22021 or
// 22P05), so checking it here, for both stores, gives one answer (400 invalid_text)
// whichever database runs underneath.

// CodeInvalidText is the error code of text that breaks the rules above.
const CodeInvalidText = "invalid_text"

func invalidText(format string, args ...any) *Error {
	return errorf(KindBadRequest, CodeInvalidText, format, args...)
}

// checkText checks one string; field names it in the error.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalidText("%s is not valid UTF-8", field)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalidText("%s contains a NUL character", field)
	}
	return nil
}

// checkJSONText checks a JSON document: its bytes must be valid UTF-8 (Go's decoder would
// otherwise silently turn bad bytes into U+FFFD) and no key or string value may hold a
// NUL character (written \u0000). Syntax errors are left to the decoder that follows.
func checkJSONText(field string, raw []byte) error {
	if !utf8.Valid(raw) {
		return invalidText("%s is not valid UTF-8", field)
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return nil // the only way to write a NUL in valid JSON
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return invalidText("%s holds a string with a NUL character (\\u0000)", field)
		}
	}
}

// pathID is the {id} of the route. An ID that is not valid text names nothing, so it
// is not found (and never reaches the database).
func pathID(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if checkText("id", id) != nil {
		return "", store.ErrNotFound
	}
	return id, nil
}
