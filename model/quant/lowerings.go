package quant

import "sync/atomic"

// lowerings counts the graphs lowered (lowerWith calls), for tests that bound how often
// Lower lowers a graph (widths.go).
var lowerings atomic.Int64
