package engine

import "github.com/zkml/zkml/api"

var _ api.SettingsChecker = (*Engine)(nil)

// CheckSettings implements api.SettingsChecker with ParseSettings, so the API refuses
// settings the compile job would refuse before it queues that job.
func (e *Engine) CheckSettings(settings []byte) error {
	_, err := ParseSettings(settings)
	return err
}
