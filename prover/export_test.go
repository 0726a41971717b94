package prover

// DropDecodedForTest empties the in-memory cache of decoded circuits and keys, so that
// the next load decodes its file again as a fresh process would (benchmarks of the
// load path).
func DropDecodedForTest() {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	cache.m = map[string]any{}
}
