package api

import (
	"encoding/json"
	"fmt"
)

// Trust levels of a setup (the prover's Trust* constants), from weakest to strongest.
const (
	// TrustDevelopment: a single-party setup; whoever ran it can forge proofs.
	TrustDevelopment = "development"
	// TrustUniversalSRS: PLONK on the KZG SRS of a public Powers of Tau file.
	TrustUniversalSRS = "universal-srs"
	// TrustCeremony: Groth16 keys from a phase-2 ceremony on a public Powers of Tau
	// file, sealed with a public beacon.
	TrustCeremony = "ceremony"
	// TrustUnknown: the keys were set up before the service recorded provenance
	// (`zkml keys show` on the model's working directory tells).
	TrustUnknown = "unknown"
)

// Provenance says where a proving system's keys come from, so that whoever relies on a
// proof (or deploys the verifier) can judge them. It is the prover's record
// (prover.Provenance, the model manifest's "provenance") in the API's words.
type Provenance struct {
	// Trust is development, universal-srs, ceremony or unknown.
	Trust string `json:"trust"`
	// Summary is a one-line description for people.
	Summary string `json:"summary"`
	// Ptau identifies the Powers of Tau file (universal-srs and ceremony).
	Ptau *PtauView `json:"ptau,omitempty"`
	// Contributions are the phase-2 contributions in order (ceremony).
	Contributions []ContributionView `json:"contributions,omitempty"`
	// Beacon is the public random beacon that sealed the ceremony, hex (ceremony).
	Beacon string `json:"beacon,omitempty"`
}

// PtauView identifies a Powers of Tau file.
type PtauView struct {
	// BLAKE2b is the BLAKE2b-512 of the file, hex (what b2sum prints and the
	// ceremonies publish).
	BLAKE2b string `json:"blake2b"`
	// Power is the file's power; DomainPower the power of the truncation used.
	Power       int `json:"power"`
	DomainPower int `json:"domain_power"`
	// Contributors are the names in the file's own contribution list.
	Contributors []string `json:"contributors,omitempty"`
}

// Development reports whether the keys are (or may be) single-party keys.
func (p Provenance) Development() bool {
	return p.Trust == TrustDevelopment || p.Trust == TrustUnknown
}

// unknownProvenance is shown for keys without a stored record.
func unknownProvenance() Provenance {
	return Provenance{Trust: TrustUnknown, Summary: "not recorded: the keys were set up before the service stored provenance; " +
		"treat them as development keys unless `zkml keys show` on the model's working directory says otherwise"}
}

// decodeProvenance renders a stored record (nil: none).
func decodeProvenance(raw json.RawMessage) Provenance {
	if len(raw) == 0 {
		return unknownProvenance()
	}
	var p Provenance
	if err := json.Unmarshal(raw, &p); err != nil || p.Trust == "" {
		u := unknownProvenance()
		u.Summary = fmt.Sprintf("unreadable provenance record %.80q", raw)
		return u
	}
	return p
}
