package model

import (
	"errors"
	"fmt"
)

// PlanMovement resolves a pure data-movement node (see Movement) given the static
// shapes of its inputs and those inputs that are constants (nil for runtime values).
// ok is false when n is not a data-movement op.
func PlanMovement(n *Node, shapes [][]int, consts []*Tensor, opset int64) (m *Movement, ok bool, err error) {
	f, ok := movementOps[n.Op]
	if !ok {
		return nil, false, nil
	}
	m, err = f(n, shapes, consts, opset)
	if err == nil {
		err = checkOutput(n, m.Shape)
	}
	if err != nil {
		if errors.Is(err, ErrUnsupportedOp) || errors.Is(err, ErrInvalidModel) {
			return nil, true, err
		}
		return nil, true, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	return m, true, nil
}

// IsMovement reports whether op only moves data.
func IsMovement(op string) bool {
	_, ok := movementOps[op]
	return ok
}

// Numel is the element count of shape.
func Numel(shape []int) int { return numel(shape) }

// BroadcastShape is numpy's broadcast of shapes.
func BroadcastShape(shapes ...[]int) ([]int, error) { return broadcastShape(shapes...) }

// BroadcastIndex maps every element of shape out to its source in shape in.
func BroadcastIndex(in, out []int) []int { return broadcastIndex(in, out) }
