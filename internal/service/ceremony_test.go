package service_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/prover"
)

// TestCeremonyEndpoints runs a Groth16 ceremony through the HTTP API with the real
// pipeline on the repository's small ReLU model and snarkjs ptau: open, download the
// state, contribute (twice, from the state each time), refused uploads that change
// nothing, seal with a beacon, then prove with the sealed keys.
func TestCeremonyEndpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &engine.Engine{})
		cfg.Ceremonies = &service.Ceremonies{Ptau: "../../srs/testdata/pot9.ptau", SRSCache: t.TempDir()}
		e := newEnv(t, cfg)
		k := e.newKey("coordinator").Key
		onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
		if err != nil {
			t.Fatal(err)
		}
		m, j := e.upload(k, onnx, "")
		if got := e.wait(k, j, 30*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		base := "/v1/models/" + m + "/ceremony"
		if c := e.want(e.do("GET", base, k, nil), 422).code(t); c != "ceremony_rejected" {
			t.Fatalf("transcript before open: %s", c)
		}
		var cv api.CeremonyView
		e.want(e.do("POST", base, k, nil), 201).json(t, &cv)
		if cv.PtauPower != 9 || len(cv.PtauBLAKE2b) != 128 || len(cv.Contributions) != 0 {
			t.Fatalf("opened: %+v", cv)
		}
		contribute := func(name string) (api.ContributionView, []byte) {
			t.Helper()
			state := e.want(e.do("GET", base+"/state", k, nil), 200).body
			var next bytes.Buffer
			hash, err := prover.Contribute(bytes.NewReader(state), &next)
			if err != nil {
				t.Fatal(err)
			}
			var c api.ContributionView
			e.want(e.do("POST", base+"/contributions?name="+name, k, bytes.NewReader(next.Bytes()), "Content-Type", "application/octet-stream"), 201).json(t, &c)
			if c.Hash != hash || c.Name != name {
				t.Fatalf("accepted %+v, contributor computed %s", c, hash)
			}
			return c, next.Bytes()
		}
		if c, first := contribute("alice"); c.Index != 1 {
			t.Fatalf("first contribution %+v", c)
		} else {
			// The same upload again no longer builds on the current state.
			if code := e.want(e.do("POST", base+"/contributions?name=again", k, bytes.NewReader(first)), 422).code(t); code != "ceremony_rejected" {
				t.Fatalf("replayed contribution: %s", code)
			}
		}
		if code := e.want(e.do("POST", base+"/contributions?name=junk", k, strings.NewReader("junk")), 422).code(t); code != "ceremony_rejected" {
			t.Fatalf("garbage contribution: %s", code)
		}
		e.want(e.do("POST", base+"/contributions", k, strings.NewReader("x")), 400)
		if c, _ := contribute("bob"); c.Index != 2 {
			t.Fatalf("second contribution %+v", c)
		}
		if code := e.want(e.do("POST", base+"/seal", k, strings.NewReader(`{"beacon":"not hex"}`)), 422).code(t); code != "ceremony_rejected" {
			t.Fatalf("bad beacon: %s", code)
		}
		e.want(e.do("POST", base+"/seal", k, strings.NewReader(`{"beacon":"0123456789abcdef"}`)), 200).json(t, &cv)
		if len(cv.Contributions) != 2 || cv.Contributions[1].Name != "bob" || cv.Beacon != "0123456789abcdef" || cv.Sealed == nil {
			t.Fatalf("sealed: %+v", cv)
		}
		e.want(e.do("GET", base+"/state", k, nil), 422)

		var model api.ModelView
		e.want(e.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &model)
		if len(model.Systems) != 1 || model.Systems[0] != "groth16" {
			t.Fatalf("model systems after seal: %v", model.Systems)
		}
		var pj api.JobView
		e.want(e.prove(k, m, `{"input":{"input_data":[[-0.4,2.5,0.6]]}}`), 202).json(t, &pj)
		if got := e.wait(k, pj.ID, 60*time.Second); got.Status != "succeeded" {
			t.Fatalf("prove with ceremony keys: %+v", got)
		}
		sol := e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k, nil), 200).body
		if bytes.Contains(sol, []byte("DEVELOPMENT KEYS")) {
			t.Fatal("ceremony verifier carries the development banner")
		}
	})
}

// TestCeremonyDisabled: without a Powers of Tau file the endpoints say so (503).
func TestCeremonyDisabled(t *testing.T) {
	e := newEnv(t, fastConfig(backends(t)[0].cfg(t), &engine.Engine{}))
	k := e.newKey("k").Key
	if code := e.want(e.do("GET", "/v1/models/nope/ceremony", k, nil), 503).code(t); code != "ceremonies_disabled" {
		t.Fatalf("code %s", code)
	}
}
