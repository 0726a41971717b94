package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
)

// proveOne proves goodInput on model m and returns the proof view.
func (e *env) proveOne(key, m string) api.ProofView {
	e.t.Helper()
	var j api.JobView
	e.want(e.prove(key, m, goodInput), 202).json(e.t, &j)
	got := e.wait(key, j.ID, 20*time.Second)
	if got.Status != "succeeded" {
		e.t.Fatalf("prove: %+v", got)
	}
	var p api.ProofView
	e.want(e.do("GET", "/v1/proofs/"+got.ProofID, key, nil), 200).json(e.t, &p)
	return p
}

// TestTrustDevelopment: keys from a development setup are called so in the model view
// and in the proof view, and the verifier download warns in its headers.
func TestTrustDevelopment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{}))
		k := e.newKey("k").Key
		m := e.readyModel(k)
		var mv api.ModelView
		e.want(e.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
		if len(mv.Trust) != 1 || mv.Trust["groth16"].Trust != api.TrustDevelopment || mv.Trust["groth16"].Summary == "" ||
			mv.Trust["groth16"].Ptau != nil || mv.Ceremony != nil {
			t.Fatalf("model trust %+v, ceremony %+v", mv.Trust, mv.Ceremony)
		}
		if p := e.proveOne(k, m); p.Trust.Trust != api.TrustDevelopment {
			t.Fatalf("proof trust %+v", p.Trust)
		}
		r := e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k, nil), 200)
		if r.header.Get(api.TrustHeader) != api.TrustDevelopment || !strings.Contains(r.header.Get("Warning"), "DEVELOPMENT keys") {
			t.Fatalf("verifier download headers %v", r.header)
		}
	})
}

// TestTrustUniversalSRS: keys the engine reports as made on a public SRS carry the
// ptau's identity in both views, and the verifier download has no warning.
func TestTrustUniversalSRS(t *testing.T) {
	prov := &api.Provenance{Trust: api.TrustUniversalSRS, Summary: "universal-srs (test)",
		Ptau: &api.PtauView{BLAKE2b: strings.Repeat("ab", 64), Power: 12, DomainPower: 10, Contributors: []string{"a", "b"}}}
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, fastConfig(b.cfg(t), &apitest.Engine{Provenance: prov}))
		k := e.newKey("k").Key
		m := e.readyModel(k)
		var mv api.ModelView
		e.want(e.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
		got := mv.Trust["groth16"]
		if got.Trust != api.TrustUniversalSRS || got.Ptau == nil || got.Ptau.BLAKE2b != prov.Ptau.BLAKE2b ||
			got.Ptau.Power != 12 || got.Ptau.DomainPower != 10 || len(got.Ptau.Contributors) != 2 {
			t.Fatalf("model trust %+v", got)
		}
		if p := e.proveOne(k, m); p.Trust.Trust != api.TrustUniversalSRS || p.Trust.Ptau == nil || p.Trust.Ptau.BLAKE2b != prov.Ptau.BLAKE2b {
			t.Fatalf("proof trust %+v", p.Trust)
		}
		r := e.want(e.do("GET", "/v1/models/"+m+"/verifier.sol?system=groth16", k, nil), 200)
		if r.header.Get(api.TrustHeader) != api.TrustUniversalSRS || r.header.Get("Warning") != "" {
			t.Fatalf("verifier download headers %v", r.header)
		}
	})
}
