package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/prover"
)

// Ceremonies implements api.Ceremonies with the prover's Groth16 phase 2 (gnark's
// mpcsetup) on the Powers of Tau file at Ptau, whose checked import is cached in
// SRSCache.
type Ceremonies struct {
	Ptau     string
	SRSCache string
}

var _ api.Ceremonies = (*Ceremonies)(nil)

// rejected marks the caller's faults (an invalid contribution or beacon, no ceremony
// yet, a sealed one) for the API.
func rejected(err error) error {
	if errors.Is(err, prover.ErrStaleContribution) {
		return fmt.Errorf("%w: %v", api.ErrCeremonyStale, err)
	}
	if errors.Is(err, prover.ErrCeremony) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", api.ErrCeremonyRejected, err)
	}
	return err
}

func (c *Ceremonies) open(dir string) (*prover.Ceremony, error) {
	m, err := prover.Open(dir)
	if err != nil {
		return nil, err
	}
	cer, err := m.OpenCeremony()
	return cer, rejected(err)
}

func view(c *prover.Ceremony) api.CeremonyView {
	s := c.State
	v := api.CeremonyView{ModelID: s.ModelID, Circuit: s.Circuit, PtauBLAKE2b: s.Ptau.BLAKE2b, PtauPower: s.Ptau.Power,
		Initial: s.Initial, Contributions: []api.ContributionView{}, Beacon: s.Beacon, Sealed: s.Sealed}
	for i, r := range s.Contributions {
		v.Contributions = append(v.Contributions, api.ContributionView{Index: i + 1, Name: r.Name, Hash: r.Hash, Time: r.Time})
	}
	return v
}

// Open implements api.Ceremonies.
func (c *Ceremonies) Open(ctx context.Context, dir string) (api.CeremonyView, error) {
	m, err := prover.Open(dir)
	if err != nil {
		return api.CeremonyView{}, err
	}
	cer, err := m.CeremonyInit(c.Ptau, c.SRSCache)
	if err != nil {
		return api.CeremonyView{}, rejected(err)
	}
	return view(cer), nil
}

// Get implements api.Ceremonies.
func (c *Ceremonies) Get(ctx context.Context, dir string) (api.CeremonyView, error) {
	cer, err := c.open(dir)
	if err != nil {
		return api.CeremonyView{}, err
	}
	return view(cer), nil
}

// Current implements api.Ceremonies.
func (c *Ceremonies) Current(ctx context.Context, dir string) (string, error) {
	cer, err := c.open(dir)
	if err != nil {
		return "", err
	}
	if cer.State.Sealed != nil {
		return "", fmt.Errorf("%w: the ceremony is sealed", api.ErrCeremonyRejected)
	}
	return cer.CurrentFile(), nil
}

// Contribute implements api.Ceremonies.
func (c *Ceremonies) Contribute(ctx context.Context, dir, upload, name string) (api.ContributionView, error) {
	cer, err := c.open(dir)
	if err != nil {
		return api.ContributionView{}, err
	}
	r, err := cer.AcceptFile(upload, name)
	if err != nil {
		return api.ContributionView{}, rejected(err)
	}
	return api.ContributionView{Index: len(cer.State.Contributions), Name: r.Name, Hash: r.Hash, Time: r.Time}, nil
}

// Seal implements api.Ceremonies.
func (c *Ceremonies) Seal(ctx context.Context, dir, beacon string) (api.CeremonyView, api.Provenance, error) {
	m, err := prover.Open(dir)
	if err != nil {
		return api.CeremonyView{}, api.Provenance{}, err
	}
	cer, err := m.OpenCeremony()
	if err != nil {
		return api.CeremonyView{}, api.Provenance{}, rejected(err)
	}
	if err := cer.Seal(c.Ptau, c.SRSCache, beacon); err != nil {
		return api.CeremonyView{}, api.Provenance{}, rejected(err)
	}
	return view(cer), engine.ProvenanceView(m.Provenance(circuits.Groth16)), nil
}
