package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
)

// TestCheckSettings: bad settings are invalid_settings errors whose message names the
// field in JSON terms (they reach API clients), not the Go types they decode into.
func TestCheckSettings(t *testing.T) {
	e := &Engine{}
	for _, c := range []struct {
		settings string
		want     string // in the message; "" for valid settings
	}{
		{`{}`, ""},
		{`{"range_check":"bits","scale":6}`, ""},
		{`{"scale":"x"}`, `"scale" must be an integer, not string`},
		{`{"scale":99}`, "scale 99 out of range"},
		{`{"scael":7}`, `unknown field "scael"`},
		{`{"range_check":"magic"}`, `range_check "magic"`},
		{`[1]`, "must be an object, not array"},
	} {
		err := e.CheckSettings([]byte(c.settings))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.settings, err)
		case c.want != "" && (!errors.Is(err, api.ErrInvalidSettings) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an invalid_settings error saying %q", c.settings, err, c.want)
		case err != nil && (strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "quant.")):
			t.Errorf("%s: message speaks Go: %v", c.settings, err)
		}
	}
}

// TestInvalidModelMessageSaysItOnce: the message a client reads for a model that does
// not parse names the fault once, although the engine wraps the model package's error
// in the API's sentinel of the same text.
func TestInvalidModelMessageSaysItOnce(t *testing.T) {
	_, err := (&Engine{}).Compile(t.Context(), t.TempDir(), []byte("not an onnx file"), nil)
	if api.EngineErrorCode(err) != api.CodeInvalidModel {
		t.Fatalf("err %v, want an invalid_model error", err)
	}
	if msg := api.EngineErrorMessage(err); strings.Count(msg, "invalid model") != 1 {
		t.Fatalf("message %q repeats itself (error: %v)", msg, err)
	}
}
