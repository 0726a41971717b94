package prover

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/consensys/gnark-crypto/kzg"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/test/unsafekzg"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/srs"
)

// newTestSRS returns a KZG SRS from gnark's unsafekzg: its toxic value is known to this
// process, so it is for development only (see DevSetupWarning).
func newTestSRS(ccs constraint.ConstraintSystem) (kzg.SRS, kzg.SRS, error) {
	return unsafekzg.NewSRS(ccs)
}

// PlonkPower returns log2 of the PLONK domain of ccs: the smallest power of two holding
// its constraints and one placeholder constraint per public input. A Powers of Tau file
// of at least this power is needed for its SRS.
func PlonkPower(ccs constraint.ConstraintSystem) int {
	return srs.PowerFor(uint64(ccs.GetNbConstraints() + ccs.GetNbPublicVariables()))
}

// Groth16Power returns log2 of the Groth16 domain of ccs: the smallest power of two
// holding its constraints. A Powers of Tau file of at least this power is needed for
// its ceremony.
func Groth16Power(ccs constraint.ConstraintSystem) int {
	return srs.PowerFor(uint64(ccs.GetNbConstraints()))
}

// ptauInfo describes the file an SRS was imported from.
func ptauInfo(s *srs.SRS) *PtauInfo {
	info := &PtauInfo{BLAKE2b: s.Source.Hash, Power: s.Source.Power, DomainPower: s.Power}
	for _, c := range s.Source.Contributions {
		info.Contributors = append(info.Contributors, c.Name)
	}
	return info
}

// UniversalSetupKeys runs PLONK's setup on the KZG SRS of the Powers of Tau file at
// ptau (checked, and cached in cacheDir: see srs.Load). It involves no randomness: the
// same circuit and the same file give the same keys, byte for byte.
func UniversalSetupKeys(ccs constraint.ConstraintSystem, ptau, cacheDir string) (pk plonk.ProvingKey, vk plonk.VerifyingKey, prov *Provenance, err error) {
	s, err := srs.Load(ptau, PlonkPower(ccs), srs.KZG, cacheDir)
	if err != nil {
		return nil, nil, nil, err
	}
	canonical, lagrange, err := s.KZGSRS()
	if err != nil {
		return nil, nil, nil, err
	}
	pk, vk, err = plonk.Setup(ccs, canonical, lagrange)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plonk setup: %w", err)
	}
	return pk, vk, &Provenance{Trust: TrustUniversalSRS, Ptau: ptauInfo(s)}, nil
}

// SetupUniversal makes PLONK keys on the public SRS of a Powers of Tau file (see
// UniversalSetupKeys) and records their provenance.
func (m *Model) SetupUniversal(ptau, cacheDir string) error {
	ccs, err := m.Circuit(circuits.Plonk)
	if err != nil {
		return err
	}
	pk, vk, prov, err := UniversalSetupKeys(ccs, ptau, cacheDir)
	if err != nil {
		return err
	}
	return m.storeKeys(circuits.Plonk, pk, vk, prov)
}

// ReproducePlonkVK recompiles the model's PLONK circuit from its source model and
// settings (trusting neither the stored circuit nor the stored keys), runs the setup on
// the Powers of Tau file and returns the verifying key's bytes, and whether the stored
// circuit is the one the compilation gives. An auditor compares these bytes with a
// published verifying key.
func (m *Model) ReproducePlonkVK(ptau, cacheDir string) (vk []byte, circuitMatches bool, err error) {
	ccs, _, err := circuits.Compile(m.Program, circuits.Plonk)
	if err != nil {
		return nil, false, err
	}
	var cb bytes.Buffer
	if _, err := ccs.WriteTo(&cb); err != nil {
		return nil, false, err
	}
	if stored, err := m.ReadArtifact(fileName("circuit", circuits.Plonk)); err == nil {
		circuitMatches = bytes.Equal(stored, cb.Bytes())
	}
	_, pvk, _, err := UniversalSetupKeys(ccs, ptau, cacheDir)
	if err != nil {
		return nil, false, err
	}
	var vb bytes.Buffer
	if _, err := pvk.WriteTo(&vb); err != nil {
		return nil, false, err
	}
	return vb.Bytes(), circuitMatches, nil
}

// ErrUntrustedSetup is returned when a policy requires trusted setups and sys's keys
// would come from (or came from) the development setup.
var ErrUntrustedSetup = errors.New("development setup refused")

// SetupPolicy says how a service makes keys: PLONK on a public SRS when Ptau is set, and
// whether development setups are refused altogether (RequireTrusted; Groth16 keys must
// then come from a ceremony).
type SetupPolicy struct {
	Ptau           string
	SRSCache       string
	RequireTrusted bool
}

// SetupWith makes sys's keys under the policy.
func (m *Model) SetupWith(sys circuits.System, pol SetupPolicy) error {
	if sys == circuits.Plonk && pol.Ptau != "" {
		return m.SetupUniversal(pol.Ptau, pol.SRSCache)
	}
	if pol.RequireTrusted {
		hint := "a Groth16 ceremony (zkml ceremony init|contribute|accept|seal)"
		if sys == circuits.Plonk {
			hint = "a Powers of Tau file (ZKML_PTAU)"
		}
		return fmt.Errorf("%w: trusted setups are required (ZKML_REQUIRE_TRUSTED_SETUP), so %s keys need %s", ErrUntrustedSetup, sys, hint)
	}
	return m.Setup(sys)
}

// CheckTrusted returns ErrUntrustedSetup when the policy requires trusted setups and
// sys's keys are development keys.
func (m *Model) CheckTrusted(sys circuits.System, pol SetupPolicy) error {
	if pol.RequireTrusted && m.Provenance(sys).Trust == TrustDevelopment {
		return fmt.Errorf("%w: the %s keys of model %s are development keys and trusted setups are required (ZKML_REQUIRE_TRUSTED_SETUP)", ErrUntrustedSetup, sys, m.ID)
	}
	return nil
}

// DevVerifierBanner is put at the top of a Solidity verifier exported for development
// keys, so that nobody deploys one unawares.
const DevVerifierBanner = `// WARNING: DEVELOPMENT KEYS. NOT FOR PRODUCTION.
// This verifier's keys come from a single-party setup: whoever ran it can forge proofs
// for any output, and this contract will accept them. Make production keys with
// ` + "`zkml setup --system plonk --srs FILE.ptau`" + ` or a Groth16 ceremony (` + "`zkml ceremony`" + `).
`
