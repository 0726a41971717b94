package api

import (
	"context"
	"errors"
)

// Errors an Engine wraps (with %w) when a job cannot run within the service's limits.
// Both are the caller's to fix (a smaller model, other settings, a larger budget), so
// they fail the job without retry; on upload ErrOverBudget answers 422.
var (
	// ErrOverBudget: the model's estimated constraints or memory exceed the configured
	// budget (ZKML_MAX_CONSTRAINTS, ZKML_MAX_JOB_MEMORY); the message names the limit.
	ErrOverBudget = errors.New("over budget")
	// ErrResourceLimit: the job's child process died (out of memory under its limit,
	// a runtime fatal error) instead of finishing.
	ErrResourceLimit = errors.New("resource limit")
)

// Codes of ErrOverBudget and ErrResourceLimit, as an API error and a job error.
const (
	CodeOverBudget    = "over_budget"
	CodeResourceLimit = "resource_limit"
)

// Admitter is implemented by engines that estimate a model's cost from its bytes
// before any compile work. Admit returns an error wrapping ErrOverBudget for a model
// above the budget; any other problem is left for the compile job to report.
type Admitter interface {
	Admit(ctx context.Context, onnx []byte, settings []byte) error
}

// admit refuses, before the model is stored or a job queued, a model whose estimate is
// over the engine's budget.
func (s *Server) admit(ctx context.Context, onnx, settings []byte) error {
	a, ok := s.engine.(Admitter)
	if !ok {
		return nil
	}
	return a.Admit(ctx, onnx, settings)
}
