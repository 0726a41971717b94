package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
)

func kindOf(err error) api.Kind {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}

func TestDecodeProofRequest(t *testing.T) {
	for _, tc := range []struct {
		body   string
		ok     bool
		system string
		input  string
	}{
		{`{"input":{"input_data":[[1, 2.5]]}}`, true, "groth16", `{"input_data":[[1,2.5]]}`},
		{`{"system":"plonk","input":{"input_data":[[1]],"output_data":[[0]]}}`, true, "plonk", `{"input_data":[[1]],"output_data":[[0]]}`},
		{`{"input":{"input_data":[[1]]},"webhook_url":"https://example.com/h"}`, true, "groth16", `{"input_data":[[1]]}`},
		{`{"input":{"input_data":[]}}`, false, "", ""},
		{`{"input":{"input_data":[[]]}}`, false, "", ""},
		{`{"input":{"input_data":[["1"]]}}`, false, "", ""},
		{`{"input":{"input_data":[[1e999]]}}`, false, "", ""},
		{`{"input":null}`, false, "", ""},
		{`{"input":{"input_data":[[1]]}} {}`, false, "", ""},
		{`{"input":{"input_data":[[1]]},"extra":1}`, false, "", ""},
		{`{"system":"halo2","input":{"input_data":[[1]]}}`, false, "", ""},
		{`{"input":{"input_data":[[1]]},"webhook_url":"/relative"}`, false, "", ""},
		{``, false, "", ""},
	} {
		req, err := api.DecodeProofRequest([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.body, err, tc.ok)
			continue
		}
		if err != nil {
			if kindOf(err) != api.KindBadRequest {
				t.Errorf("%s: error kind %v, want bad request", tc.body, kindOf(err))
			}
			continue
		}
		if req.System != tc.system || string(req.Input) != tc.input {
			t.Errorf("%s: got %q %s", tc.body, req.System, req.Input)
		}
	}
}

func TestDecodeVerifyRequest(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"proof_id":"prf_1"}`, true},
		{`{"model_id":"m","proof":"0xabcd","public_inputs":["1","21888242871839275222246405745257275088548364400416417274276645765447735582"]}`, true},
		{`{"model_id":"m","system":"plonk","proof":"ABCD"}`, true},
		{`{"proof_id":"prf_1","proof":"0x00"}`, false},
		{`{"model_id":"m"}`, false},
		{`{"model_id":"m","proof":"0xabc"}`, false},
		{`{"model_id":"m","proof":"0x00","public_inputs":["1.5"]}`, false},
		{`{"model_id":"m","proof":"0x00","public_inputs":[""]}`, false},
		// r - 1 is the largest field element; r and r + 5 name 0 and 5 but the EVM rejects them.
		{`{"model_id":"m","proof":"0x00","public_inputs":["21888242871839275222246405745257275088548364400416034343698204186575808495616"]}`, true},
		{`{"model_id":"m","proof":"0x00","public_inputs":["21888242871839275222246405745257275088548364400416034343698204186575808495617"]}`, false},
		{`{"model_id":"m","proof":"0x00","public_inputs":["21888242871839275222246405745257275088548364400416034343698204186575808495622"]}`, false},
		{`{"model_id":"m","proof":"0x00","public_inputs":["` + strings.Repeat("9", 78) + `"]}`, false},
		{`[]`, false},
		// A sharded model's bundle: with model_id (and system), never with a proof.
		{`{"model_id":"m","system":"groth16","bundle":{"segments":[]}}`, true},
		{`{"model_id":"m","bundle":{}}`, true},
		{`{"bundle":{}}`, false},
		{`{"proof_id":"prf_1","bundle":{}}`, false},
		{`{"model_id":"m","proof":"0x00","bundle":{}}`, false},
		{`{"model_id":"m","public_inputs":["1"],"bundle":{}}`, false},
		{`{"model_id":"m","system":"stark","bundle":{}}`, false},
	} {
		_, err := api.DecodeVerifyRequest([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}

func TestDecodeModel(t *testing.T) {
	req, err := api.DecodeModelJSON([]byte(`{"onnx":"AQID","settings":{"scale": 7},"name":"mnist"}`))
	if err != nil || string(req.ONNX) != "\x01\x02\x03" || string(req.Settings) != `{"scale":7}` || req.Name != "mnist" {
		t.Fatalf("DecodeModelJSON = %+v, %v", req, err)
	}
	req, err = api.DecodeModelJSON([]byte(`{"onnx":"AQID"}`))
	if err != nil || string(req.Settings) != "{}" || req.Name != "model" {
		t.Fatalf("defaults: %+v, %v", req, err)
	}
	for _, bad := range []string{`{"onnx":""}`, `{"onnx":"AQID","settings":[1]}`, `{"onnx":"AQID","settings":"x"}`, `{"onnx":"%%"}`} {
		if _, err := api.DecodeModelJSON([]byte(bad)); kindOf(err) != api.KindBadRequest {
			t.Errorf("%s: err = %v, want bad request", bad, err)
		}
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	fw.Write([]byte("0123456789"))
	mw.WriteField("settings", `{"scale":3}`)
	mw.Close()
	req, err = api.DecodeModelMultipart(bytes.NewReader(buf.Bytes()), mw.Boundary(), 10)
	if err != nil || string(req.ONNX) != "0123456789" || string(req.Settings) != `{"scale":3}` {
		t.Fatalf("multipart: %+v, %v", req, err)
	}
	_, err = api.DecodeModelMultipart(bytes.NewReader(buf.Bytes()), mw.Boundary(), 9)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		t.Fatalf("oversized part: err = %v, want MaxBytesError", err)
	}
	if _, err := api.DecodeModelMultipart(strings.NewReader("garbage"), "b", 10); kindOf(err) != api.KindBadRequest {
		t.Fatalf("garbage multipart: err = %v", err)
	}
}

func TestDecodeSetupRequest(t *testing.T) {
	for body, want := range map[string]string{``: "groth16", `{}`: "groth16", `{"system":"plonk"}`: "plonk", `{"system":"x"}`: "", `{"sys":1}`: ""} {
		req, err := api.DecodeSetupRequest([]byte(body))
		if (want == "") != (err != nil) || req.System != want {
			t.Errorf("%q: %+v, %v", body, req, err)
		}
	}
}

// Fuzz targets: decoders must never panic, must fail only with client errors, and what
// they accept must satisfy the invariants handlers rely on.

func checkClientError(t *testing.T, err error) {
	t.Helper()
	var tooBig *http.MaxBytesError
	if kindOf(err) != api.KindBadRequest && !errors.As(err, &tooBig) {
		t.Fatalf("decoder error is not a client error: %#v", err)
	}
}

func FuzzDecodeProofRequest(f *testing.F) {
	f.Add([]byte(`{"input":{"input_data":[[1,2,3]]}}`))
	f.Add([]byte(`{"system":"plonk","input":{"input_data":[[-0.5e3]],"x":null},"webhook_url":"http://h/"}`))
	f.Add([]byte(`{"input":{"input_data":[[1]]}}garbage`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodeProofRequest(body)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if req.System != "groth16" && req.System != "plonk" {
			t.Fatalf("accepted system %q", req.System)
		}
		again, err := api.CheckInput(req.Input)
		if err != nil || !bytes.Equal(again, req.Input) {
			t.Fatalf("accepted input %s does not re-validate: %v", req.Input, err)
		}
	})
}

func FuzzDecodeVerifyRequest(f *testing.F) {
	f.Add([]byte(`{"proof_id":"prf_1"}`))
	f.Add([]byte(`{"model_id":"m","proof":"0xabcd","public_inputs":["1","2"]}`))
	f.Add([]byte(`{"model_id":"m","system":"plonk","bundle":{"segments":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodeVerifyRequest(body)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if req.ProofID == "" && (req.ModelID == "" || req.PublicInputs == nil && req.Bundle == nil) {
			t.Fatalf("accepted incomplete request %+v", req)
		}
	})
}

func FuzzDecodeModelJSON(f *testing.F) {
	f.Add([]byte(`{"onnx":"AQID","settings":{"scale":7}}`))
	f.Add([]byte(`{"onnx":"AQID","name":"x","webhook_url":"https://a/b"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodeModelJSON(body)
		if err != nil {
			checkClientError(t, err)
			return
		}
		var obj map[string]any
		if len(req.ONNX) == 0 || json.Unmarshal(req.Settings, &obj) != nil || obj == nil {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzDecodeModelMultipart(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("BOUNDARY")
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	fw.Write([]byte("onnx"))
	mw.WriteField("settings", `{"a":1}`)
	mw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodeModelMultipart(bytes.NewReader(body), "BOUNDARY", 1<<10)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if len(req.ONNX) == 0 || len(req.ONNX) > 1<<10 {
			t.Fatalf("accepted model of %d bytes", len(req.ONNX))
		}
	})
}

func FuzzDecodeSetupRequest(f *testing.F) {
	f.Add([]byte(`{"system":"plonk"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := api.DecodeSetupRequest(body); err != nil {
			checkClientError(t, err)
		}
	})
}
