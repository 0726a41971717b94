package api

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// Request decoders are plain functions of bytes so they can be fuzzed; handlers only
// read the (size-limited) body and call them.

// CreateModelRequest is the body of POST /v1/models.
type CreateModelRequest struct {
	Name       string
	ONNX       []byte
	Settings   json.RawMessage // a JSON object, "{}" when absent
	WebhookURL string
}

// ProofRequest is the body of POST /v1/models/{id}/proofs.
type ProofRequest struct {
	System     string
	Input      json.RawMessage // compacted input.json: {"input_data": [[...]]}
	WebhookURL string
}

// SetupRequest is the body of POST /v1/models/{id}/setup.
type SetupRequest struct {
	System     string
	WebhookURL string
}

// VerifyRequest is the body of POST /v1/verify: either a stored proof (ProofID) or a
// proof given in full.
type VerifyRequest struct {
	ProofID      string
	ModelID      string
	System       string
	Proof        []byte
	PublicInputs []string
	// Bundle is a sharded model's proof (JSON), given instead of Proof and
	// PublicInputs.
	Bundle []byte
}

func badRequest(format string, args ...any) *Error {
	return errorf(KindBadRequest, "bad_request", format, args...)
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown fields.
func decodeStrict(body []byte, v any) error {
	if err := checkJSONText("request body", body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Kind: KindBadRequest, Code: "malformed_json", Message: "malformed JSON body: " + JSONErrorMessage(err), Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(KindBadRequest, "malformed_json", "malformed JSON body: trailing data after the JSON value")
	}
	return nil
}

// JSONErrorMessage says what is wrong with a JSON document in the client's terms:
// JSON types and field paths, never the Go types it was decoded into.
func JSONErrorMessage(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		where := "the body"
		if typeErr.Field != "" {
			where = "field " + strconv.Quote(typeErr.Field)
		}
		return fmt.Sprintf("%s must be %s, not %s", where, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syntaxErr.Error(), "json: "), syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// DecodeModelJSON decodes the JSON form: {"name", "onnx": base64, "settings": {...}}.
func DecodeModelJSON(body []byte) (CreateModelRequest, error) {
	var in struct {
		Name       string          `json:"name"`
		ONNX       string          `json:"onnx"`
		Settings   json.RawMessage `json:"settings"`
		WebhookURL string          `json:"webhook_url"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return CreateModelRequest{}, err
	}
	onnx, err := base64.StdEncoding.DecodeString(in.ONNX)
	if err != nil {
		return CreateModelRequest{}, badRequest("onnx is not standard base64: %v", err)
	}
	return finishModel(CreateModelRequest{Name: in.Name, ONNX: onnx, Settings: in.Settings, WebhookURL: in.WebhookURL})
}

func finishModel(req CreateModelRequest) (CreateModelRequest, error) {
	if len(req.ONNX) == 0 {
		return req, badRequest("onnx model is required")
	}
	if req.Name == "" {
		req.Name = "model"
	}
	if len(req.Name) > 128 {
		return req, badRequest("name is longer than 128 bytes")
	}
	if err := checkText("name", req.Name); err != nil {
		return req, err
	}
	if err := checkJSONText("settings", req.Settings); err != nil {
		return req, err
	}
	settings, err := jsonObject(req.Settings, "settings")
	if err != nil {
		return req, err
	}
	req.Settings = settings
	if err := checkWebhookURL(req.WebhookURL); err != nil {
		return req, err
	}
	return req, nil
}

// jsonObject checks raw is absent/null or a JSON object and compacts it.
func jsonObject(raw json.RawMessage, field string) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}"), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, badRequest("%s must be a JSON object", field)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	return buf.Bytes(), nil
}

// DecodeModelMultipart decodes multipart/form-data with parts "model" (the ONNX file,
// required), "settings" (JSON object), "name" and "webhook_url". Parts beyond
// maxModel bytes fail with 413.
func DecodeModelMultipart(body io.Reader, boundary string, maxModel int64) (CreateModelRequest, error) {
	var req CreateModelRequest
	mr := multipart.NewReader(body, boundary)
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return req, bodyError("malformed multipart body", err)
		}
		name := part.FormName()
		if seen[name] {
			return req, badRequest("duplicate form field %q", name)
		}
		seen[name] = true
		limit := int64(64 << 10)
		if name == "model" {
			limit = maxModel
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			return req, bodyError("malformed multipart body", err)
		}
		if int64(len(data)) > limit {
			return req, &http.MaxBytesError{Limit: limit}
		}
		switch name {
		case "model":
			req.ONNX = data
		case "settings":
			req.Settings = data
		case "name":
			req.Name = string(data)
		case "webhook_url":
			req.WebhookURL = string(data)
		default:
			return req, badRequest("unknown form field %q", name)
		}
	}
	return finishModel(req)
}

// decodeModelRequest dispatches on Content-Type.
func decodeModelRequest(r *http.Request, maxModel int64) (CreateModelRequest, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return CreateModelRequest{}, errorf(KindUnsupportedMedia, "unsupported_media_type", "Content-Type must be multipart/form-data or application/json")
	}
	switch mt {
	case "multipart/form-data":
		if params["boundary"] == "" {
			return CreateModelRequest{}, badRequest("multipart body without boundary")
		}
		return DecodeModelMultipart(r.Body, params["boundary"], maxModel)
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return CreateModelRequest{}, bodyError("reading body", err)
		}
		return DecodeModelJSON(body)
	}
	return CreateModelRequest{}, errorf(KindUnsupportedMedia, "unsupported_media_type", "Content-Type must be multipart/form-data or application/json")
}

// DecodeProofRequest decodes {"system", "input": {"input_data": [[...]]}, "webhook_url"}.
func DecodeProofRequest(body []byte) (ProofRequest, error) {
	var in struct {
		System     string          `json:"system"`
		Input      json.RawMessage `json:"input"`
		WebhookURL string          `json:"webhook_url"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return ProofRequest{}, err
	}
	sys, err := checkSystem(in.System)
	if err != nil {
		return ProofRequest{}, err
	}
	input, err := CheckInput(in.Input)
	if err != nil {
		return ProofRequest{}, err
	}
	if err := checkWebhookURL(in.WebhookURL); err != nil {
		return ProofRequest{}, err
	}
	return ProofRequest{System: sys, Input: input, WebhookURL: in.WebhookURL}, nil
}

// CheckInput validates an input.json body: an object whose input_data is a non-empty
// array of non-empty arrays of finite numbers. Other fields are kept. It returns the
// compacted body.
func CheckInput(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, badRequest("input is required")
	}
	if err := checkJSONText("input", raw); err != nil {
		return nil, err
	}
	var in struct {
		InputData [][]float64 `json:"input_data"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, badRequest("input must be {\"input_data\": [[numbers...]]}: %s", JSONErrorMessage(err))
	}
	if len(in.InputData) == 0 {
		return nil, badRequest("input.input_data must be a non-empty array of arrays")
	}
	for i, row := range in.InputData {
		if len(row) == 0 {
			return nil, badRequest("input.input_data[%d] is empty", i)
		}
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, badRequest("input.input_data[%d] holds a non-finite number", i)
			}
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, badRequest("input: %v", err)
	}
	return buf.Bytes(), nil
}

// CheckInputShapes checks an input (as CheckInput returns it) against the shapes of
// the model's inputs, recorded when it was compiled: one row of input_data per input,
// each with as many numbers as its shape has elements (row-major). Inputs with an
// unknown dimension, and models without recorded shapes, are left to the engine.
func CheckInputShapes(input json.RawMessage, shapes [][]int) error {
	if len(shapes) == 0 {
		return nil
	}
	var in struct {
		InputData [][]json.RawMessage `json:"input_data"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return badRequest("input: %s", JSONErrorMessage(err))
	}
	if len(in.InputData) != len(shapes) {
		return errorf(KindBadRequest, CodeInvalidInput, "input.input_data has %d rows; the model has %d inputs", len(in.InputData), len(shapes))
	}
	for i, shape := range shapes {
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n <= 0 {
			continue
		}
		if len(in.InputData[i]) != n {
			return errorf(KindBadRequest, CodeInvalidInput, "input.input_data[%d] has %d numbers; the model's input %d has shape %v (%d numbers)", i, len(in.InputData[i]), i, shape, n)
		}
	}
	return nil
}

// DecodeSetupRequest decodes {"system", "webhook_url"}; an empty body means groth16.
func DecodeSetupRequest(body []byte) (SetupRequest, error) {
	var in struct {
		System     string `json:"system"`
		WebhookURL string `json:"webhook_url"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &in); err != nil {
			return SetupRequest{}, err
		}
	}
	sys, err := checkSystem(in.System)
	if err != nil {
		return SetupRequest{}, err
	}
	if err := checkWebhookURL(in.WebhookURL); err != nil {
		return SetupRequest{}, err
	}
	return SetupRequest{System: sys, WebhookURL: in.WebhookURL}, nil
}

// DecodeVerifyRequest decodes {"proof_id"}, {"model_id", "system", "proof": hex,
// "public_inputs": [decimal...]} or, for a sharded model, {"model_id", "system",
// "bundle": {...}}.
func DecodeVerifyRequest(body []byte) (VerifyRequest, error) {
	var in struct {
		ProofID      string          `json:"proof_id"`
		ModelID      string          `json:"model_id"`
		System       string          `json:"system"`
		Proof        string          `json:"proof"`
		PublicInputs []string        `json:"public_inputs"`
		Bundle       json.RawMessage `json:"bundle"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return VerifyRequest{}, err
	}
	if string(bytes.TrimSpace(in.Bundle)) == "null" {
		in.Bundle = nil
	}
	if in.Bundle != nil {
		if in.ProofID != "" || in.Proof != "" || in.PublicInputs != nil {
			return VerifyRequest{}, badRequest("give a bundle with model_id and system only, not with proof_id, proof or public_inputs")
		}
		if err := checkText("model_id", in.ModelID); err != nil {
			return VerifyRequest{}, err
		}
		if in.ModelID == "" {
			return VerifyRequest{}, badRequest("model_id is required with a bundle")
		}
		sys, err := checkSystem(in.System)
		if err != nil {
			return VerifyRequest{}, err
		}
		return VerifyRequest{ModelID: in.ModelID, System: sys, Bundle: in.Bundle}, nil
	}
	for _, f := range []struct{ name, v string }{{"proof_id", in.ProofID}, {"model_id", in.ModelID}} {
		if err := checkText(f.name, f.v); err != nil {
			return VerifyRequest{}, err
		}
	}
	if in.ProofID != "" {
		if in.ModelID != "" || in.Proof != "" || in.PublicInputs != nil || in.System != "" {
			return VerifyRequest{}, badRequest("give either proof_id or model_id, system, proof and public_inputs")
		}
		return VerifyRequest{ProofID: in.ProofID}, nil
	}
	if in.ModelID == "" || in.Proof == "" {
		return VerifyRequest{}, badRequest("model_id and proof are required without proof_id")
	}
	sys, err := checkSystem(in.System)
	if err != nil {
		return VerifyRequest{}, err
	}
	proof, err := decodeHex(in.Proof)
	if err != nil {
		return VerifyRequest{}, badRequest("proof must be hex: %v", err)
	}
	for i, p := range in.PublicInputs {
		if !isFieldElement(p) {
			return VerifyRequest{}, badRequest("public_inputs[%d] is not a canonical field element (a decimal integer below the BN254 scalar field order r, as the EVM verifier requires)", i)
		}
	}
	if in.PublicInputs == nil {
		in.PublicInputs = []string{}
	}
	return VerifyRequest{ModelID: in.ModelID, System: sys, Proof: proof, PublicInputs: in.PublicInputs}, nil
}

// DecodeCreateKeyRequest decodes {"name"}.
func DecodeCreateKeyRequest(body []byte) (string, error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return "", err
	}
	if in.Name == "" || len(in.Name) > 128 {
		return "", badRequest("name is required and at most 128 bytes")
	}
	if err := checkText("name", in.Name); err != nil {
		return "", err
	}
	return in.Name, nil
}

func checkSystem(s string) (string, error) {
	if s == "" {
		return "groth16", nil
	}
	if !validSystem(s) {
		return "", badRequest("system must be one of %s", strings.Join(Systems, ", "))
	}
	return s, nil
}

func checkWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	if err := checkText("webhook_url", s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s) > 2048 {
		return badRequest("webhook_url must be an absolute http(s) URL")
	}
	return nil
}

func decodeHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	return hex.DecodeString(s)
}

// isDecimal reports whether s is a non-negative decimal integer of at most 78 digits
// (a BN254 scalar fits in 77).
// fieldOrder is the BN254 scalar field order r (the api package does not import gnark).
var fieldOrder, _ = new(big.Int).SetString("21888242871839275222246405745257275088548364400416034343698204186575808495617", 10)

// isFieldElement reports whether s is a canonical field element: decimal, 0 <= v < r.
// v + r names the same element in the field, but the EVM verifier rejects it, so every
// verifier does.
func isFieldElement(s string) bool {
	if !isDecimal(s) {
		return false
	}
	v, ok := new(big.Int).SetString(s, 10)
	return ok && v.Cmp(fieldOrder) < 0
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 78 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func hexString(b []byte) string { return "0x" + hex.EncodeToString(b) }
