package model

// Supports reports whether Load accepts nodes of the default-domain operator op: the
// float reference evaluates it (and the lowering proves it, or folds it when its inputs
// are constants). Load refuses every other operator with an ErrUnsupportedOp error
// naming the operator and the node.
func Supports(op string) bool {
	_, ok := floatOps(op)
	return ok
}
